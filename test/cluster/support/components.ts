// Disturbs a component of the test cluster the way a real fault would: kill it (and start it
// again after a while, with the very command line and environment scripts/cluster/up.sh
// gave it), or freeze it (SIGSTOP) and let it go on. The cluster's scripts keep each
// component's pid in .cluster/run/NAME.pid beside the kubeconfig, and restarted components
// keep that file current, so scripts/cluster/down.sh still finds them.
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { spawn, execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { kubeconfigPath, repoRoot, sleep, waitFor } from './kube.ts';

export type Component = 'kube-apiserver' | 'kubelet' | 'etcd' | 'containerd' | 'kube-controller-manager' | 'kube-scheduler';

function clusterDir(): string {
  return dirname(kubeconfigPath());
}

function pidFile(component: Component): string {
  return join(clusterDir(), 'run', `${component}.pid`);
}

/** Whether this machine runs the cluster's components itself (not a remote cluster). */
export function componentsReachable(): boolean {
  try {
    const pid = Number(readFileSync(pidFile('kube-apiserver'), 'utf8').trim());
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidOf(component: Component): number {
  const pid = Number(readFileSync(pidFile(component), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${component} in ${pidFile(component)}`);
  process.kill(pid, 0);
  return pid;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function ready(component: Component): Promise<void> {
  if (component === 'kube-apiserver') {
    await waitFor('kube-apiserver /readyz', 90_000, async () => {
      const kubectl = join(clusterDir(), 'bin', 'kubectl');
      const bin = existsSync(kubectl) ? kubectl : 'kubectl';
      try {
        return execFileSync(bin, ['--kubeconfig', kubeconfigPath(), 'get', '--raw', '/readyz'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'ok' ? true : undefined;
      } catch {
        return undefined;
      }
    });
  } else if (component === 'kubelet') {
    await waitFor('kubelet /healthz', 60_000, async () => {
      const res = await fetch('http://127.0.0.1:10248/healthz').catch(() => undefined);
      return res?.ok ? true : undefined;
    });
  }
}

/**
 * Kills `component` (SIGKILL: a crash, nothing flushed), keeps it down for `downMs`, then
 * starts it again as before and waits until it is healthy. `whileDown` runs in the outage.
 * Uses scripts/cluster/restart.sh when the checkout has it and no outage is asked for.
 */
export async function restartComponent(component: Component, options: { downMs?: number; whileDown?: () => Promise<void> } = {}): Promise<void> {
  const script = join(repoRoot, 'scripts', 'cluster', 'restart.sh');
  if (existsSync(script) && !options.downMs && !options.whileDown) {
    execFileSync('bash', [script, component], { stdio: 'inherit', env: { ...process.env, KUBECONFIG: kubeconfigPath() } });
    return;
  }
  const pid = pidOf(component);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => i < all.length - 1 || a !== '');
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const cwd = readlinkSync(`/proc/${pid}/cwd`);
  process.kill(pid, 'SIGKILL');
  await waitFor(`${component} (pid ${pid}) to exit`, 10_000, async () => (alive(pid) ? undefined : true));
  const started = Date.now();
  await options.whileDown?.();
  const rest = (options.downMs ?? 0) - (Date.now() - started);
  if (rest > 0) await sleep(rest);
  const log = openSync(join(clusterDir(), 'logs', `${component}.log`), 'a');
  writeFileSync(log, `\n==== ${new Date().toISOString()} restarted by a cluster test\n`);
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  writeFileSync(pidFile(component), `${child.pid}\n`);
  await ready(component);
}

/** Freezes `component` (SIGSTOP) for `ms`, then lets it go on: a component that is alive
 * but does not act, as a kubelet cut off from the API server's watch. */
export async function freezeComponent(component: Component): Promise<() => void> {
  const pid = pidOf(component);
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
