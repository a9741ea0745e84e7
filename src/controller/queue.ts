// The controller's work queue, modelled on client-go's workqueue as controller-runtime uses
// it. It holds keys (`namespace/name`), never objects: a reconcile re-reads the object and
// acts on what it observes, so a key queued five times is reconciled once.
//
// - `add` dedupes while a key is pending; a key added while a worker processes it is queued
//   again when that worker is done, so no two workers ever hold one key and no add is lost.
// - `addAfter` queues a key after a delay (the earliest of several pending delays wins).
// - `addRateLimited` queues a key after its per-key exponential backoff; `forget` clears it.
// - `run` starts N workers around a reconcile function: a throw is reported and retried with
//   backoff (a `TerminalError` is reported and not retried), success forgets the backoff and
//   honours `requeueAfter`.
// - `resync` re-adds every key on an interval as a safety net for missed events.
// - `shutDown` stops accepting work, cancels timers and resolves when in-flight work ends.
// Every timer comes from an injectable `Clock`; metrics are optional callbacks.
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { background } from '../observability/background.ts';

export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (polling); ignored unless > 0. */
  requeueAfter?: number;
}

export interface ReconcileContext {
  /** Aborted when the queue shuts down (for example when leadership is lost). */
  signal: AbortSignal;
  /** How many times this key has failed in a row before this attempt. */
  retries: number;
}

export type Reconcile = (key: string, context: ReconcileContext) => Promise<ReconcileResult | void> | ReconcileResult | void;

/** Thrown by a reconcile for an error that retrying cannot fix: reported, then not retried. */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export interface BackoffOptions {
  /** Delay after the first failure (default 100 ms). */
  baseDelayMs?: number;
  /** Multiplier per further consecutive failure (default 2). */
  factor?: number;
  /** Upper bound of the delay (default 60 s). */
  maxDelayMs?: number;
}

export type WorkOutcome = 'success' | 'error' | 'terminal';

/** Optional hooks, easy to wire to prom-client gauges, counters and histograms. */
export interface WorkQueueMetrics {
  /** Keys ready to be processed (not counting delayed ones nor those in flight). */
  depth?(depth: number): void;
  /** Every `add` that queued a key (not one deduped against a pending key), as in client-go. */
  add?(key: string): void;
  /** Every `addRateLimited`: a retry after a failure. */
  retry?(key: string): void;
  /** Time a key waited in the queue before a worker took it, in ms. */
  queueLatency?(ms: number): void;
  /** Time one reconcile took, in ms. */
  workDuration?(ms: number, outcome: WorkOutcome): void;
}

export interface WorkQueueOptions {
  /** A name for logs and metric labels. */
  name?: string;
  clock?: Clock;
  backoff?: BackoffOptions;
  metrics?: WorkQueueMetrics;
  /** Called for every failed reconcile (and failed resync provider) — the place to log. */
  onError?: (err: unknown, key: string, retries: number) => void;
}

export interface RunOptions {
  /** Number of keys reconciled in parallel (default 1). */
  workers?: number;
}

interface Delayed {
  due: number;
  timer: TimerHandle;
}

export class WorkQueue {
  readonly name: string;
  readonly #clock: Clock;
  readonly #baseDelayMs: number;
  readonly #factor: number;
  readonly #maxDelayMs: number;
  readonly #metrics: WorkQueueMetrics;
  readonly #onError: (err: unknown, key: string, retries: number) => void;

  /** Keys ready to be processed, in order. */
  readonly #ready: string[] = [];
  /** When each ready key was queued (for the latency metric). */
  readonly #queuedAt = new Map<string, number>();
  /** Keys that need processing: those in `#ready` and those re-added while in flight. */
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #delayed = new Map<string, Delayed>();
  readonly #failures = new Map<string, number>();
  readonly #resyncs = new Set<{ timer?: TimerHandle; stopped: boolean }>();
  readonly #waiters: Array<(key: string | undefined) => void> = [];
  readonly #abort = new AbortController();

  #shuttingDown = false;
  #running?: Promise<void>;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'queue';
    this.#clock = options.clock ?? realClock;
    this.#baseDelayMs = options.backoff?.baseDelayMs ?? 100;
    this.#factor = options.backoff?.factor ?? 2;
    this.#maxDelayMs = options.backoff?.maxDelayMs ?? 60_000;
    this.#metrics = options.metrics ?? {};
    this.#onError =
      options.onError ??
      ((err, key, retries) => console.error(`[${this.name}] reconcile of ${key} failed (retry ${retries}):`, err));
    if (!(this.#baseDelayMs > 0) || !(this.#factor >= 1) || !(this.#maxDelayMs >= this.#baseDelayMs)) {
      throw new RangeError('backoff needs baseDelayMs > 0, factor >= 1 and maxDelayMs >= baseDelayMs');
    }
  }

  /** Keys ready to be processed now. */
  get depth(): number {
    return this.#ready.length;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  isProcessing(key: string): boolean {
    return this.#processing.has(key);
  }

  /** Consecutive failures recorded for `key` since its last `forget`. */
  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Queues `key` unless it is already pending; ignored after shutdown. */
  add(key: string): void {
    if (this.#shuttingDown) return;
    if (this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#metrics.add?.(key);
    if (this.#processing.has(key)) return; // queued again by #done
    this.#push(key);
  }

  /**
   * Like `add`, but ahead of every other ready key (a pending one moves to the front): for
   * work that unblocks everything after it, such as a new run whose Job does not exist yet.
   */
  addFirst(key: string): void {
    if (this.#shuttingDown) return;
    if (this.#dirty.has(key)) {
      const at = this.#ready.indexOf(key);
      if (at > 0) {
        this.#ready.splice(at, 1);
        this.#ready.unshift(key);
      }
      return;
    }
    this.#dirty.add(key);
    this.#metrics.add?.(key);
    if (this.#processing.has(key)) return; // queued again by #done
    this.#push(key, true);
  }

  /** Queues `key` after `ms` (at once if `ms` <= 0); of several pending delays the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const due = this.#clock.now() + ms;
    const existing = this.#delayed.get(key);
    if (existing) {
      if (existing.due <= due) return;
      this.#clock.clearTimeout(existing.timer);
    }
    const timer = this.#clock.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { due, timer });
  }

  /** The delay the next `addRateLimited(key)` would use. */
  backoffFor(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    return Math.min(this.#baseDelayMs * this.#factor ** failures, this.#maxDelayMs);
  }

  /** Queues `key` after its backoff, which doubles (by `factor`) with each call until `forget`. */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    const delay = this.backoffFor(key);
    this.#failures.set(key, (this.#failures.get(key) ?? 0) + 1);
    this.#metrics.retry?.(key);
    this.addAfter(key, delay);
  }

  /** Clears the backoff of `key` (after it succeeded). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /**
   * Adds every key `keys()` yields now and then every `intervalMs`, until shutdown or the
   * returned function is called. A failing provider is reported through `onError`.
   */
  resync(keys: () => Iterable<string> | Promise<Iterable<string>>, intervalMs: number): () => void {
    if (!(intervalMs > 0)) throw new RangeError('resync interval must be > 0');
    const entry: { timer?: TimerHandle; stopped: boolean } = { stopped: false };
    const stop = () => {
      entry.stopped = true;
      if (entry.timer) this.#clock.clearTimeout(entry.timer);
      this.#resyncs.delete(entry);
    };
    if (this.#shuttingDown) return stop;
    const schedule = () => {
      if (entry.stopped || this.#shuttingDown) return;
      entry.timer = this.#clock.setTimeout(() => background('queue-resync', tick), intervalMs);
    };
    const tick = async () => {
      entry.timer = undefined;
      try {
        for (const key of await keys()) {
          if (entry.stopped) break;
          this.add(key);
        }
      } catch (err) {
        this.#onError(err, '(resync)', 0);
      }
      schedule();
    };
    this.#resyncs.add(entry);
    schedule();
    return stop;
  }

  /**
   * Runs `workers` workers until shutdown; resolves when they have all stopped. A queue runs
   * once.
   */
  run(reconcile: Reconcile, options: RunOptions = {}): Promise<void> {
    if (this.#running) throw new Error(`work queue ${this.name} is already running`);
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError('workers must be a whole number >= 1');
    const all: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) all.push(this.#worker(reconcile));
    this.#running = Promise.all(all).then(() => undefined);
    return this.#running;
  }

  /**
   * Stops accepting keys, drops pending ones, cancels timers and aborts the signal in-flight
   * reconciles see; resolves when the workers have finished what they were doing.
   */
  shutDown(): Promise<void> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      for (const { timer } of this.#delayed.values()) this.#clock.clearTimeout(timer);
      this.#delayed.clear();
      for (const entry of [...this.#resyncs]) {
        entry.stopped = true;
        if (entry.timer) this.#clock.clearTimeout(entry.timer);
      }
      this.#resyncs.clear();
      this.#ready.length = 0;
      this.#queuedAt.clear();
      this.#metrics.depth?.(0);
      for (const wake of this.#waiters.splice(0)) wake(undefined);
      this.#abort.abort(new Error(`work queue ${this.name} shut down`));
    }
    return this.#running ?? Promise.resolve();
  }

  #push(key: string, first = false): void {
    this.#queuedAt.set(key, this.#clock.now());
    const wake = this.#waiters.shift();
    if (wake) {
      this.#metrics.depth?.(this.#ready.length);
      wake(this.#take(key));
      return;
    }
    if (first) this.#ready.unshift(key);
    else this.#ready.push(key);
    this.#metrics.depth?.(this.#ready.length);
  }

  /** Marks `key` as taken by a worker. */
  #take(key: string): string {
    this.#dirty.delete(key);
    this.#processing.add(key);
    const queuedAt = this.#queuedAt.get(key);
    this.#queuedAt.delete(key);
    if (queuedAt !== undefined) this.#metrics.queueLatency?.(this.#clock.now() - queuedAt);
    return key;
  }

  #get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#ready.shift();
    if (key !== undefined) {
      this.#metrics.depth?.(this.#ready.length);
      return Promise.resolve(this.#take(key));
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
  }

  async #worker(reconcile: Reconcile): Promise<void> {
    for (;;) {
      const key = await this.#get();
      if (key === undefined) return;
      const retries = this.#failures.get(key) ?? 0;
      const started = this.#clock.now();
      let outcome: WorkOutcome = 'success';
      try {
        const result = await reconcile(key, { signal: this.#abort.signal, retries });
        this.forget(key);
        const after = result?.requeueAfter;
        if (after !== undefined && after > 0) this.addAfter(key, after);
      } catch (err) {
        if (err instanceof TerminalError) {
          outcome = 'terminal';
          this.forget(key);
        } else {
          outcome = 'error';
          this.addRateLimited(key);
        }
        try {
          this.#onError(err, key, retries);
        } catch {
          // a failing logger must not stop a worker
        }
      } finally {
        this.#metrics.workDuration?.(this.#clock.now() - started, outcome);
        this.#done(key);
      }
    }
  }
}
