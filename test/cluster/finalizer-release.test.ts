// Nothing is left stuck when Conveyor is gone (issue 10, point 15). A run pod holds the log
// finalizer `conveyor.ci/logs` until its log is archived; with no server to archive it, a
// deleted namespace used to hang in Terminating forever. Here a namespace with a running
// pipeline is deleted while its server is stopped: it goes away by `conveyor cleanup`, by a
// server that starts again (it sees its namespace being deleted), and by itself while a
// server runs.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { pipeline, request } from '../support/http.ts';
import { mainScript, startServer, type TestServer } from '../support/server.ts';
import { installCrds, releaseFinalizers, startKubernetesServer } from './support/conveyor.ts';
import { createTestNamespace, deleteNamespace, isApiError, kubeconfigPath, loadKubeConfig, sleep, waitFor } from './support/kube.ts';

const FINALIZER = 'conveyor.ci/logs';
// Runs until stopped, and stops at once on SIGTERM (a shell as PID 1 ignores it otherwise,
// and the pod would wait out its grace period).
const STEP = "echo started; trap 'exit 0' TERM; while true; do sleep 1; done";

describe('kubernetes mode: a namespace deleted while Conveyor is gone does not hang', function () {
  this.timeout(180_000);
  let core: k8s.CoreV1Api;
  const namespaces: string[] = [];
  const servers: TestServer[] = [];

  before(async () => {
    const kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    await installCrds(kc);
  });

  after(async () => {
    for (const server of servers) {
      await server.stop();
      server.cleanup();
    }
    // Only what a failed test left behind.
    for (const ns of namespaces) {
      await releaseFinalizers(core, ns).catch(() => undefined);
      await deleteNamespace(core, ns);
    }
  });

  async function start(namespace: string): Promise<TestServer> {
    const server = await startKubernetesServer(namespace);
    servers.push(server);
    return server;
  }

  // The same server again (its data directory, its clients' token): nothing new can be made
  // in a namespace being deleted.
  async function restart(namespace: string, before: TestServer): Promise<TestServer> {
    const server = await startServer({
      token: before.token,
      dataDir: before.dataDir,
      args: ['--mode', 'kubernetes', '--namespace', namespace],
      env: { KUBECONFIG: kubeconfigPath() },
    });
    servers.push(server);
    return server;
  }

  async function stop(server: TestServer): Promise<void> {
    expect(await server.stop()).to.equal(0);
  }

  // A namespace with a server and a pipeline whose step runs (and so holds the finalizer).
  async function runningPipeline(prefix: string): Promise<{ namespace: string; server: TestServer; pod: string }> {
    const namespace = await createTestNamespace(core, prefix);
    namespaces.push(namespace);
    const server = await start(namespace);
    const res = await request(server.url, 'POST', '/resources/', pipeline('long', [['wait', STEP]]));
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    const pod = await waitFor('the run pod running', 90_000, async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `conveyor.ci/run-id=${res.body.runid}` });
      const p = pods.items.find((x) => x.status?.phase === 'Running');
      return p?.metadata?.name;
    });
    const held = await core.readNamespacedPod({ name: pod, namespace });
    expect(held.metadata?.finalizers).to.include(FINALIZER);
    return { namespace, server, pod };
  }

  // Deletes the namespace and shows that it is held: the pod is being deleted, its container
  // stopped, and still there because of the finalizer.
  async function deleteAndSeeItHeld(namespace: string, pod: string): Promise<void> {
    await core.deleteNamespace({ name: namespace });
    const held = await waitFor('the run pod deleted but held', 60_000, async () => {
      const p = await core.readNamespacedPod({ name: pod, namespace });
      const stopped = p.status?.containerStatuses?.every((c) => c.state?.terminated) ?? false;
      return p.metadata?.deletionTimestamp && stopped ? p : undefined;
    });
    expect(held.metadata?.finalizers).to.include(FINALIZER);
    await sleep(2000);
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.status?.phase).to.equal('Terminating');
  }

  async function gone(namespace: string, timeoutMs = 60_000): Promise<void> {
    await waitFor(`namespace ${namespace} gone`, timeoutMs, async () => {
      try {
        await core.readNamespace({ name: namespace });
        return undefined;
      } catch (err) {
        if (isApiError(err, 404)) return true;
        throw err;
      }
    });
    namespaces.splice(namespaces.indexOf(namespace), 1);
  }

  it('goes away with `conveyor cleanup -n NS`, run by hand while the server is stopped', async () => {
    const { namespace, server, pod } = await runningPipeline('conveyor-fin-cli');
    await stop(server);
    await deleteAndSeeItHeld(namespace, pod);
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [mainScript, 'cleanup', '-n', namespace], { env: { ...process.env, KUBECONFIG: kubeconfigPath() } }, (err, stdout, stderr) =>
        err ? reject(new Error(`conveyor cleanup failed: ${stderr}`)) : resolve(stdout),
      );
    });
    expect(out).to.include(`released pod ${namespace}/${pod}`);
    expect(out).to.include(`1 run pod(s) released from the log finalizer in namespace ${namespace}`);
    await gone(namespace);
  });

  it('goes away when a server starts again: it sees its namespace being deleted and releases the run pods', async () => {
    const { namespace, server, pod } = await runningPipeline('conveyor-fin-restart');
    await stop(server);
    await deleteAndSeeItHeld(namespace, pod);
    // Its namespace is terminating: nothing can be created there any more, and the run's log
    // cannot be read from the stopped pod; waiting for an archive would wait forever.
    const again = await restart(namespace, server);
    await gone(namespace);
    expect(again.output.join('\n')).to.match(new RegExp(`released 1 run pod\\(s\\) from the log finalizer: namespace ${namespace} is being deleted`));
  });

  it('goes away by itself while a server runs', async () => {
    const { namespace, pod } = await runningPipeline('conveyor-fin-live');
    await core.deleteNamespace({ name: namespace });
    await gone(namespace);
    // It really was one of ours, held until released.
    expect(pod).to.match(/^run-/);
  });

  it('`conveyor cleanup` leaves a running pod alone unless told --all', async () => {
    const { namespace, server, pod } = await runningPipeline('conveyor-fin-all');
    await stop(server);
    const cleanup = (args: string[]) =>
      new Promise<string>((resolve, reject) => {
        execFile(process.execPath, [mainScript, 'cleanup', '-n', namespace, ...args], { env: { ...process.env, KUBECONFIG: kubeconfigPath() } }, (err, stdout, stderr) =>
          err ? reject(new Error(`conveyor cleanup failed: ${stderr}`)) : resolve(stdout),
        );
      });
    expect(await cleanup([])).to.include('0 run pod(s) released');
    expect((await core.readNamespacedPod({ name: pod, namespace })).metadata?.finalizers).to.include(FINALIZER);
    expect(await cleanup(['--all'])).to.include('1 run pod(s) released');
    expect((await core.readNamespacedPod({ name: pod, namespace })).metadata?.finalizers ?? []).to.not.include(FINALIZER);
    await core.deleteNamespace({ name: namespace });
    await gone(namespace);
  });
});
