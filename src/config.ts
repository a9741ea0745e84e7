// The one place where flags, environment and defaults meet. Flags win over environment,
// environment over defaults; a bad value fails start-up with a message naming its source.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_MAX_LINE_BYTES } from './domain/log.ts';

// Where a cgroup v1 freezer hierarchy is mounted on Linux (local mode's step containment).
const DEFAULT_FREEZER_ROOT = '/sys/fs/cgroup/freezer';

export type Mode = 'local' | 'kubernetes';

// The Kubernetes client's rate limit (see src/kube/rate-limited-config.ts).
export interface RateLimit {
  qps: number;
  burst: number;
}
export const DEFAULT_RATE_LIMIT: RateLimit = { qps: 500, burst: 1000 };

export interface Config {
  mode: Mode;
  host: string;
  port: number;
  dataDir: string;
  maxBodyBytes: number;
  concurrency: number;
  shutdownGraceMs: number;
  heartbeatMs: number;
  logLevel: string;
  // Kubernetes mode: the namespace for Conveyor's objects (default: the pod's own, else
  // `default`).
  namespace?: string;
  // Kubernetes mode: the client's rate limit (requests a second, and the burst above it).
  kubeQps: number;
  kubeBurst: number;
  // A step's output line longer than this many bytes is split into marked parts.
  maxLineBytes: number;
  // Local mode: the cgroup v1 freezer mount that contains each run's processes, or null
  // for the /proc fallback (CONVEYOR_CGROUP_FREEZER=off).
  freezerRoot: string | null;
  // Kubernetes mode: finished Runs kept per pipeline (0: no limit) and for how long (0: no
  // limit); a pruned Run takes its Job, pods and archived log with it.
  retainRuns: number;
  retainSeconds: number;
  // Kubernetes mode: seconds after a run finished that its Job and pods are deleted (its
  // log is in the archive by then).
  retainJobSeconds: number;
  // Browser safety (see docs/security.md): more Host names and page origins to accept.
  allowedHosts: string[];
  allowedOrigins: string[];
  // Local mode: the bearer token every route but /health and /ping then needs.
  token?: string;
  // Kubernetes mode: TokenReview/SubjectAccessReview on every route (off only on a trusted
  // dev cluster), and whether /metrics needs `get` on the non-resource URL /metrics.
  authEnabled: boolean;
  metricsAuth: boolean;
  // External drivers: the NATS server (with JetStream) they share with Conveyor. None: only
  // the built-in command-runner runs anything.
  natsUrl?: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  // A run of a type no driver serves fails NoDriver after this long.
  noDriverTimeoutMs: number;
  // Kubernetes mode: the Deployment of this server's installation (the chart sets it); when
  // it is gone or being deleted the server releases every run pod's log finalizer.
  installation?: string;
  // Kubernetes mode: how long a stopped run's pod may take to stop before Conveyor deletes
  // it (CONVEYOR_STOP_ESCALATION_SECONDS, default 15).
  stopEscalationMs: number;
}

export interface ServeFlags {
  mode?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  maxBodyBytes?: string;
  concurrency?: string;
  shutdownGrace?: string;
  logLevel?: string;
  namespace?: string;
  maxLineBytes?: string;
  retainRuns?: string;
  retainSeconds?: string;
  retainJobSeconds?: string;
  allowedHost?: string[];
  allowedOrigin?: string[];
  tokenFile?: string;
  auth?: string;
  natsUrl?: string;
  driverTimeout?: string;
}

const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function integer(value: string, source: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`${source} must be a whole number from ${min} to ${max} (got "${value}")`);
  }
  return n;
}

function pick(flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string): [string, string] | undefined {
  if (flag !== undefined) return [flag, `--${flagName}`];
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return [fromEnv, envName];
  return undefined;
}

export const DEFAULT_RETENTION = { runs: 100, seconds: 7 * 24 * 3600, jobSeconds: 300 };

function retention(flags: ServeFlags, env: NodeJS.ProcessEnv): Pick<Config, 'retainRuns' | 'retainSeconds' | 'retainJobSeconds'> {
  const runs = pick(flags.retainRuns, 'retain-runs', env, 'CONVEYOR_RETAIN_RUNS');
  const seconds = pick(flags.retainSeconds, 'retain-seconds', env, 'CONVEYOR_RETAIN_SECONDS');
  const jobSeconds = pick(flags.retainJobSeconds, 'retain-job-seconds', env, 'CONVEYOR_RETAIN_JOB_SECONDS');
  return {
    retainRuns: runs ? integer(runs[0], runs[1], 0) : DEFAULT_RETENTION.runs,
    retainSeconds: seconds ? integer(seconds[0], seconds[1], 0) : DEFAULT_RETENTION.seconds,
    retainJobSeconds: jobSeconds ? integer(jobSeconds[0], jobSeconds[1], 0) : DEFAULT_RETENTION.jobSeconds,
  };
}

export function resolveConfig(flags: ServeFlags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const mode = pick(flags.mode, 'mode', env, 'CONVEYOR_MODE');
  if (mode && mode[0] !== 'local' && mode[0] !== 'kubernetes') {
    throw new Error(`${mode[1]} must be "local" or "kubernetes" (got "${mode[0]}")`);
  }
  const port = pick(flags.port, 'port', env, 'CONVEYOR_PORT');
  const body = pick(flags.maxBodyBytes, 'max-body-bytes', env, 'CONVEYOR_MAX_BODY_BYTES');
  const concurrency = pick(flags.concurrency, 'concurrency', env, 'CONVEYOR_CONCURRENCY');
  const grace = pick(flags.shutdownGrace, 'shutdown-grace', env, 'CONVEYOR_SHUTDOWN_GRACE_SECONDS');
  const heartbeat = env.CONVEYOR_SSE_HEARTBEAT_MS;
  const maxLine = pick(flags.maxLineBytes, 'max-line-bytes', env, 'CONVEYOR_MAX_LINE_BYTES');
  const freezer = env.CONVEYOR_CGROUP_FREEZER;
  return {
    mode: (mode?.[0] as Mode | undefined) ?? 'local',
    host: pick(flags.host, 'host', env, 'CONVEYOR_HOST')?.[0] ?? '127.0.0.1',
    port: port ? integer(port[0], port[1], 0, 65535) : 8080,
    dataDir: resolve(pick(flags.dataDir, 'data-dir', env, 'CONVEYOR_DATA_DIR')?.[0] ?? '.data'),
    maxBodyBytes: body ? integer(body[0], body[1], 1) : 1024 * 1024,
    concurrency: concurrency ? integer(concurrency[0], concurrency[1], 1) : availableParallelism(),
    // Timers wait at most 2^31-1 ms (longer ones fire at once), so these stop there.
    shutdownGraceMs: grace ? integer(grace[0], grace[1], 0, MAX_TIMER_SECONDS) * 1000 : 10_000,
    heartbeatMs: heartbeat ? integer(heartbeat, 'CONVEYOR_SSE_HEARTBEAT_MS', 10, MAX_TIMER_SECONDS * 1000) : 15_000,
    logLevel: pick(flags.logLevel, 'log-level', env, 'CONVEYOR_LOG_LEVEL')?.[0] ?? 'info',
    namespace: pick(flags.namespace, 'namespace', env, 'CONVEYOR_NAMESPACE')?.[0],
    kubeQps: env.CONVEYOR_KUBE_QPS ? integer(env.CONVEYOR_KUBE_QPS, 'CONVEYOR_KUBE_QPS', 1) : DEFAULT_RATE_LIMIT.qps,
    kubeBurst: env.CONVEYOR_KUBE_BURST ? integer(env.CONVEYOR_KUBE_BURST, 'CONVEYOR_KUBE_BURST', 1) : DEFAULT_RATE_LIMIT.burst,
    maxLineBytes: maxLine ? integer(maxLine[0], maxLine[1], 1024, 64 * 1024 * 1024) : DEFAULT_MAX_LINE_BYTES,
    freezerRoot: freezer === 'off' ? null : freezer || DEFAULT_FREEZER_ROOT,
    ...retention(flags, env),
    allowedHosts: list(flags.allowedHost, env.CONVEYOR_ALLOWED_HOSTS),
    allowedOrigins: list(flags.allowedOrigin, env.CONVEYOR_ALLOWED_ORIGINS).map((o) => origin(o)),
    token: token(flags.tokenFile, env),
    authEnabled: boolean(pick(flags.auth, 'auth', env, 'CONVEYOR_AUTH'), true),
    metricsAuth: boolean(env.CONVEYOR_METRICS_AUTH ? [env.CONVEYOR_METRICS_AUTH, 'CONVEYOR_METRICS_AUTH'] : undefined, true),
    ...natsConfig(flags, env),
    installation: env.CONVEYOR_INSTALLATION || undefined,
    stopEscalationMs: env.CONVEYOR_STOP_ESCALATION_SECONDS ? integer(env.CONVEYOR_STOP_ESCALATION_SECONDS, 'CONVEYOR_STOP_ESCALATION_SECONDS', 1, 3600) * 1000 : 15_000,
  };
}

function natsConfig(flags: ServeFlags, env: NodeJS.ProcessEnv): Pick<Config, 'natsUrl' | 'natsUser' | 'natsPassword' | 'natsToken' | 'noDriverTimeoutMs'> {
  const url = pick(flags.natsUrl, 'nats-url', env, 'CONVEYOR_NATS_URL');
  if (url && !/^(nats|tls|wss?):\/\/[^\s]+$/.test(url[0].split(',')[0]!.trim())) {
    throw new Error(`${url[1]} must be a NATS URL such as nats://127.0.0.1:4222 (got "${url[0]}")`);
  }
  const timeout = pick(flags.driverTimeout, 'driver-timeout', env, 'CONVEYOR_DRIVER_TIMEOUT_SECONDS');
  const seconds = timeout ? Number(timeout[0]) : 300;
  if (timeout && (!/^\d+(\.\d+)?$/.test(timeout[0].trim()) || seconds <= 0)) {
    throw new Error(`${timeout[1]} must be a positive number of seconds (got "${timeout[0]}")`);
  }
  return {
    natsUrl: url?.[0],
    natsUser: env.CONVEYOR_NATS_USER || undefined,
    natsPassword: env.CONVEYOR_NATS_PASSWORD || undefined,
    natsToken: env.CONVEYOR_NATS_TOKEN || undefined,
    noDriverTimeoutMs: Math.round(seconds * 1000),
  };
}

// Repeated flags win over the environment's comma-separated list.
function list(flags: string[] | undefined, fromEnv: string | undefined): string[] {
  const values = flags?.length ? flags : (fromEnv ?? '').split(',');
  return values.map((v) => v.trim()).filter((v) => v !== '');
}

function origin(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--allowed-origin "${value}" is not an origin (expected e.g. https://ui.example.com)`);
  }
  if (url.origin === 'null' || url.href.replace(/\/$/, '') !== url.origin) {
    throw new Error(`--allowed-origin "${value}" must be a scheme, host and optional port only (got a path or query)`);
  }
  return url.origin;
}

function boolean(value: [string, string] | undefined, fallback: boolean): boolean {
  if (!value) return fallback;
  if (value[0] === 'true') return true;
  if (value[0] === 'false') return false;
  throw new Error(`${value[1]} must be "true" or "false" (got "${value[0]}")`);
}

// --token-file, else CONVEYOR_TOKEN_FILE, else CONVEYOR_TOKEN. A file keeps the secret out
// of the process list and of shell history.
function token(flagFile: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const file = pick(flagFile, 'token-file', env, 'CONVEYOR_TOKEN_FILE');
  if (file) {
    let text: string;
    try {
      text = readFileSync(file[0], 'utf8');
    } catch (err) {
      throw new Error(`${file[1]}: cannot read the token file ${file[0]} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const value = text.trim();
    if (value.length < 16) throw new Error(`${file[1]}: the token in ${file[0]} must be at least 16 characters`);
    return value;
  }
  const fromEnv = env.CONVEYOR_TOKEN?.trim();
  if (fromEnv === undefined || fromEnv === '') return undefined;
  if (fromEnv.length < 16) throw new Error('CONVEYOR_TOKEN must be at least 16 characters');
  return fromEnv;
}
