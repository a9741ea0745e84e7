// Terminal formatting for the client commands. Pure functions only: what to color is decided
// from the values passed in (never by peeking at process.stdout here), so every rule is
// unit-testable and the commands stay thin.

export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

// Colors are for people at a terminal. NO_COLOR (https://no-color.org: any non-empty value)
// always wins; otherwise a TTY gets color, and FORCE_COLOR (non-empty, not "0") asks for it
// when the output is a pipe. TERM=dumb terminals get none.
export function colorEnabled(isTTY: boolean | undefined, env: Record<string, string | undefined>): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return isTTY === true;
}

function sgr(open: number, close: number): (text: string) => string {
  return (text) => `\u001b[${open}m${text}\u001b[${close}m`;
}

const identity = (text: string) => text;

export function createStyle(enabled: boolean): Style {
  if (!enabled) return { enabled, bold: identity, dim: identity, red: identity, green: identity, yellow: identity, cyan: identity };
  return { enabled, bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
}

// ---------------------------------------------------------------------------------------
// Log lines

// What both the websocket's `?format=json` frames and `GET /logs` entries carry.
export interface LogLineView {
  message: string;
  stream?: string | null;
  step?: string | null;
}

export const STEP_HEADER_PREFIX = 'Executing step: ';
const STEP_SUCCEEDED = 'Step completed successfully';
const STEP_FAILED = /^Step failed with exit code /;

// One log line as the user sees it: the message verbatim (the command-runner's contract),
// with step headers standing out, results in green or red, stderr dimmed.
export function formatLogLine(line: LogLineView, style: Style): string {
  const { message } = line;
  if (message.startsWith(STEP_HEADER_PREFIX)) return style.bold(style.cyan(message));
  if (line.stream === 'system') {
    if (message === STEP_SUCCEEDED) return style.green(message);
    if (STEP_FAILED.test(message)) return style.bold(style.red(message));
    return style.yellow(message);
  }
  if (line.stream === 'stderr') return style.dim(message);
  return message;
}

// ---------------------------------------------------------------------------------------
// Tables and detail views

export type Cell = string | number | boolean | null | undefined;

function cellText(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value).replace(/[\r\n\t]+/g, ' ');
}

// Left-aligned columns two spaces apart, like kubectl. No trailing spaces, so the output
// greps and diffs cleanly. An empty table still prints its header line.
export function formatTable(headers: string[], rows: Cell[][]): string {
  const cells = [headers, ...rows.map((row) => headers.map((_, i) => cellText(row[i])))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// "Key:  value" lines, keys aligned.
export function formatFields(fields: [string, Cell][]): string {
  const width = Math.max(...fields.map(([key]) => key.length + 1));
  return fields.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${cellText(value)}`).join('\n');
}

function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((line) => (line ? by + line : line))
    .join('\n');
}

// Timestamps to the second, in UTC, readable at a glance: 2026-01-02 03:04:05.
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const match = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(iso);
  return match ? `${match[1]} ${match[2]}` : iso;
}

export function formatDuration(startIso: string | null | undefined, endIso: string | null | undefined): string {
  if (!startIso || !endIso) return '-';
  const ms = Date.parse(endIso) - Date.parse(startIso);
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${ms}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m < 60 ? `${m}m${s}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

export function formatPhase(phase: string, style: Style): string {
  if (phase === 'Succeeded') return style.green(phase);
  if (phase === 'Failed') return style.red(phase);
  if (phase === 'Cancelled' || phase === 'Skipped') return style.yellow(phase);
  return phase;
}

// Shapes of what the API answers, as far as the CLI reads them.
export interface StepView {
  name: string;
  phase: string;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RunView {
  runid: string;
  resource: string;
  name: string;
  version?: number;
  driver?: string;
  phase: string;
  reason?: string | null;
  message?: string | null;
  createdAt?: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  steps?: StepView[];
}

export interface ResourceView {
  name: string;
  resource: string;
  spec: Record<string, unknown>;
  pipeline?: string;
  metadata?: { version?: string | number; createdAt?: string; updatedAt?: string };
}

export interface DefinitionView {
  name: string;
  version: string;
  description?: string;
  builtIn?: boolean;
  schema?: unknown;
  createdAt?: string;
  updatedAt?: string;
}

export function formatRunsTable(runs: RunView[]): string {
  return formatTable(
    ['RUNID', 'RESOURCE', 'NAME', 'PHASE', 'STARTED'],
    runs.map((run) => [run.runid, run.resource, run.name, run.phase, formatTime(run.startedAt)]),
  );
}

export function formatRun(run: RunView, style: Style): string {
  const fields: [string, Cell][] = [
    ['Run', run.runid],
    ['Resource', `${run.resource}/${run.name}${run.version !== undefined ? ` (version ${run.version})` : ''}`],
    ['Driver', run.driver],
    ['Phase', formatPhase(run.phase, style)],
    ['Reason', run.reason],
    ['Message', run.message],
    ['Created', formatTime(run.createdAt)],
    ['Started', formatTime(run.startedAt)],
    ['Finished', formatTime(run.finishedAt)],
    ['Duration', formatDuration(run.startedAt, run.finishedAt)],
  ];
  const steps = run.steps ?? [];
  if (steps.length === 0) return formatFields(fields);
  const table = formatTable(
    ['STEP', 'PHASE', 'EXIT', 'STARTED', 'DURATION'],
    steps.map((s) => [s.name, s.phase, s.exitCode, formatTime(s.startedAt), formatDuration(s.startedAt, s.finishedAt)]),
  );
  return `${formatFields(fields)}\nSteps:\n${indent(table)}`;
}

function stepCount(spec: Record<string, unknown>): number | undefined {
  return Array.isArray(spec.steps) ? spec.steps.length : undefined;
}

export function formatResourcesTable(resources: ResourceView[]): string {
  const withSteps = resources.some((r) => stepCount(r.spec) !== undefined);
  const withChain = resources.some((r) => r.pipeline !== undefined);
  const headers = ['NAME', 'VERSION', ...(withSteps ? ['STEPS'] : []), ...(withChain ? ['PIPELINE'] : []), 'UPDATED'];
  return formatTable(
    headers,
    resources.map((r) => [
      r.name,
      r.metadata?.version,
      ...(withSteps ? [stepCount(r.spec)] : []),
      ...(withChain ? [r.pipeline] : []),
      formatTime(r.metadata?.updatedAt),
    ]),
  );
}

// One resource in full: its fields, its spec as JSON, and (when the caller has them) its
// most recent runs.
export function formatResource(resource: ResourceView, recentRuns: RunView[] | undefined, style: Style): string {
  const fields: [string, Cell][] = [
    ['Name', resource.name],
    ['Type', resource.resource],
    ['Version', resource.metadata?.version],
  ];
  if (resource.pipeline !== undefined) fields.push(['Pipeline', resource.pipeline]);
  fields.push(['Created', formatTime(resource.metadata?.createdAt)], ['Updated', formatTime(resource.metadata?.updatedAt)]);
  let out = `${formatFields(fields)}\nSpec:\n${indent(JSON.stringify(resource.spec, null, 2))}`;
  if (recentRuns && recentRuns.length > 0) {
    const table = formatTable(
      ['RUNID', 'VERSION', 'PHASE', 'STARTED'],
      recentRuns.map((run) => [run.runid, run.version, formatPhase(run.phase, style), formatTime(run.startedAt)]),
    );
    out += `\nRecent runs:\n${indent(table)}`;
  }
  return out;
}

export function formatDefinitionsTable(definitions: DefinitionView[]): string {
  return formatTable(
    ['NAME', 'VERSION', 'BUILTIN', 'DESCRIPTION'],
    definitions.map((d) => [d.name, d.version, d.builtIn ? 'yes' : 'no', d.description]),
  );
}

export function formatDefinition(definition: DefinitionView): string {
  const fields: [string, Cell][] = [
    ['Name', definition.name],
    ['Version', definition.version],
    ['Built in', definition.builtIn ? 'yes' : 'no'],
    ['Description', definition.description],
    ['Created', formatTime(definition.createdAt)],
    ['Updated', formatTime(definition.updatedAt)],
  ];
  return `${formatFields(fields)}\nSchema:\n${indent(JSON.stringify(definition.schema ?? {}, null, 2))}`;
}

// The last line of `run --follow` and `logs --follow`: how the run ended.
export function formatRunResult(run: Pick<RunView, 'runid' | 'phase' | 'message' | 'reason'>, style: Style): string {
  const phase = run.phase === 'Succeeded' ? style.bold(style.green(run.phase)) : style.bold(formatPhase(run.phase, style));
  const detail = run.message ?? run.reason;
  return `Run ${run.runid} ${phase}${detail ? `: ${detail}` : ''}`;
}

// What `run` and `apply` say after writing a resource. The run id is always on this line so
// scripts can pick it out (or use --quiet for the id alone).
export function formatSubmitResult(result: { action: 'created' | 'replaced'; resource: string; name: string; version: string; runid: string }): string {
  const what = `${result.resource}/${result.name}`;
  return result.action === 'created'
    ? `Created ${what} (version ${result.version}), run ${result.runid}`
    : `Replaced ${what}, which already existed (now version ${result.version}); started run ${result.runid}`;
}

export interface DriverView {
  name: string;
  resources: string[];
  connected: boolean;
  pending: number;
  ackPending: number;
  lastActive: string | null;
}

// External drivers, from their JetStream consumers (GET /drivers).
export function formatDriversTable(drivers: DriverView[]): string {
  return formatTable(
    ['NAME', 'RESOURCES', 'CONNECTED', 'PENDING', 'IN HAND', 'LAST ACTIVE'],
    drivers.map((d) => [d.name, d.resources.join(','), d.connected ? 'yes' : 'no', d.pending, d.ackPending, formatTime(d.lastActive)]),
  );
}
