// The one place where flags, environment and defaults meet. Flags win over environment,
// environment over defaults; a bad value fails start-up with a message naming its source.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

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
  // Kubernetes mode: finished Runs kept per pipeline (0: no limit) and for how long (0: no
  // limit); a pruned Run takes its Job, pods and archived log with it.
  retainRuns: number;
  retainSeconds: number;
  // Kubernetes mode: seconds after a run finished that its Job and pods are deleted (its
  // log is in the archive by then).
  retainJobSeconds: number;
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
  retainRuns?: string;
  retainSeconds?: string;
  retainJobSeconds?: string;
}

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
  return {
    mode: (mode?.[0] as Mode | undefined) ?? 'local',
    host: pick(flags.host, 'host', env, 'CONVEYOR_HOST')?.[0] ?? '127.0.0.1',
    port: port ? integer(port[0], port[1], 0, 65535) : 8080,
    dataDir: resolve(pick(flags.dataDir, 'data-dir', env, 'CONVEYOR_DATA_DIR')?.[0] ?? '.data'),
    maxBodyBytes: body ? integer(body[0], body[1], 1) : 1024 * 1024,
    concurrency: concurrency ? integer(concurrency[0], concurrency[1], 1) : availableParallelism(),
    shutdownGraceMs: grace ? integer(grace[0], grace[1], 0) * 1000 : 10_000,
    heartbeatMs: heartbeat ? integer(heartbeat, 'CONVEYOR_SSE_HEARTBEAT_MS', 10) : 15_000,
    logLevel: pick(flags.logLevel, 'log-level', env, 'CONVEYOR_LOG_LEVEL')?.[0] ?? 'info',
    namespace: pick(flags.namespace, 'namespace', env, 'CONVEYOR_NAMESPACE')?.[0],
    kubeQps: env.CONVEYOR_KUBE_QPS ? integer(env.CONVEYOR_KUBE_QPS, 'CONVEYOR_KUBE_QPS', 1) : DEFAULT_RATE_LIMIT.qps,
    kubeBurst: env.CONVEYOR_KUBE_BURST ? integer(env.CONVEYOR_KUBE_BURST, 'CONVEYOR_KUBE_BURST', 1) : DEFAULT_RATE_LIMIT.burst,
    ...retention(flags, env),
  };
}
