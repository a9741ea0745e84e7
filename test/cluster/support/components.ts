// Disturbs a component of the test cluster the way a real fault would, through
// scripts/cluster/restart.sh (kill it, keep it down a while, start it again as up.sh did
// and wait until it is healthy), or freezes it (SIGSTOP) and lets it go on. The cluster's
// scripts keep each component's pid in .cluster/run/NAME.pid beside the kubeconfig.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { kubeconfigPath, repoRoot, waitFor } from './kube.ts';

export type Component = 'kube-apiserver' | 'kubelet' | 'etcd' | 'containerd';

function pidFile(component: Component): string {
  return join(dirname(kubeconfigPath()), 'run', `${component}.pid`);
}

function pidOf(component: Component): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(component), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Whether this machine runs the cluster's components itself (not a remote cluster). */
export function componentsReachable(): boolean {
  return pidOf('kube-apiserver') !== undefined && pidOf('kubelet') !== undefined;
}

/**
 * Kills `component` (SIGKILL: a crash), keeps it down for `downMs`, then starts it again
 * and waits until it is healthy. `whileDown` runs once the component is gone.
 */
export async function restartComponent(component: Component, options: { downMs?: number; whileDown?: () => Promise<unknown> } = {}): Promise<void> {
  const before = pidOf(component);
  if (before === undefined) throw new Error(`${component} is not running (no live pid in ${pidFile(component)})`);
  const script = join(repoRoot, 'scripts', 'cluster', 'restart.sh');
  const args = [script, component, '--kill', '--down-for', String((options.downMs ?? 0) / 1000)];
  const output: string[] = [];
  const restarted = new Promise<void>((resolve, reject) => {
    const child = execFile('bash', args, { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      output.push(stdout, stderr);
      if (err) reject(new Error(`restart.sh ${component} failed: ${err.message}\n${output.join('')}`));
      else resolve();
    });
    child.stdin?.end();
  });
  restarted.catch(() => undefined);
  await waitFor(`${component} (pid ${before}) to be killed`, 30_000, async () => {
    try {
      process.kill(before, 0);
      return readFileSync(`/proc/${before}/stat`, 'utf8').includes(') Z ') ? true : undefined;
    } catch {
      return true;
    }
  });
  await options.whileDown?.();
  await restarted;
}

/** Freezes `component` (SIGSTOP): alive but not acting, as a kubelet cut off from the API
 * server's watch. Returns the function that lets it go on; a test must call it. */
export function freezeComponent(component: Component): () => void {
  const pid = pidOf(component);
  if (pid === undefined) throw new Error(`${component} is not running`);
  process.kill(pid, 'SIGSTOP');
  let thawed = false;
  const thaw = () => {
    if (thawed) return;
    thawed = true;
    process.kill(pid, 'SIGCONT');
  };
  // A failed test must never leave the shared cluster frozen.
  process.once('exit', thaw);
  return thaw;
}
