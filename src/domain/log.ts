// Log lines and the frames clients see. The seed's frame is `["<timestamp>","<message>"]`;
// `format=json` opts into the full line.
export type LogStream = 'stdout' | 'stderr' | 'system';

// An output line longer than the limit (default 1 MiB, `--max-line-bytes`) is stored as
// parts; every part but the last ends with LINE_CONTINUES, so that readers can tell a cut
// from a real line end and join the parts back (README: "Long lines").
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
export const LINE_CONTINUES = ' [line continues]';

// What a line Conveyor writes itself stands for, as data, so that no decision about a run
// (where its log collection resumes, whether its end was written) has to parse messages:
// `attempt` opens a retry's lines, `start` and `end` frame a step's output (the line's
// step), `stop` is the last line of a run stopped from outside.
export interface LogMark {
  attempt: number;
  event: 'attempt' | 'start' | 'end' | 'stop';
}

export interface LogEntry {
  // Set on Conveyor's own framing lines only; kept in the archive beside the line.
  mark?: LogMark;
  driver: string;
  pipeline: string | null;
  step: string | null;
  stream: LogStream;
  message: string;
  // Unix time in nanoseconds as a decimal string: sortable, and precise enough to order
  // lines that arrive in the same millisecond.
  ts: string;
}

export interface LogLine extends LogEntry {
  runid: string;
  seq: number;
}

export type FrameFormat = 'array' | 'json';

export function seedFrame(line: LogLine): string {
  return JSON.stringify([line.ts, line.message]);
}

export function jsonFrame(line: LogLine): string {
  return JSON.stringify({ seq: line.seq, ts: line.ts, step: line.step, stream: line.stream, message: line.message });
}

// The shape of upstream's `GET /logs` entries, with our seq/step/stream added.
export function upstreamEntry(line: LogLine) {
  return {
    runid: line.runid,
    driver: line.driver,
    pipeline: line.pipeline,
    timestamp: line.ts,
    message: line.message,
    seq: line.seq,
    step: line.step,
    stream: line.stream,
  };
}

const RETRY_PREFIX = 'Retrying: attempt ';

export const StepMessages = {
  executing: (name: string) => `Executing step: ${name}`,
  completed: () => 'Step completed successfully',
  failed: (code: number) => `Step failed with exit code ${code}`,
  // A step killed because its run was stopped from outside (`runMessage`: RunStopMessages).
  stopped: (runMessage: string) => `Step stopped (${runMessage.toLowerCase()})`,
  // Before the steps of a retry (a Job's next pod) run again from the first.
  retrying: (attempt: number) => `${RETRY_PREFIX}${attempt}`,
};

// The last line of a run stopped from outside, by why it was stopped (a Reasons value).
export const RunStopMessages: Readonly<Record<'Cancelled' | 'Interrupted' | 'DeadlineExceeded', string>> = {
  Cancelled: 'Run cancelled',
  Interrupted: 'Run interrupted: the server shut down before the run finished',
  DeadlineExceeded: 'Run timed out',
};

// Date.now() has millisecond precision; a per-process counter keeps stamps strictly
// increasing so that two lines of one millisecond still sort in arrival order.
let lastStamp = 0n;
export function nowNanos(nowMs: number = Date.now()): string {
  let stamp = BigInt(nowMs) * 1_000_000n;
  if (stamp <= lastStamp) stamp = lastStamp + 1n;
  lastStamp = stamp;
  return stamp.toString();
}

export function nanosFromIso(iso: string): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!match) throw new Error(`not an RFC 3339 timestamp: ${iso}`);
  const seconds = BigInt(Date.parse(`${match[1]}${match[3]}`) / 1000);
  const fraction = BigInt((match[2] ?? '').padEnd(9, '0').slice(0, 9));
  return (seconds * 1_000_000_000n + fraction).toString();
}

export function isoFromNanos(ts: string): string {
  const ns = BigInt(ts);
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0');
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
}
