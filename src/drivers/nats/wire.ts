// Upstream Conveyor CI's driver wire over NATS: stream and subject names and the JSON
// payloads, exactly as its driver runtime speaks them, so that drivers written with its
// SDKs work here unchanged. Pure: parsing and formatting only, no connection.
import type { Resource, ResourceEvent } from '../../domain/index.ts';
import { presentResource } from '../../domain/index.ts';

export const Streams = {
  // Interest retention: an event is kept until every driver consumer it matches acked it.
  messages: { name: 'messages', subjects: ['resources.>', 'events.>', 'drivers.>'] },
  // Work queues: each message is for one consumer, Conveyor's, and gone once acked.
  pipelineEngine: { name: 'pipeline-engine', subjects: ['pipelines.>'] },
  logsEngine: { name: 'logs-engine', subjects: ['logs.>'] },
} as const;

export const Subjects = {
  resource: (type: string) => `resources.${type}`,
  driverResource: (driver: string, type: string) => `drivers.${driver}.resources.${type}`,
  logs: (runid: string) => `logs.${runid}`,
  liveLogs: (runid: string, driver: string) => `live.logs.${runid}.${driver}`,
  // The older generation (0.4, conveyor-py): one token, so only `*` reaches it.
  legacyLogs: (driver: string, runid: string) => `driver:${driver}:logs:${runid}`,
  result: 'pipelines.driver.result',
} as const;

// Names drivers use as NATS subject tokens: no wildcards, separators or spaces.
export function isSubjectToken(value: string): boolean {
  return /^[^\s.*>]+$/.test(value);
}

export interface ResourceEventMessage {
  event: ResourceEvent;
  payload: string;
  id: string;
  run_id: string;
}

// The resource as upstream's `types.Resource` encodes it: every field, metadata as strings.
export function resourcePayload(resource: Resource): string {
  const presented = presentResource(resource);
  return JSON.stringify({
    id: `${resource.resource}/${resource.name}`,
    name: presented.name,
    resource: presented.resource,
    metadata: presented.metadata,
    spec: presented.spec,
    pipeline: presented.pipeline ?? '',
  });
}

export function resourceEvent(event: ResourceEvent, resource: Resource, id: string, runid: string): ResourceEventMessage {
  return { event, payload: resourcePayload(resource), id, run_id: runid };
}

// One log line as a driver sent it, whichever generation and route.
export interface DriverLine {
  runid: string;
  driver: string;
  message: string;
  // Unix time in nanoseconds as a decimal string (the log hub's `ts`).
  ts: string;
  // What identifies the line across its copies (the same line arrives twice).
  key: string;
}

function nanosFrom(raw: unknown, now: () => bigint): string {
  if (typeof raw === 'number' && Number.isFinite(raw)) raw = String(Math.trunc(raw));
  if (typeof raw !== 'string' || raw === '') return String(now());
  if (/^\d+$/.test(raw)) {
    // Seconds, milliseconds, microseconds or nanoseconds since the epoch, by magnitude.
    const n = BigInt(raw);
    if (raw.length <= 11) return String(n * 1_000_000_000n);
    if (raw.length <= 14) return String(n * 1_000_000n);
    if (raw.length <= 17) return String(n * 1_000n);
    return raw;
  }
  // An RFC 3339 time (Go's time.Time in JSON), keeping its sub-millisecond digits.
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) return String(now());
  const frac = /\.(\d+)/.exec(raw)?.[1] ?? '';
  const subMs = BigInt((frac.slice(3, 9) || '0').padEnd(6, '0'));
  return String(BigInt(ms) * 1_000_000n + subMs);
}

const systemNanos = () => BigInt(Date.now()) * 1_000_000n;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function currentLineKey(ts: string, message: string): string {
  return `${ts}\u0000${message}`;
}

// Current generation: `{runid, driver, pipeline, timestamp, message}` on `logs.<runid>` and
// `live.logs.<runid>.<driver>`. Both copies carry the same fields, which make the key.
export function parseDriverLog(data: unknown, now = systemNanos): DriverLine | undefined {
  if (!isObject(data)) return undefined;
  const { runid, driver, timestamp, message } = data;
  if (typeof runid !== 'string' || typeof driver !== 'string' || typeof message !== 'string') return undefined;
  const ts = nanosFrom(timestamp, now);
  const stamped = typeof timestamp === 'string' || typeof timestamp === 'number';
  // Keyed by the time as archived, so that the archive itself tells, after a restart, which
  // lines are in (see currentLineKey); a line without a time is told by its message alone.
  return { runid, driver, message, ts, key: stamped ? currentLineKey(ts, message) : message };
}

// Older generation over NATS: subject `driver:<driver>:logs:<runid>`, payload
// `["<unix seconds>","<message>"]`. Its Loki copy has a nanosecond time, so the key is the
// message alone (repeats of one message are told apart by counting, see LineDeduper).
export function parseLegacyLog(subject: string, data: unknown, now = systemNanos): DriverLine | undefined {
  const m = /^driver:(.+):logs:(.+)$/.exec(subject);
  if (!m || !Array.isArray(data) || data.length !== 2 || typeof data[1] !== 'string') return undefined;
  return { driver: m[1]!, runid: m[2]!, message: data[1], ts: nanosFrom(data[0], now), key: data[1] };
}

// Loki's push API as the older SDK uses it: `{streams: [{stream: labels, values: [[ns, line]]}]}`
// with the labels `driver` and `run_id`.
export function parseLokiPush(body: unknown, now = systemNanos): DriverLine[] | string {
  if (!isObject(body) || !Array.isArray(body.streams)) return 'streams must be an array';
  const lines: DriverLine[] = [];
  for (const [i, stream] of body.streams.entries()) {
    if (!isObject(stream) || !isObject(stream.stream) || !Array.isArray(stream.values)) return `streams[${i}] must have stream labels and values`;
    const { driver, run_id: runid } = stream.stream;
    if (typeof driver !== 'string' || typeof runid !== 'string') continue; // not a driver's line
    for (const [j, value] of stream.values.entries()) {
      if (!Array.isArray(value) || typeof value[1] !== 'string') return `streams[${i}].values[${j}] must be [timestamp, line]`;
      lines.push({ driver, runid, message: value[1], ts: nanosFrom(value[0], now), key: value[1] });
    }
  }
  return lines;
}

export interface DriverResultMessage {
  runid: string;
  driver: string;
  success: boolean;
  message: string;
  data: unknown;
}

// `{"event":"driver.result","run_id","resource","driverresult":{"success","message","data","driver"}}`
export function parseDriverResult(data: unknown): DriverResultMessage | undefined {
  if (!isObject(data) || !isObject(data.driverresult)) return undefined;
  const runid = data.run_id;
  const r = data.driverresult;
  if (typeof runid !== 'string' || typeof r.driver !== 'string' || typeof r.success !== 'boolean') return undefined;
  return { runid, driver: r.driver, success: r.success, message: typeof r.message === 'string' ? r.message : '', data: r.data ?? null };
}

// NATS subject matching (`*` one token, `>` the rest).
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

// The resource types a driver's consumer filters name (`resources.<type>`, or inside
// driver pipelines `drivers.<driver>.resources.<type>`); `*` for a consumer without filter.
export function typesOfFilters(filters: string[]): string[] {
  if (filters.length === 0) return ['*'];
  const types = new Set<string>();
  for (const f of filters) {
    const parts = f.split('.');
    const at = parts[0] === 'resources' ? 1 : parts[0] === 'drivers' && parts[2] === 'resources' ? 3 : -1;
    if (at < 0) continue;
    types.add(parts[at] === '>' || parts[at] === undefined ? '*' : parts[at]!);
  }
  return [...types].sort();
}
