// Namespaces for the integration scenarios when the cluster tier runs them in Kubernetes
// mode: one per server, with the CRDs in place. Deleting is synchronous (kubectl), so that
// a test's cleanup() stays a plain call.
import * as k8s from '@kubernetes/client-node';
import { installCrds, kubectl } from './conveyor.ts';
import { createTestNamespace, loadKubeConfig } from './kube.ts';
import { SCENARIO_RULES, clientToken, pruneStaleClusterGrants } from './tokens.ts';

export { kubeconfigPath } from './kube.ts';

let crdsInstalled: Promise<void> | undefined;

export async function createScenarioNamespace(): Promise<string> {
  const kc = loadKubeConfig();
  crdsInstalled ??= installCrds(kc);
  await crdsInstalled;
  return createTestNamespace(kc.makeApiClient(k8s.CoreV1Api), 'conveyor-it');
}

// A token of the namespace's test client: every verb on Conveyor's resources there, and
// /metrics (the built-in system:monitoring role).
// Bindings left by tests that ended without cleaning up are pruned first.
export async function scenarioToken(namespace: string): Promise<string> {
  const kc = loadKubeConfig();
  await pruneStaleClusterGrants(kc);
  return clientToken(kc, namespace, 'conveyor-test-client', { rules: SCENARIO_RULES, clusterWide: ['system:monitoring'] });
}

// Pods keep Conveyor's log finalizer until their log is archived; a server stopped before
// that must not leave the namespace stuck deleting.
export function deleteScenarioNamespace(name: string): void {
  const pods = kubectl(['get', 'pods', '-n', name, '-o', 'name']).split('\n').filter(Boolean);
  for (const pod of pods) {
    try {
      kubectl(['patch', '-n', name, pod, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    } catch {
      // gone already
    }
  }
  kubectl(['delete', 'namespace', name, '--wait=false']);
  kubectl(['delete', 'clusterrolebinding', '-l', `conveyor.ci/test-namespace=${name}`, '--ignore-not-found']);
}
