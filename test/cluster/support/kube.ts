// Shared support for the cluster tier: which cluster to use, a namespace per run, and small
// waits. The cluster is the one in KUBECONFIG when that is set, else the one that
// `npm run cluster:up` started (.cluster/kubeconfig); nothing here builds or starts anything.
import * as k8s from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

export const repoRoot = resolve(import.meta.dirname, '..', '..', '..');

/** The image every test pod runs (built locally by scripts/cluster/images.sh). */
export const testImage = 'jimjuniorb/hello-node:1.2.3';

export function kubeconfigPath(): string {
  const fromEnv = process.env.KUBECONFIG;
  if (fromEnv) return fromEnv.split(':')[0] ?? fromEnv;
  return join(repoRoot, '.cluster', 'kubeconfig');
}

export function loadKubeConfig(): k8s.KubeConfig {
  const path = kubeconfigPath();
  if (!existsSync(path)) {
    throw new Error(`no cluster: ${path} does not exist (start one with \`npm run cluster:up\` or set KUBECONFIG)`);
  }
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** A kubeconfig for the same cluster that authenticates with a bearer token only. */
export function tokenKubeConfig(admin: k8s.KubeConfig, token: string): k8s.KubeConfig {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromClusterAndUser(cluster, { name: 'token-user', token });
  return kc;
}

/** kubectl of this cluster: .cluster/bin/kubectl when the scripts made it, else none. */
export function kubectlPath(): string | undefined {
  const local = join(repoRoot, '.cluster', 'bin', 'kubectl');
  return existsSync(local) ? local : undefined;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(250);
  }
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && err.code === code;
}

/** Waits until the pod reaches one of `phases`; a pod stuck waiting on its image fails fast. */
export async function waitForPodPhase(
  core: k8s.CoreV1Api,
  namespace: string,
  name: string,
  phases: string[],
  timeoutMs = 60_000,
): Promise<k8s.V1Pod> {
  return waitFor(`pod ${namespace}/${name} to be ${phases.join(' or ')}`, timeoutMs, async () => {
    const pod = await core.readNamespacedPod({ name, namespace });
    const waiting = pod.status?.containerStatuses?.find((s) => s.state?.waiting?.reason?.match(/ErrImage|ImagePull|InvalidImage/));
    if (waiting) throw new Error(`pod ${name} cannot get its image: ${waiting.state?.waiting?.message}`);
    return phases.includes(pod.status?.phase ?? '') ? pod : undefined;
  });
}

export async function waitForPodReady(core: k8s.CoreV1Api, namespace: string, name: string, timeoutMs = 60_000): Promise<k8s.V1Pod> {
  return waitFor(`pod ${namespace}/${name} to be Ready`, timeoutMs, async () => {
    const pod = await core.readNamespacedPod({ name, namespace });
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    return ready ? pod : undefined;
  });
}

/** A pod of the test image running `script` with /bin/sh; it does not restart. */
export function shellPod(name: string, script: string, extra: Partial<k8s.V1PodSpec> = {}, labels: Record<string, string> = {}): k8s.V1Pod {
  return {
    metadata: { name, labels: { 'app.kubernetes.io/part-of': 'conveyor-cluster-tests', ...labels } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: testImage, imagePullPolicy: 'IfNotPresent', command: ['/bin/sh', '-c', script] }],
      ...extra,
    },
  };
}

/** A namespace of its own for one test file's run, deleted (with all in it) by `remove`. */
export async function createTestNamespace(core: k8s.CoreV1Api, prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await core.createNamespace({ body: { metadata: { name, labels: { 'app.kubernetes.io/part-of': 'conveyor-cluster-tests' } } } });
  // The service account controller adds `default` shortly after; pods cannot be made before.
  await waitFor(`service account default in ${name}`, 30_000, async () => {
    try {
      return await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  });
  return name;
}

export async function deleteNamespace(core: k8s.CoreV1Api, name: string): Promise<void> {
  try {
    await core.deleteNamespace({ name, gracePeriodSeconds: 0, propagationPolicy: 'Background' });
  } catch (err) {
    if (!isApiError(err, 404)) throw err;
  }
}

export async function deletePod(core: k8s.CoreV1Api, namespace: string, name: string): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
  } catch (err) {
    if (!isApiError(err, 404)) throw err;
  }
}

/** Decodes the claims of a JWT (no verification: the API server verifies tokens). */
export function jwtClaims(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
