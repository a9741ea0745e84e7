// An informer that keeps itself alive. client-node's ListWatch relists on its own after a
// 410 Gone and reconnects after a clean close or its 30 s inactivity timeout, but after any
// other error (a list that fails, a connection reset, a refused connection, an HTTP error on
// the watch) it emits 'error' and stops for good. `ResilientInformer` wraps one ListWatch per
// attempt: on an error it drops that instance and, after an exponential backoff on an
// injectable clock, starts a fresh one, whose first act is a full relist.
//
// The cache and the handlers belong to the wrapper, so they survive restarts. A relist is
// merged into the cache the way client-go's Replace does it: an object whose resourceVersion
// did not change raises nothing, a changed one raises 'update', a new one 'add', and an object
// that vanished while the watch was down raises 'delete'. Handlers therefore see every change,
// also those made while the informer was down, and never the same version twice.
import * as k8s from '@kubernetes/client-node';
import { realClock, type Clock, type TimerHandle } from './clock.ts';
import { background } from '../observability/background.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export type AddHandler<T> = (obj: T) => void;
export type UpdateHandler<T> = (obj: T, old: T) => void;
export type DeleteHandler<T> = (obj: T) => void;

export interface InformerBackoffOptions {
  /** Delay before the first restart (default 500 ms). */
  baseDelayMs?: number;
  /** Multiplier per further consecutive failure (default 2). */
  factor?: number;
  /** Upper bound of the delay (default 30 s). */
  maxDelayMs?: number;
  /** An attempt that lived this long before failing resets the backoff (default 60 s). */
  resetAfterMs?: number;
}

/** The part of client-node's `Watch` the informer uses. */
export type WatchLike = Pick<k8s.Watch, 'watch'>;

export interface ResilientInformerOptions<T extends k8s.KubernetesObject> {
  /** The cluster to watch (used to make the `Watch` unless `watch` is given). */
  kubeConfig: k8s.KubeConfig;
  /** The collection's API path, e.g. `/api/v1/namespaces/ci/configmaps`. */
  path: string;
  /** Lists the same collection, e.g. `() => core.listNamespacedConfigMap({ namespace })`. */
  list: k8s.ListPromise<T>;
  labelSelector?: string;
  fieldSelector?: string;
  /** A name for logs. */
  name?: string;
  clock?: Clock;
  backoff?: InformerBackoffOptions;
  /** Called when an attempt fails, before the restart `restartInMs` later — the place to log. */
  onError?: (err: unknown, restartInMs: number) => void;
  /** Called when an event handler throws (the informer carries on). */
  onHandlerError?: (err: unknown, event: InformerEvent, obj: T) => void;
  /** Replaces client-node's `Watch` transport (it still talks to the API server). */
  watch?: WatchLike;
}

export type InformerState = 'stopped' | 'starting' | 'running' | 'backoff';

/** client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: k8s.KubernetesObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by `objectKey`. */
export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** What a freshly listed or watched object means for a cache holding `cached`. */
export function classifyChange(cached: k8s.KubernetesObject | undefined, next: k8s.KubernetesObject): 'add' | 'update' | 'none' {
  if (!cached) return 'add';
  const before = cached.metadata?.resourceVersion;
  return before !== undefined && before === next.metadata?.resourceVersion ? 'none' : 'update';
}

/** The restart delay after `failures` consecutive failures (0 for the first). */
export function restartDelay(failures: number, backoff: Required<Omit<InformerBackoffOptions, 'resetAfterMs'>>): number {
  return Math.min(backoff.baseDelayMs * backoff.factor ** failures, backoff.maxDelayMs);
}

interface SyncWaiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ResilientInformer<T extends k8s.KubernetesObject> {
  readonly name: string;
  readonly #options: ResilientInformerOptions<T>;
  readonly #clock: Clock;
  readonly #watch: WatchLike;
  readonly #backoff: Required<InformerBackoffOptions>;
  readonly #cache = new Map<string, T>();
  readonly #handlers = {
    add: new Set<AddHandler<T>>(),
    update: new Set<UpdateHandler<T>>(),
    delete: new Set<DeleteHandler<T>>(),
  };
  #syncWaiters: SyncWaiter[] = [];

  #state: InformerState = 'stopped';
  /** Bumped whenever the current ListWatch is abandoned; late callbacks of old ones are ignored. */
  #generation = 0;
  #inner?: k8s.ListWatch<T>;
  #timer?: TimerHandle;
  #attemptStartedAt = 0;
  #failures = 0;
  #restarts = 0;
  #synced = false;
  #lastError?: unknown;

  constructor(options: ResilientInformerOptions<T>) {
    this.#options = options;
    this.name = options.name ?? options.path;
    this.#clock = options.clock ?? realClock;
    this.#watch = options.watch ?? new k8s.Watch(options.kubeConfig);
    this.#backoff = {
      baseDelayMs: options.backoff?.baseDelayMs ?? 500,
      factor: options.backoff?.factor ?? 2,
      maxDelayMs: options.backoff?.maxDelayMs ?? 30_000,
      resetAfterMs: options.backoff?.resetAfterMs ?? 60_000,
    };
  }

  get state(): InformerState {
    return this.#state;
  }

  /** How many times a failed attempt was replaced by a fresh one. */
  get restarts(): number {
    return this.#restarts;
  }

  get lastError(): unknown {
    return this.#lastError;
  }

  /** True once the first list completed (and stays true across restarts, as in client-go). */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves once synced; rejects when stopped first or after `timeoutMs` (on the clock). */
  waitForSync(timeoutMs?: number): Promise<void> {
    if (this.#synced) return Promise.resolve();
    if (this.#state === 'stopped') return Promise.reject(new Error(`informer ${this.name} is not started`));
    return new Promise<void>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const waiter: SyncWaiter = {
        resolve: () => {
          if (timer) this.#clock.clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          if (timer) this.#clock.clearTimeout(timer);
          reject(err);
        },
      };
      this.#syncWaiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = this.#clock.setTimeout(() => {
          this.#syncWaiters = this.#syncWaiters.filter((w) => w !== waiter);
          const last = this.#lastError instanceof Error ? ` (last error: ${this.#lastError.message})` : '';
          reject(new Error(`informer ${this.name} did not sync within ${timeoutMs} ms${last}`));
        }, timeoutMs);
      }
    });
  }

  /** Registers a handler; it stays attached across restarts. Returns a function that removes it. */
  on(event: 'add', handler: AddHandler<T>): () => void;
  on(event: 'update', handler: UpdateHandler<T>): () => void;
  on(event: 'delete', handler: DeleteHandler<T>): () => void;
  on(event: InformerEvent, handler: AddHandler<T> | UpdateHandler<T>): () => void {
    const set = this.#handlers[event] as Set<typeof handler>;
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Objects in the cache, optionally of one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.#cache.values()];
    return namespace === undefined ? all : all.filter((obj) => (obj.metadata?.namespace ?? '') === namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** The keys (`objectKey`) of every cached object: a resync source for a `WorkQueue`. */
  keys(): string[] {
    return [...this.#cache.keys()];
  }

  /** Starts listing and watching; a no-op when already started. */
  start(): void {
    if (this.#state !== 'stopped') return;
    this.#failures = 0;
    this.#launch();
  }

  /** Stops watching (the cache and handlers are kept; `start` again relists). */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#generation++;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const waiter of this.#syncWaiters.splice(0)) waiter.reject(new Error(`informer ${this.name} stopped before it synced`));
    const inner = this.#inner;
    this.#inner = undefined;
    await inner?.stop();
  }

  #launch(): void {
    const generation = ++this.#generation;
    const live = () => generation === this.#generation;
    const { path, list, labelSelector, fieldSelector } = this.#options;
    const clock = this.#clock;
    const real = this.#watch;
    // ListWatch does not re-check `stop()` after its reconnect delay nor after a watch request
    // returns, so an abandoned instance could open a watch nobody aborts: this wrapper refuses
    // to open one for an abandoned attempt and aborts one that was opening when it was
    // abandoned. A set-up that throws (no current cluster, failing credential plugin) would
    // reject a promise ListWatch's reconnect path never awaits: it becomes `done(err)` instead.
    const watch: WatchLike = {
      watch: async (watchPath, params, callback, done) => {
        const aborted = new AbortController();
        aborted.abort();
        if (!live()) return aborted;
        let request: AbortController;
        try {
          request = await real.watch(watchPath, params, callback, done);
        } catch (err) {
          done(err);
          return aborted;
        }
        if (!live()) request.abort();
        return request;
      },
    };
    // ListWatch's own reconnect delay, on our clock; for an abandoned attempt it never ends.
    const delayFn = (ms: number) =>
      new Promise<void>((resolve) => {
        clock.setTimeout(() => {
          if (live()) resolve();
        }, ms);
      });
    const inner = new k8s.ListWatch<T>(path, watch as k8s.Watch, list, false, labelSelector, fieldSelector, { delayFn });
    this.#inner = inner;
    this.#state = 'starting';
    this.#attemptStartedAt = this.#clock.now();
    inner.on('add', (obj) => live() && this.#upsert(obj));
    inner.on('update', (obj) => live() && this.#upsert(obj));
    inner.on('delete', (obj) => live() && this.#remove(obj));
    inner.on('error', (err) => live() && this.#fail(err ?? new Error('informer error')));
    inner.start().then(
      () => {
        if (!live()) return;
        // The list is complete: what the cache holds beyond it vanished while nobody watched.
        const present = new Set(inner.list().map(objectKey));
        for (const key of [...this.#cache.keys()]) {
          if (!present.has(key)) this.#removeKey(key);
        }
        this.#state = 'running';
        if (!this.#synced) {
          this.#synced = true;
          for (const waiter of this.#syncWaiters.splice(0)) waiter.resolve();
        }
      },
      (err: unknown) => {
        if (live()) this.#fail(err);
      },
    );
  }

  #fail(err: unknown): void {
    if (this.#state === 'stopped') return;
    this.#generation++;
    this.#lastError = err;
    const inner = this.#inner;
    this.#inner = undefined;
    if (inner) background(`informer-${this.name}-stop`, inner.stop());
    if (this.#clock.now() - this.#attemptStartedAt >= this.#backoff.resetAfterMs) this.#failures = 0;
    const delay = restartDelay(this.#failures, this.#backoff);
    this.#failures++;
    this.#state = 'backoff';
    try {
      (this.#options.onError ?? ((e, ms) => console.error(`informer ${this.name} failed, restarting in ${ms} ms:`, e)))(err, delay);
    } catch {
      // a failing logger must not stop the restart
    }
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state !== 'backoff') return;
      this.#restarts++;
      this.#launch();
    }, delay);
  }

  #upsert(obj: T): void {
    const key = objectKey(obj);
    const cached = this.#cache.get(key);
    const change = classifyChange(cached, obj);
    this.#cache.set(key, obj);
    if (change === 'add') this.#emit('add', obj);
    else if (change === 'update' && cached) this.#emit('update', obj, cached);
  }

  #remove(obj: T): void {
    const key = objectKey(obj);
    if (!this.#cache.has(key)) return;
    this.#cache.delete(key);
    this.#emit('delete', obj);
  }

  #removeKey(key: string): void {
    const obj = this.#cache.get(key);
    if (!obj) return;
    this.#cache.delete(key);
    this.#emit('delete', obj);
  }

  #emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of [...this.#handlers[event]]) {
      try {
        if (event === 'update') (handler as UpdateHandler<T>)(obj, old as T);
        else (handler as AddHandler<T>)(obj);
      } catch (err) {
        try {
          (this.#options.onHandlerError ?? ((e) => console.error(`informer ${this.name}: ${event} handler failed:`, e)))(err, event, obj);
        } catch {
          // ignore
        }
      }
    }
  }
}
