// Supervision of background work: promises nobody awaits (listeners, timers, streams, clean-
// ups). Such a promise must never be left to reject unhandled (Node ends the process) nor be
// swallowed: a failure is logged once, counted in conveyor_background_errors_total{task},
// and the process goes on. `retrying` adds backoff for work worth trying again.
import type { Logger } from 'pino';

interface TaskCounter {
  inc(labels: { task: string }): void;
}

let logger: Pick<Logger, 'error' | 'warn'> | undefined;
let counter: TaskCounter | undefined;

/** Where failures go: the server's logger and its metric (set once at start-up). */
export function superviseWith(target: { logger: Pick<Logger, 'error' | 'warn'>; counter: TaskCounter }): void {
  logger = target.logger;
  counter = target.counter;
}

// Errors already reported (by `retrying`, say, before a caller's background() sees them
// again): each failure is logged and counted once.
const reported = new WeakSet<object>();

export function reportBackgroundError(task: string, err: unknown): void {
  if (typeof err === 'object' && err !== null) {
    if (reported.has(err)) return;
    reported.add(err);
  }
  counter?.inc({ task });
  if (logger) logger.error({ err, task }, `background task ${task} failed`);
  else process.stderr.write(`conveyor: background task ${task} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

/** Runs `work` in the background; a throw or rejection is reported, never raised. */
export function background(task: string, work: Promise<unknown> | (() => unknown)): void {
  let promise: Promise<unknown>;
  try {
    promise = Promise.resolve(typeof work === 'function' ? work() : work);
  } catch (err) {
    promise = Promise.reject(err);
  }
  promise.catch((err: unknown) => reportBackgroundError(task, err));
}

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const sleepFor = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Tries `work` up to `attempts` times, waiting an exponentially growing, jittered delay
 * between tries; an abort stops retrying. Only the last failure is reported (and thrown):
 * a retry that succeeds is not an error.
 */
export async function retrying<T>(task: string, work: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { attempts = 5, baseMs = 100, maxMs = 10_000, signal, sleep = sleepFor } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (err) {
      if (attempt >= attempts || signal?.aborted) {
        reportBackgroundError(task, err);
        throw err;
      }
      logger?.warn({ err, task, attempt }, `background task ${task} failed; retrying`);
      const delay = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
      await sleep(delay / 2 + Math.random() * (delay / 2), signal);
    }
  }
}

/** The last line of defence: a rejection nobody handled is reported instead of ending the process. */
let guarded = false;
export function guardProcess(): void {
  if (guarded) return;
  guarded = true;
  process.on('unhandledRejection', (err) => reportBackgroundError('unhandled-rejection', err));
}
