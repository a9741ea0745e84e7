// Leader election through a coordination.k8s.io/v1 Lease, after client-go's leaderelection.
//
// A candidate reads the Lease every `retryPeriod`. It takes the Lease when it is absent,
// released (no holder) or expired, and it renews its own; every write carries the
// resourceVersion it read, so of two candidates racing for one Lease exactly one write
// succeeds and the other gets 409 Conflict. Expiry is judged on the candidate's own clock,
// from the moment it last saw the Lease change (not from `renewTime`, which another machine's
// clock wrote), so clock skew between servers does not matter.
//
// The leader counts its term from the start of its last successful renew: when renewing has
// not succeeded for `renewDeadline` (< `leaseDuration`), it stops leading — its signal aborts
// and `onStoppedLeading` runs — before any other candidate can see the Lease expire. After
// losing the Lease it becomes a candidate again. `stop()` ends the work first, then releases
// the Lease (no holder, duration 1 s) so a successor takes over at its next retry.
import * as k8s from '@kubernetes/client-node';
import { realClock, sleep, type Clock, type TimerHandle } from './clock.ts';
import { background } from '../observability/background.ts';

export interface LeaderElectorOptions {
  kubeConfig: k8s.KubeConfig;
  /** The Lease's name and namespace. */
  name: string;
  namespace: string;
  /** This candidate's identity, unique among candidates (e.g. the pod name). */
  identity: string;
  /** How long a Lease is valid after its last renew, in whole seconds (default 15). */
  leaseDurationSeconds?: number;
  /** How long the leader keeps trying to renew before it gives up, in seconds (default 10). */
  renewDeadlineSeconds?: number;
  /** How often candidates and the leader act, in seconds (default 2). */
  retryPeriodSeconds?: number;
  clock?: Clock;
  /** Called when this candidate becomes leader; `signal` aborts when it stops leading. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once each time a term ends (lost, or given up by `stop`). */
  onStoppedLeading?: () => void;
  /** Called whenever the observed holder changes (undefined: nobody holds the Lease). */
  onNewLeader?: (identity: string | undefined) => void;
  /** Called for failed API calls and failing callbacks — the place to log. */
  onError?: (err: unknown) => void;
}

/** Extra random wait on top of `retryPeriod` while acquiring, as a fraction of it. */
const JITTER = 0.5;

function microTime(ms: number): k8s.V1MicroTime {
  return new k8s.V1MicroTime(ms);
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && err.code === code;
}

export class LeaderElector {
  readonly identity: string;
  readonly #options: LeaderElectorOptions;
  readonly #api: k8s.CoordinationV1Api;
  readonly #clock: Clock;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;

  #running?: Promise<void>;
  #stop = new AbortController();
  #stopped = true;

  /** The current term: set while this candidate leads. */
  #term?: { abort: AbortController; work: Promise<void> };
  /** Start of the last successful acquire or renew, on our clock. */
  #lastRenewAt = 0;
  /** The Lease as last read or written, and when we saw its resourceVersion change. */
  #observed?: { resourceVersion?: string; holder?: string; durationMs: number };
  #observedAt = 0;
  #deadline?: TimerHandle;

  constructor(options: LeaderElectorOptions) {
    this.#options = options;
    this.identity = options.identity;
    this.#api = options.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    this.#clock = options.clock ?? realClock;
    const lease = options.leaseDurationSeconds ?? 15;
    const renew = options.renewDeadlineSeconds ?? 10;
    const retry = options.retryPeriodSeconds ?? 2;
    if (!Number.isInteger(lease) || lease < 1) throw new RangeError('leaseDurationSeconds must be a whole number >= 1');
    if (!(renew < lease)) throw new RangeError('renewDeadlineSeconds must be less than leaseDurationSeconds');
    if (!(retry > 0) || !(retry * (1 + JITTER) < renew)) throw new RangeError('retryPeriodSeconds must be > 0 and well below renewDeadlineSeconds');
    if (!options.identity) throw new RangeError('identity must not be empty');
    this.#leaseDurationMs = lease * 1000;
    this.#renewDeadlineMs = renew * 1000;
    this.#retryPeriodMs = retry * 1000;
  }

  isLeader(): boolean {
    return this.#term !== undefined;
  }

  /** The holder this candidate last observed (itself when leading). */
  leader(): string | undefined {
    return this.#observed?.holder || undefined;
  }

  /** Starts campaigning; a no-op when already started. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#stop = new AbortController();
    this.#running = this.#loop();
  }

  /**
   * Stops campaigning. When leading: aborts the term's signal, waits for the work that
   * `onStartedLeading` returned (at most `renewDeadline`), calls `onStoppedLeading`, then
   * releases the Lease so that a successor does not wait for it to expire.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    await this.#running;
    const wasLeading = this.#term !== undefined;
    await this.#endTerm(true);
    if (wasLeading) await this.#release();
  }

  async #loop(): Promise<void> {
    const stopSignal = this.#stop.signal;
    while (!this.#stopped) {
      // Candidate: try until the Lease is ours.
      for (;;) {
        if (this.#stopped) return;
        if (await this.#tryAcquireOrRenew(this.#renewDeadlineMs)) break;
        const wait = this.#retryPeriodMs * (1 + Math.random() * JITTER);
        await sleep(this.#clock, wait, stopSignal).catch(() => {});
      }
      if (this.#stopped) return;
      this.#beginTerm();
      // Leader: renew every retryPeriod until a renew fails for renewDeadline.
      while (!this.#stopped && this.#term) {
        // Never sleep past the renew deadline: a retry due after it would be too late.
        const until = this.#lastRenewAt + this.#renewDeadlineMs - this.#clock.now();
        await sleep(this.#clock, Math.max(0, Math.min(this.#retryPeriodMs, until)), stopSignal).catch(() => {});
        if (this.#stopped || !this.#term) break;
        const left = this.#lastRenewAt + this.#renewDeadlineMs - this.#clock.now();
        if (left <= 0) break;
        const renewed = await this.#tryAcquireOrRenew(left);
        if (this.#stopped) break;
        if (!renewed && this.#observed?.holder && this.#observed.holder !== this.identity) break; // someone else holds it
        if (!renewed && this.#clock.now() - this.#lastRenewAt >= this.#renewDeadlineMs) break;
      }
      if (!this.#stopped) await this.#endTerm(false);
    }
  }

  #beginTerm(): void {
    const abort = new AbortController();
    let work: Promise<void>;
    try {
      work = Promise.resolve(this.#options.onStartedLeading(abort.signal)).catch((err: unknown) => this.#report(err));
    } catch (err) {
      this.#report(err);
      work = Promise.resolve();
    }
    this.#term = { abort, work };
    this.#armDeadline();
  }

  /**
   * A dead man's switch: the term ends at the renew deadline even if a request hangs. A timer
   * may fire up to a millisecond before `now()` says it is due (Node's timers run on a
   * truncated monotonic clock, `realClock.now()` on the wall clock): then the switch is armed
   * again for the rest, never dropped.
   */
  #armDeadline(): void {
    if (this.#deadline) this.#clock.clearTimeout(this.#deadline);
    const left = this.#lastRenewAt + this.#renewDeadlineMs - this.#clock.now();
    this.#deadline = this.#clock.setTimeout(() => {
      this.#deadline = undefined;
      if (!this.#term) return;
      if (this.#clock.now() - this.#lastRenewAt >= this.#renewDeadlineMs) background('leader-election-end-term', this.#endTerm(false));
      else this.#armDeadline();
    }, Math.max(0, left));
  }

  async #endTerm(waitForWork: boolean): Promise<void> {
    const term = this.#term;
    if (!term) return;
    this.#term = undefined;
    if (this.#deadline) this.#clock.clearTimeout(this.#deadline);
    this.#deadline = undefined;
    term.abort.abort(new Error(`${this.identity} stopped leading ${this.#options.namespace}/${this.#options.name}`));
    if (waitForWork) {
      let timer: TimerHandle | undefined;
      await Promise.race([term.work, new Promise<void>((done) => (timer = this.#clock.setTimeout(done, this.#renewDeadlineMs)))]);
      if (timer) this.#clock.clearTimeout(timer);
    }
    try {
      this.#options.onStoppedLeading?.();
    } catch (err) {
      this.#report(err);
    }
  }

  /** One read and, when the Lease is free or ours, one write. True when we hold it after. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { name, namespace } = this.#options;
    const started = this.#clock.now();
    const deadline = started + timeoutMs;
    try {
      let lease: k8s.V1Lease;
      try {
        lease = await this.#call(deadline, (options) => this.#api.readNamespacedLease({ name, namespace }, options));
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
        const created = await this.#call(deadline, (options) =>
          this.#api.createNamespacedLease(
            {
              namespace,
              body: {
                metadata: { name, namespace },
                spec: {
                  holderIdentity: this.identity,
                  leaseDurationSeconds: this.#leaseDurationMs / 1000,
                  acquireTime: microTime(started),
                  renewTime: microTime(started),
                  leaseTransitions: 0,
                },
              },
            },
            options,
          ),
        );
        this.#observe(created);
        this.#renewed(started);
        return true;
      }
      this.#observe(lease);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity || undefined;
      const ours = holder === this.identity;
      const expiresAt = this.#observedAt + (this.#observed?.durationMs ?? this.#leaseDurationMs);
      if (holder && !ours && expiresAt > this.#clock.now()) return false;
      const updated = await this.#call(deadline, (options) =>
        this.#api.replaceNamespacedLease(
          {
            name,
            namespace,
            body: {
              ...lease,
              metadata: lease.metadata, // carries the resourceVersion we read: a race is a 409
              spec: {
                ...spec,
                holderIdentity: this.identity,
                leaseDurationSeconds: this.#leaseDurationMs / 1000,
                renewTime: microTime(started),
                acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(started),
                leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
              },
            },
          },
          options,
        ),
      );
      this.#observe(updated);
      this.#renewed(started);
      return true;
    } catch (err) {
      if (!isStatus(err, 409)) this.#report(err); // 409: another candidate won the race
      return false;
    }
  }

  #renewed(at: number): void {
    this.#lastRenewAt = at;
    if (this.#term) this.#armDeadline();
  }

  #observe(lease: k8s.V1Lease): void {
    const resourceVersion = lease.metadata?.resourceVersion;
    const holder = lease.spec?.holderIdentity || undefined;
    const previous = this.#observed;
    if (!previous || previous.resourceVersion !== resourceVersion) this.#observedAt = this.#clock.now();
    this.#observed = { resourceVersion, holder, durationMs: (lease.spec?.leaseDurationSeconds ?? this.#leaseDurationMs / 1000) * 1000 };
    if (previous?.holder !== holder) {
      try {
        this.#options.onNewLeader?.(holder);
      } catch (err) {
        this.#report(err);
      }
    }
  }

  /** Gives the Lease up if we still hold it: no holder, and a duration of 1 s. */
  async #release(): Promise<void> {
    const { name, namespace } = this.#options;
    const deadline = this.#clock.now() + this.#renewDeadlineMs;
    try {
      const lease = await this.#call(deadline, (options) => this.#api.readNamespacedLease({ name, namespace }, options));
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = this.#clock.now();
      const released = await this.#call(deadline, (options) =>
        this.#api.replaceNamespacedLease(
          {
            name,
            namespace,
            body: {
              ...lease,
              metadata: lease.metadata,
              spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) },
            },
          },
          options,
        ),
      );
      this.#observe(released);
    } catch (err) {
      if (!isStatus(err, 409) && !isStatus(err, 404)) this.#report(err);
    }
  }

  /**
   * Runs one API call with a deadline: the request is aborted (through a per-call middleware
   * that sets its AbortSignal) and the call rejects once the deadline passes.
   */
  async #call<T>(deadline: number, call: (options: k8s.ConfigurationOptions) => Promise<T>): Promise<T> {
    const ms = deadline - this.#clock.now();
    if (ms <= 0) throw new Error('deadline passed before the request');
    const abort = new AbortController();
    const middleware: k8s.ObservableMiddleware = {
      pre: (context) => {
        context.setSignal(abort.signal);
        return new k8s.Observable(Promise.resolve(context));
      },
      post: (context) => new k8s.Observable(Promise.resolve(context)),
    };
    const options: k8s.ConfigurationOptions = { middleware: [middleware], middlewareMergeStrategy: 'append' };
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => {
        const err = new Error(`request to the API server timed out after ${ms} ms`);
        abort.abort(err);
        reject(err);
      }, ms);
    });
    try {
      return await Promise.race([call(options), timeout]);
    } finally {
      if (timer) this.#clock.clearTimeout(timer);
    }
  }

  #report(err: unknown): void {
    try {
      (this.#options.onError ?? ((e) => console.error(`leader election ${this.#options.namespace}/${this.#options.name} (${this.identity}):`, e)))(err);
    } catch {
      // ignore
    }
  }
}
