// The Store contract against the Kubernetes store as the server runs it: every read answered
// from informer caches (plus the store's own writes), none from the API server. The suite
// reads right after each write, so it also proves read-your-writes.
import * as k8s from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { makeStoreInformers } from '../../src/controller/kubernetes/informers.ts';
import { EmbeddedStore, openDatabase } from '../../src/store/embedded/index.ts';
import { KubernetesStore } from '../../src/store/kubernetes/index.ts';
import { describeStoreContract } from '../contract/store.ts';
import { installCrds } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, loadKubeConfig } from './support/kube.ts';

describeStoreContract('kubernetes, reads from informer caches', async () => {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await installCrds(kc);
  const namespace = await createTestNamespace(core, 'store-cached');
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-store-cached-'));
  const local = new EmbeddedStore(openDatabase(dir));
  const caches = makeStoreInformers(kc, namespace, pino({ level: 'silent' }));
  for (const informer of Object.values(caches)) informer.start();
  await Promise.all(Object.values(caches).map((informer) => informer.waitForSync(60_000)));
  const store = new KubernetesStore({ kc, namespace, local, caches });
  return {
    store,
    async cleanup() {
      await store.close();
      await Promise.all(Object.values(caches).map((informer) => informer.stop()));
      await local.close();
      rmSync(dir, { recursive: true, force: true });
      await deleteNamespace(core, namespace);
    },
  };
});
