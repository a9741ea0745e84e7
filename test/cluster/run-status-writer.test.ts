// A Run's status has one writer, which writes from the object it read: a write from an
// object that changed since is refused (409), changes nothing, and the writer starts over
// from the fresh object (issue 10, point 13). Against the real API server.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError, newRun, type RunRecord } from '../../src/domain/index.ts';
import { EmbeddedStore, openDatabase } from '../../src/store/embedded/index.ts';
import { KubernetesStore } from '../../src/store/kubernetes/index.ts';
import { installCrds } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, loadKubeConfig } from './support/kube.ts';

describe('the Run status writer', function () {
  this.timeout(60_000);
  let core: k8s.CoreV1Api;
  let namespace: string;
  let dir: string;
  let local: EmbeddedStore;
  let store: KubernetesStore;

  before(async () => {
    const kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    await installCrds(kc);
    namespace = await createTestNamespace(core, 'status-writer');
    dir = mkdtempSync(join(tmpdir(), 'conveyor-status-writer-'));
    local = new EmbeddedStore(openDatabase(dir));
    store = new KubernetesStore({ kc, namespace, local });
  });

  after(async () => {
    await store?.close();
    await local?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (namespace) await deleteNamespace(core, namespace);
  });

  it('writes from the object it read, and refuses to overwrite a newer one', async () => {
    const spec = { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'one', command: 'true' }] };
    const run = newRun({ runid: randomUUID(), resource: 'pipeline', name: 'writer', version: 1, spec, pipeline: null, driver: 'command-runner', stepNames: ['one'], now: new Date().toISOString() });
    await store.createResource({ name: 'writer', resource: 'pipeline', spec }, run);
    const read = (await store.runs.get(run.runid))!;
    const running: RunRecord = { ...run, phase: 'Running', reason: 'Started', message: 'running step one', startedAt: new Date().toISOString() };
    const written = await store.writeRunStatus(read, running);
    expect(written.status?.phase).to.equal('Running');
    // The same stale object again (as a lagging cache would hand it out): refused.
    const failed: RunRecord = { ...running, phase: 'Failed', reason: 'StepFailed', message: 'from a stale read', finishedAt: new Date().toISOString() };
    const err = await store.writeRunStatus(read, failed).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ConflictError);
    expect((await store.getRun(run.runid))!.message).to.equal('running step one');
    // Starting over from the fresh object succeeds.
    await store.writeRunStatus((await store.runs.get(run.runid))!, failed);
    expect((await store.getRun(run.runid))!).to.include({ phase: 'Failed', message: 'from a stale read' });
  });
});
