// The controller machinery against the real API server: the resilient informer (events, and a
// relist after the connection to the API server is cut) and leader election through a Lease
// (one leader at a time, hand-over on release, take-over after a partition). Faults are real:
// the informer and one elector reach the API server through a TCP proxy in this process that
// the test can cut (connections reset, new ones refused) or black-hole (bytes stop flowing).
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { FaultyProxy, apiServerAddress, proxiedKubeConfig } from './support/faulty-proxy.ts';
import { ResilientInformer } from '../../src/controller/informer.ts';
import { LeaderElector } from '../../src/controller/leader-election.ts';
import { createTestNamespace, deleteNamespace, isApiError, loadKubeConfig, sleep, waitFor } from './support/kube.ts';

interface Seen {
  type: 'add' | 'update' | 'delete';
  name: string;
  value?: string;
  old?: string;
}

describe('controller machinery (cluster)', function () {
  this.timeout(120_000);

  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let coordination: k8s.CoordinationV1Api;
  let ns: string;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(async () => {
    kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    ns = await createTestNamespace(core, 'machinery');
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  after(async () => {
    if (ns) await deleteNamespace(core, ns);
  });

  // Every namespace also gets a kube-root-ca.crt ConfigMap: the informers select ours by label.
  const selector = 'conveyor.ci/test=machinery';
  const configMap = (name: string, value: string): k8s.V1ConfigMap => ({
    metadata: { name, labels: { 'conveyor.ci/test': 'machinery' } },
    data: { value },
  });

  function watchConfigMaps(via: k8s.KubeConfig, backoff = { baseDelayMs: 200, maxDelayMs: 1000 }) {
    const api = via.makeApiClient(k8s.CoreV1Api);
    const seen: Seen[] = [];
    const errors: unknown[] = [];
    const informer = new ResilientInformer<k8s.V1ConfigMap>({
      kubeConfig: via,
      path: `/api/v1/namespaces/${ns}/configmaps`,
      list: () => api.listNamespacedConfigMap({ namespace: ns, labelSelector: selector }),
      labelSelector: selector,
      name: 'configmaps',
      backoff,
      onError: (err) => errors.push(err),
    });
    informer.on('add', (cm) => seen.push({ type: 'add', name: cm.metadata?.name ?? '', value: cm.data?.value }));
    informer.on('update', (cm, old) => seen.push({ type: 'update', name: cm.metadata?.name ?? '', value: cm.data?.value, old: old.data?.value }));
    informer.on('delete', (cm) => seen.push({ type: 'delete', name: cm.metadata?.name ?? '', value: cm.data?.value }));
    cleanups.push(() => informer.stop());
    return { informer, seen, errors };
  }

  const has = (seen: Seen[], type: Seen['type'], name: string, value?: string) =>
    seen.some((s) => s.type === type && s.name === name && (value === undefined || s.value === value));

  describe('ResilientInformer', () => {
    it('lists, then delivers add, update and delete from the watch, and serves the cache', async () => {
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('before', '1') });
      cleanups.push(() => core.deleteNamespacedConfigMap({ namespace: ns, name: 'before' }).then(() => {}));
      const { informer, seen, errors } = watchConfigMaps(kc);
      expect(informer.hasSynced()).to.equal(false);
      informer.start();
      await informer.waitForSync(30_000);
      expect(informer.hasSynced()).to.equal(true);
      expect(informer.state).to.equal('running');
      expect(seen).to.deep.equal([{ type: 'add', name: 'before', value: '1' }]);
      expect(informer.get('before', ns)?.data?.value).to.equal('1');
      expect(informer.keys()).to.deep.equal([`${ns}/before`]);

      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('a', '1') });
      await waitFor('add of a', 10_000, async () => (has(seen, 'add', 'a', '1') ? true : undefined));
      await core.replaceNamespacedConfigMap({ namespace: ns, name: 'a', body: configMap('a', '2') });
      await waitFor('update of a', 10_000, async () => (has(seen, 'update', 'a', '2') ? true : undefined));
      expect(seen.find((s) => s.type === 'update')?.old, 'the handler sees the old version').to.equal('1');
      expect(informer.get('a', ns)?.data?.value).to.equal('2');
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'a' });
      await waitFor('delete of a', 10_000, async () => (has(seen, 'delete', 'a') ? true : undefined));
      expect(informer.get('a', ns)).to.equal(undefined);
      expect(informer.list(ns).map((cm) => cm.metadata?.name)).to.deep.equal(['before']);
      expect(informer.list('elsewhere')).to.deep.equal([]);
      expect(seen.map((s) => `${s.type} ${s.name}`)).to.deep.equal(['add before', 'add a', 'update a', 'delete a']);
      expect(informer.restarts).to.equal(0);
      expect(errors).to.deep.equal([]);
    });

    it('restarts after the connection is cut and relists: changes made while down arrive once', async () => {
      for (const name of ['keep', 'change', 'gone']) {
        await core.createNamespacedConfigMap({ namespace: ns, body: configMap(`cut-${name}`, '1') });
      }
      const { host, port } = apiServerAddress(kc);
      const proxy = new FaultyProxy(host, port);
      await proxy.listen();
      cleanups.push(() => proxy.close());
      const { informer, seen, errors } = watchConfigMaps(proxiedKubeConfig(kc, proxy.port));
      const ours = () => seen.filter((s) => s.name.startsWith('cut-'));
      informer.start();
      await informer.waitForSync(30_000);
      expect(ours().map((s) => `${s.type} ${s.name}`).sort()).to.deep.equal(['add cut-change', 'add cut-gone', 'add cut-keep']);
      await waitFor('the watch connection through the proxy', 10_000, async () => (proxy.connections > 0 ? true : undefined));

      // A real network fault: every connection reset, new ones refused.
      proxy.set('reset');
      await waitFor('the informer to notice and fail again while the API server is unreachable', 20_000, async () =>
        informer.restarts >= 2 && errors.length >= 3 ? true : undefined,
      );
      expect(informer.state).to.be.oneOf(['backoff', 'starting']);

      // Changes while nobody watches.
      await core.replaceNamespacedConfigMap({ namespace: ns, name: 'cut-change', body: configMap('cut-change', '2') });
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'cut-gone' });
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cut-new', '1') });
      await sleep(500);
      const before = ours().length;
      expect(before, 'nothing can arrive while the proxy is down').to.equal(3);

      proxy.set('up');
      await waitFor('the relist to deliver what changed while down', 20_000, async () =>
        has(seen, 'update', 'cut-change', '2') && has(seen, 'delete', 'cut-gone') && has(seen, 'add', 'cut-new') ? true : undefined,
      );
      await waitFor('the informer to be running again', 10_000, async () => (informer.state === 'running' ? true : undefined));
      expect(ours().slice(3).map((s) => `${s.type} ${s.name}`).sort(), 'each change once, the unchanged object not again').to.deep.equal([
        'add cut-new',
        'delete cut-gone',
        'update cut-change',
      ]);
      expect(ours().find((s) => s.type === 'update')?.old).to.equal('1');
      expect(
        informer
          .list(ns)
          .map((cm) => cm.metadata?.name)
          .filter((n) => n?.startsWith('cut-'))
          .sort(),
      ).to.deep.equal(['cut-change', 'cut-keep', 'cut-new']);
      expect(errors.length).to.be.greaterThan(0);

      // And the new watch is live.
      await core.createNamespacedConfigMap({ namespace: ns, body: configMap('cut-after', '1') });
      await waitFor('add of cut-after from the restarted watch', 10_000, async () => (has(seen, 'add', 'cut-after') ? true : undefined));
      expect(ours().filter((s) => s.name === 'cut-keep'), 'cut-keep seen once in all').to.have.length(1);
    });

    it('keeps restarting with backoff while the list itself fails, then syncs', async () => {
      const { host, port } = apiServerAddress(kc);
      const proxy = new FaultyProxy(host, port);
      await proxy.listen();
      cleanups.push(() => proxy.close());
      proxy.set('reset');
      const { informer, errors } = watchConfigMaps(proxiedKubeConfig(kc, proxy.port), { baseDelayMs: 100, maxDelayMs: 400 });
      informer.start();
      await waitFor('several failed attempts', 20_000, async () => (errors.length >= 4 ? true : undefined));
      expect(informer.hasSynced()).to.equal(false);
      proxy.set('up');
      await informer.waitForSync(20_000);
      expect(informer.restarts).to.be.at.least(3);
      expect(informer.list(ns).length).to.be.greaterThan(0);
    });
  });

  describe('LeaderElector', () => {
    const timings = { leaseDurationSeconds: 4, renewDeadlineSeconds: 2.5, retryPeriodSeconds: 0.4 };

    interface Candidate {
      elector: LeaderElector;
      log: Array<{ what: 'start' | 'stop'; at: number }>;
      errors: unknown[];
      signals: AbortSignal[];
    }

    function candidate(identity: string, lease: string, via: k8s.KubeConfig = kc): Candidate {
      const log: Candidate['log'] = [];
      const errors: unknown[] = [];
      const signals: AbortSignal[] = [];
      const elector = new LeaderElector({
        kubeConfig: via,
        name: lease,
        namespace: ns,
        identity,
        ...timings,
        onStartedLeading: (signal) => {
          log.push({ what: 'start', at: Date.now() });
          signals.push(signal);
        },
        onStoppedLeading: () => log.push({ what: 'stop', at: Date.now() }),
        onError: (err) => errors.push(err),
      });
      cleanups.push(() => elector.stop());
      return { elector, log, errors, signals };
    }

    /** Leadership intervals of all candidates, checked for overlap. */
    function assertNoOverlap(...candidates: Candidate[]): void {
      const intervals = candidates.flatMap((c) => {
        const out: Array<[number, number, string]> = [];
        for (let i = 0; i < c.log.length; i++) {
          const entry = c.log[i];
          if (entry?.what !== 'start') continue;
          const end = c.log.slice(i + 1).find((e) => e.what === 'stop');
          out.push([entry.at, end?.at ?? Infinity, c.elector.identity]);
        }
        return out;
      });
      intervals.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < intervals.length; i++) {
        const previous = intervals[i - 1];
        const current = intervals[i];
        if (!previous || !current) continue;
        expect(previous[1], `${previous[2]} still led when ${current[2]} started`).to.be.at.most(current[0]);
      }
    }

    async function holder(lease: string): Promise<string | undefined> {
      try {
        const l = await coordination.readNamespacedLease({ name: lease, namespace: ns });
        return l.spec?.holderIdentity || undefined;
      } catch (err) {
        if (isApiError(err, 404)) return undefined;
        throw err;
      }
    }

    it('elects exactly one of two candidates racing for a new Lease, and hands over at once on release', async () => {
      const lease = 'race';
      const a = candidate('candidate-a', lease);
      const b = candidate('candidate-b', lease);
      a.elector.start();
      b.elector.start();
      const first = await waitFor('a leader', 15_000, async () =>
        a.elector.isLeader() ? a : b.elector.isLeader() ? b : undefined,
      );
      const second = first === a ? b : a;
      // For a few renew periods exactly one leads, and the Lease names it.
      for (let i = 0; i < 20; i++) {
        expect([a, b].filter((c) => c.elector.isLeader()), 'exactly one leader').to.have.length(1);
        await sleep(100);
      }
      expect(await holder(lease)).to.equal(first.elector.identity);
      expect(second.elector.leader(), 'the follower knows the leader').to.equal(first.elector.identity);
      expect(a.errors.concat(b.errors), 'losing the race (409) is not an error').to.deep.equal([]);

      const released = Date.now();
      await first.elector.stop();
      expect(first.signals[0]?.aborted, 'the term signal aborts').to.equal(true);
      expect(first.log.map((e) => e.what)).to.deep.equal(['start', 'stop']);
      await waitFor('the other candidate to take over', 5_000, async () => (second.elector.isLeader() ? true : undefined));
      const handover = Date.now() - released;
      expect(handover, 'a released Lease is taken at the next retry, not after it expires').to.be.below(timings.leaseDurationSeconds * 1000);
      expect(await holder(lease)).to.equal(second.elector.identity);
      assertNoOverlap(a, b);

      await second.elector.stop();
      expect(await holder(lease), 'released on stop').to.equal(undefined);
      const l = await coordination.readNamespacedLease({ name: lease, namespace: ns });
      expect(l.spec?.leaseDurationSeconds).to.equal(1);
      expect(l.spec?.leaseTransitions, 'created by one, taken over by the other').to.equal(1);
    });

    for (const fault of ['reset', 'blackhole'] as const) {
      it(`lets a partitioned leader (${fault}) step down, and the other take over only once the Lease expired`, async () => {
        const lease = `partition-${fault}`;
        const { host, port } = apiServerAddress(kc);
        const proxy = new FaultyProxy(host, port);
        await proxy.listen();
        cleanups.push(() => proxy.close());
        const a = candidate('leader-a', lease, proxiedKubeConfig(kc, proxy.port));
        const b = candidate('follower-b', lease);
        a.elector.start();
        await waitFor('a to lead', 15_000, async () => (a.elector.isLeader() ? true : undefined));
        b.elector.start();
        await sleep(1500);
        expect(b.elector.isLeader()).to.equal(false);
        expect(b.elector.leader()).to.equal('leader-a');

        // Partition: a can no longer renew, and does not release.
        const cut = Date.now();
        proxy.set(fault);
        // a's last renew that reached the API server: its renewTime is a's clock (this process's)
        // at the start of that renew. A renew that lands after the cut is never answered to a, so
        // a's own last successful renew is never later than this one.
        const renewedAt = Date.parse(String((await coordination.readNamespacedLease({ name: lease, namespace: ns })).spec?.renewTime));
        expect(renewedAt, 'the Lease has a renewTime').to.be.within(cut - 10_000, cut);
        await waitFor('a to step down', 10_000, async () => (a.elector.isLeader() ? undefined : true));
        await waitFor('b to take over', 15_000, async () => (b.elector.isLeader() ? true : undefined));
        const takeover = Date.now() - cut;
        // The end of a's last term (a slow API server on a loaded machine may have cut an earlier one short).
        const aStop = a.log.findLast((e) => e.what === 'stop')?.at ?? Infinity;
        const bStart = b.log.find((e) => e.what === 'start')?.at ?? 0;
        const { leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds } = timings;
        // a's own records against the Lease's renewTime, all on this process's clock: no polling delay.
        expect(aStop - renewedAt, 'a gives up at its renew deadline (plus timer latency)').to.be.at.most((renewDeadlineSeconds + 0.75) * 1000);
        expect(aStop - renewedAt, 'a gives up before the Lease can expire for anyone').to.be.below(leaseDurationSeconds * 1000);
        expect(bStart - renewedAt, 'b waits for the Lease to expire').to.be.at.least(leaseDurationSeconds * 1000);
        expect(takeover, 'b takes over soon after it expired').to.be.at.most((leaseDurationSeconds + 2 * retryPeriodSeconds) * 1000 + 2000);
        expect(a.signals[0]?.aborted).to.equal(true);
        assertNoOverlap(a, b);
        expect(await holder(lease)).to.equal('follower-b');

        // The network heals: a finds b holding the Lease and stays a follower. a's request from
        // before the heal may still hang on a black-holed connection until its own deadline
        // (renewDeadline), so a learns of b at its first request after that, not at once.
        proxy.set('up');
        await waitFor('a to see b holding the Lease', 15_000, async () => (a.elector.leader() === 'follower-b' ? true : undefined));
        await sleep(2000);
        expect(a.elector.isLeader()).to.equal(false);
        expect(b.elector.isLeader()).to.equal(true);
        expect(a.elector.leader()).to.equal('follower-b');
        expect(a.log.filter((e) => e.what === 'start' && e.at >= bStart), 'a never led again').to.deep.equal([]);
        expect(await holder(lease)).to.equal('follower-b');
        assertNoOverlap(a, b);
      });
    }
  });
});
