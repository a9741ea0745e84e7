// Conveyor itself on the test cluster: CRDs installed, a fresh namespace, and the real
// server started in Kubernetes mode as a child process, the way an operator would run it.
import * as k8s from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer, newDataDir } from '../../support/server.ts';
import { createTestNamespace, deleteNamespace, kubeconfigPath, kubectlPath, loadKubeConfig, repoRoot, waitFor } from './kube.ts';

export function kubectl(args: string[], input?: string): string {
  const bin = kubectlPath() ?? 'kubectl';
  return execFileSync(bin, args, { encoding: 'utf8', input, env: { ...process.env, KUBECONFIG: kubeconfigPath() } });
}

export async function installCrds(kc: k8s.KubeConfig): Promise<void> {
  kubectl(['apply', '-f', join(repoRoot, 'manifests', 'crds')]);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const name of ['pipelines', 'runs', 'resourcedefinitions', 'resources']) {
    await waitFor(`CRD ${name} established`, 30_000, async () => {
      const crd = await ext.readCustomResourceDefinition({ name: `${name}.conveyor.ci` });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }
}

export interface KubernetesServerOptions {
  kubeconfig?: string;
  dataDir?: string;
  args?: string[];
}

export async function startKubernetesServer(namespace: string, options: KubernetesServerOptions = {}): Promise<TestServer> {
  const { scenarioToken } = await import('./namespaces.ts');
  return startServer({
    token: await scenarioToken(namespace),
    dataDir: options.dataDir ?? newDataDir(),
    args: ['--mode', 'kubernetes', '--namespace', namespace, ...(options.args ?? [])],
    env: { KUBECONFIG: options.kubeconfig ?? kubeconfigPath() },
  });
}

export function writeKubeConfig(kc: k8s.KubeConfig, dir: string): string {
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kc.exportConfig());
  return path;
}

// Pods keep Conveyor's log finalizer until their logs are archived; a test that stops the
// server early must let them go, or deleting the namespace waits forever.
export async function releaseFinalizers(core: k8s.CoreV1Api, namespace: string): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace });
  for (const pod of pods.items) {
    if (!pod.metadata?.finalizers?.length) continue;
    await core
      .patchNamespacedPod(
        { name: pod.metadata.name!, namespace, body: { metadata: { finalizers: null } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch(() => undefined);
  }
}

export interface SuiteNamespace {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  namespace: string;
  /** A Kubernetes-mode server in the namespace, stopped after the suite. */
  start(options?: KubernetesServerOptions): Promise<TestServer>;
}

/**
 * A suite's own namespace, with the CRDs installed: made before the suite's tests (call this
 * in the describe body, before its own hooks use it), and after them every server started
 * through it stopped, the run pods' log finalizers released and the namespace deleted.
 */
export function suiteNamespace(prefix: string): SuiteNamespace {
  const servers: TestServer[] = [];
  const suite = {
    namespace: '',
    start: async (options?: KubernetesServerOptions) => {
      const server = await startKubernetesServer(suite.namespace, options);
      servers.push(server);
      return server;
    },
  } as SuiteNamespace;
  before(async () => {
    suite.kc = loadKubeConfig();
    suite.core = suite.kc.makeApiClient(k8s.CoreV1Api);
    await installCrds(suite.kc);
    suite.namespace = await createTestNamespace(suite.core, prefix);
  });
  after(async () => {
    for (const server of servers) {
      await server.stop();
      server.cleanup();
    }
    if (suite.namespace) {
      await releaseFinalizers(suite.core, suite.namespace);
      await deleteNamespace(suite.core, suite.namespace);
    }
  });
  return suite;
}
