// The informer's pure parts and its restart timing. Nothing here talks to an API server or
// imitates one: the list function only fails, as it does when the server is unreachable. The
// informer against a real API server (events, relist after a cut connection) is tested in
// test/cluster/controller-machinery.test.ts.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { ManualClock } from '../../src/controller/clock.ts';
import { ResilientInformer, classifyChange, objectKey, restartDelay, splitKey } from '../../src/controller/informer.ts';

const cm = (name: string, resourceVersion?: string, namespace?: string): k8s.V1ConfigMap => ({
  metadata: { name, namespace, resourceVersion },
});

describe('controller: informer helpers', () => {
  it('keys objects as namespace/name, or name when cluster-scoped, and splits keys back', () => {
    expect(objectKey(cm('a', '1', 'ns'))).to.equal('ns/a');
    expect(objectKey(cm('node-1'))).to.equal('node-1');
    expect(splitKey('ns/a')).to.deep.equal({ namespace: 'ns', name: 'a' });
    expect(splitKey('node-1')).to.deep.equal({ name: 'node-1' });
  });

  it('classifies a relisted object by its resourceVersion', () => {
    expect(classifyChange(undefined, cm('a', '5'))).to.equal('add');
    expect(classifyChange(cm('a', '5'), cm('a', '5'))).to.equal('none');
    expect(classifyChange(cm('a', '5'), cm('a', '6'))).to.equal('update');
    expect(classifyChange(cm('a'), cm('a')), 'no version: assume it changed').to.equal('update');
  });

  it('grows the restart delay exponentially up to the cap', () => {
    const backoff = { baseDelayMs: 500, factor: 2, maxDelayMs: 30_000 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => restartDelay(n, backoff))).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });
});

describe('controller: ResilientInformer restarts', () => {
  it('restarts a failing attempt with backoff on the injected clock until stopped', async () => {
    const clock = new ManualClock();
    const lists: number[] = [];
    const errors: Array<[string, number]> = [];
    const informer = new ResilientInformer<k8s.V1ConfigMap>({
      kubeConfig: new k8s.KubeConfig(),
      path: '/api/v1/namespaces/x/configmaps',
      list: async () => {
        lists.push(clock.now());
        throw new Error('connect ECONNREFUSED');
      },
      clock,
      backoff: { baseDelayMs: 100, factor: 2, maxDelayMs: 1000 },
      onError: (err, ms) => errors.push([(err as Error).message, ms]),
    });
    const sync = informer.waitForSync.bind(informer);
    expect(() => informer.start()).to.not.throw();
    const synced = sync(5000).then(
      () => 'synced',
      (err: Error) => err.message,
    );
    await clock.advanceAsync(4000);
    expect(lists).to.deep.equal([0, 100, 300, 700, 1500, 2500, 3500]);
    expect(errors.map(([, ms]) => ms)).to.deep.equal([100, 200, 400, 800, 1000, 1000, 1000]);
    expect(errors[0]?.[0]).to.equal('connect ECONNREFUSED');
    expect(informer.restarts).to.equal(6);
    expect(informer.state).to.equal('backoff');
    expect(informer.hasSynced()).to.equal(false);
    await clock.advanceAsync(1000);
    expect(await synced).to.match(/did not sync within 5000 ms \(last error: connect ECONNREFUSED\)/);

    await informer.stop();
    expect(informer.state).to.equal('stopped');
    expect(clock.pending, 'no restart left scheduled').to.equal(0);
    const before = lists.length;
    await clock.advanceAsync(60_000);
    expect(lists).to.have.length(before);
    await informer.waitForSync().then(
      () => expect.fail('a stopped informer does not sync'),
      (err: Error) => expect(err.message).to.match(/not started/),
    );
  });

  it('resets the backoff after an attempt that lived long enough', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    let hang: (() => void) | undefined;
    let calls = 0;
    const informer = new ResilientInformer<k8s.V1ConfigMap>({
      kubeConfig: new k8s.KubeConfig(),
      path: '/api/v1/configmaps',
      // Every third attempt hangs for a while before failing: it "lived" 10 s.
      list: () =>
        new Promise((_, reject) => {
          calls++;
          if (calls % 3 === 0) hang = () => reject(new Error('reset after a while'));
          else reject(new Error('refused'));
        }),
      clock,
      backoff: { baseDelayMs: 100, factor: 2, maxDelayMs: 10_000, resetAfterMs: 5000 },
      onError: (_, ms) => delays.push(ms),
    });
    informer.start();
    await clock.advanceAsync(1000);
    expect(delays).to.deep.equal([100, 200]);
    await clock.advanceAsync(10_000);
    hang?.();
    await clock.advanceAsync(0);
    expect(delays).to.deep.equal([100, 200, 100]);
    await informer.stop();
  });
});
