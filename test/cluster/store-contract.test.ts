// The Store contract (test/contract/store.ts) against the Kubernetes store: Conveyor's CRDs
// installed on the test cluster and a fresh namespace for this run. Driver pipelines and
// broadcasts live in the embedded store beside it, in a temporary directory.
import * as k8s from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore, openDatabase } from '../../src/store/embedded/index.ts';
import { KubernetesStore } from '../../src/store/kubernetes/index.ts';
import { describeStoreContract } from '../contract/store.ts';
import { installCrds } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, loadKubeConfig } from './support/kube.ts';

describeStoreContract('kubernetes', async () => {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await installCrds(kc);
  const namespace = await createTestNamespace(core, 'store-contract');
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-store-contract-'));
  const local = new EmbeddedStore(openDatabase(dir));
  const store = new KubernetesStore({ kc, namespace, local });
  return {
    store,
    async cleanup() {
      await store.close();
      await local.close();
      rmSync(dir, { recursive: true, force: true });
      await deleteNamespace(core, namespace);
    },
  };
});
