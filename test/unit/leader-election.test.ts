// The leader elector's timing on an injected clock: a leader whose renew request hangs (a
// black-holed connection) steps down at its renew deadline, by its own timer, also when timers
// fire a little early as Node's do. The candidates share a Lease kept in memory here (read,
// create, and a replace that needs the resourceVersion it read: 409 otherwise); "partitioned"
// makes every request of one candidate hang forever. The elector against a real API server,
// with real network faults, is tested in test/cluster/controller-machinery.test.ts.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { ManualClock, type Clock, type TimerHandle } from '../../src/controller/clock.ts';
import { LeaderElector } from '../../src/controller/leader-election.ts';

class LeaseStore {
  lease?: k8s.V1Lease;
  #version = 0;

  /** The API as one candidate reaches it; while `partitioned()` holds, its requests never settle. */
  api(partitioned: () => boolean) {
    const reach = <T>(answer: () => T): Promise<T> => (partitioned() ? new Promise<T>(() => {}) : Promise.resolve().then(answer));
    return {
      readNamespacedLease: () =>
        reach(() => {
          if (!this.lease) throw new k8s.ApiException(404, 'not found', {}, {});
          return structuredClone(this.lease);
        }),
      createNamespacedLease: ({ body }: { body: k8s.V1Lease }) =>
        reach(() => {
          if (this.lease) throw new k8s.ApiException(409, 'exists', {}, {});
          return this.#store(body);
        }),
      replaceNamespacedLease: ({ body }: { body: k8s.V1Lease }) =>
        reach(() => {
          if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw new k8s.ApiException(409, 'conflict', {}, {});
          return this.#store(body);
        }),
    };
  }

  #store(body: k8s.V1Lease): k8s.V1Lease {
    this.lease = structuredClone({ ...body, metadata: { ...body.metadata, resourceVersion: String(++this.#version) } });
    return structuredClone(this.lease);
  }
}

/**
 * The manual clock, but every timer of 2 ms or more fires 1 ms before `now()` says it is due,
 * as Node's timers may (they run on a monotonic clock truncated to milliseconds, `Date.now()`
 * is the wall clock).
 */
class EarlyTimers implements Clock {
  readonly #inner: ManualClock;
  constructor(inner: ManualClock) {
    this.#inner = inner;
  }
  now(): number {
    return this.#inner.now();
  }
  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.#inner.setTimeout(callback, ms >= 2 ? ms - 1 : ms);
  }
  clearTimeout(handle: TimerHandle): void {
    this.#inner.clearTimeout(handle);
  }
}

const timings = { leaseDurationSeconds: 4, renewDeadlineSeconds: 2.5, retryPeriodSeconds: 0.4 };

for (const early of [false, true]) {
  describe(`controller: LeaderElector on a manual clock${early ? ' whose timers fire 1 ms early' : ''}`, () => {
    it('a leader whose renew hangs steps down at its renew deadline; the other takes over only after the Lease expired', async () => {
      const manual = new ManualClock(1_000_000);
      const clock = early ? new EarlyTimers(manual) : manual;
      const store = new LeaseStore();
      let cut = false;
      const log: Array<[string, 'start' | 'stop', number]> = [];
      const signals: AbortSignal[] = [];
      const errors: unknown[] = [];
      const candidate = (identity: string, partitioned: () => boolean) =>
        new LeaderElector({
          kubeConfig: { makeApiClient: () => store.api(partitioned) } as unknown as k8s.KubeConfig,
          name: 'lease',
          namespace: 'ns',
          identity,
          ...timings,
          clock,
          onStartedLeading: (signal) => {
            log.push([identity, 'start', manual.now()]);
            signals.push(signal);
          },
          onStoppedLeading: () => log.push([identity, 'stop', manual.now()]),
          onError: (err) => errors.push(err),
        });
      const a = candidate('a', () => cut);
      const b = candidate('b', () => false);
      const t0 = manual.now();
      a.start();
      await manual.advanceAsync(0);
      expect(a.isLeader()).to.equal(true);
      b.start();
      await manual.advanceAsync(1000);
      expect(b.isLeader()).to.equal(false);
      expect(b.leader()).to.equal('a');

      // a renews every retryPeriod; cut it off just after a renew.
      const lastRenew = new Date(store.lease?.spec?.renewTime ?? 0).getTime();
      expect(lastRenew).to.be.within(t0 + 600, t0 + 1000);
      cut = true;
      const renewDeadline = lastRenew + timings.renewDeadlineSeconds * 1000;
      await manual.advanceAsync(renewDeadline - 1 - manual.now());
      expect(a.isLeader(), 'still leading 1 ms before the renew deadline').to.equal(true);
      await manual.advanceAsync(1);
      expect(a.isLeader(), 'stepped down at the renew deadline, with its renew request still hanging').to.equal(false);
      expect(signals[0]?.aborted).to.equal(true);
      expect(log).to.deep.equal([
        ['a', 'start', t0],
        ['a', 'stop', renewDeadline],
      ]);

      // b judges expiry from when it saw the last renew (at most retryPeriod * 1.5 after it).
      await manual.advanceAsync(lastRenew + timings.leaseDurationSeconds * 1000 - 1 - manual.now());
      expect(b.isLeader(), 'the Lease has not expired yet').to.equal(false);
      await manual.advanceAsync(1500);
      expect(b.isLeader()).to.equal(true);
      const bStart = log.find(([who, what]) => who === 'b' && what === 'start')?.[2] ?? 0;
      expect(bStart).to.be.at.least(lastRenew + timings.leaseDurationSeconds * 1000);
      expect(store.lease?.spec?.holderIdentity).to.equal('b');
      expect(a.isLeader()).to.equal(false);
      for (const err of errors) expect((err as Error).message, 'only timeouts of the hung requests').to.match(/timed out|deadline passed/);

      cut = false;
      await b.stop();
      expect(store.lease?.spec?.holderIdentity, 'b released the Lease').to.equal('');
      const stopping = a.stop();
      await manual.advanceAsync(10_000);
      await stopping;
      expect(manual.pending, 'no timer left behind').to.equal(0);
    });
  });
}
