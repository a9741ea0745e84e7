// Support for the packaging tests (helm-install, rbac, ingress): the server image, helm and
// kubectl as child processes, reaching a Service from outside the cluster, the seed tutorial
// over HTTP and websocket, and diagnostics when something fails.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { seedResource } from '../../support/http.ts';
import { kubeconfigPath, kubectlPath, repoRoot, sleep, waitFor } from './kube.ts';
import { clientToken } from './tokens.ts';

export const chartDir = join(repoRoot, 'charts', 'conveyor');
const HARNESS_SOCKET = '/run/conveyor-cluster/containerd.sock';
const CACHE_ROOT = process.env.CONVEYOR_CLUSTER_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'conveyor-cluster');

export interface Image {
  repository: string;
  tag: string;
  pullPolicy: 'Never' | 'IfNotPresent';
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its exit code and output (never rejects on exit codes). */
export function run(cmd: string, args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 300_000, env: { ...process.env, KUBECONFIG: kubeconfigPath(), ...options.env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        if (err && code === -1 && !(err as { killed?: boolean }).killed && !stderr) return reject(err);
        resolve({ code, stdout, stderr: stderr || (err && code === -1 ? String(err.message) : '') });
      },
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

/** Runs a command that must succeed; its stdout. */
export async function must(cmd: string, args: string[], options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd.split('/').pop()} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export function kubectlBin(): string {
  return kubectlPath() ?? 'kubectl';
}

/** helm of the test cluster (.cluster/bin, else the build cache), else helm on PATH. */
export function helmBin(): string {
  const local = join(repoRoot, '.cluster', 'bin', 'helm');
  if (existsSync(local)) return local;
  const lib = readFileSync(join(repoRoot, 'scripts', 'cluster', 'lib.sh'), 'utf8');
  const version = /^HELM_VERSION=(\S+)/m.exec(lib)?.[1];
  const cached = join(CACHE_ROOT, `helm-${version}`, 'bin', 'helm');
  return existsSync(cached) ? cached : 'helm';
}

export const kubectl = (args: string[], options?: { input?: string; timeoutMs?: number }) => must(kubectlBin(), args, options);
export const helm = (args: string[], options?: { timeoutMs?: number }) => must(helmBin(), args, options);

/** The test cluster of scripts/cluster (not another one in KUBECONFIG): its node is this machine. */
export function isHarnessCluster(): boolean {
  try {
    const owner = readFileSync('/run/conveyor-cluster/owner', 'utf8').trim();
    return existsSync(HARNESS_SOCKET) && kubeconfigPath() === join(owner, 'kubeconfig');
  } catch {
    return false;
  }
}

let imagePromise: Promise<Image> | undefined;

/**
 * The server image the tests install. On the test cluster: built from this checkout's
 * Dockerfile and imported as conveyor:dev (scripts/cluster/image.sh; seconds when only the
 * sources changed, a few minutes on a cold machine), once per test run. Elsewhere:
 * CONVEYOR_TEST_IMAGE, an image that cluster can pull.
 */
export function ensureImage(): Promise<Image> {
  imagePromise ??= (async (): Promise<Image> => {
    const given = process.env.CONVEYOR_TEST_IMAGE;
    if (given) {
      const at = given.lastIndexOf(':');
      if (at <= given.lastIndexOf('/')) throw new Error(`CONVEYOR_TEST_IMAGE must be repository:tag (got ${given})`);
      return { repository: given.slice(0, at), tag: given.slice(at + 1), pullPolicy: 'IfNotPresent' };
    }
    if (!isHarnessCluster()) throw new Error('not the scripts/cluster test cluster: set CONVEYOR_TEST_IMAGE to a Conveyor image this cluster can pull');
    const started = Date.now();
    const r = await run('bash', [join(repoRoot, 'scripts', 'cluster', 'image.sh')], { timeoutMs: 900_000 });
    if (r.code !== 0) throw new Error(`scripts/cluster/image.sh failed (${r.code}):\n${(r.stderr + r.stdout).split('\n').slice(-40).join('\n')}`);
    console.log(`      (image conveyor:dev built and imported in ${Math.round((Date.now() - started) / 1000)} s)`);
    return { repository: 'conveyor', tag: 'dev', pullPolicy: 'Never' };
  })();
  return imagePromise;
}

/**
 * The user ClusterRoles (<prefix>-view/-edit/-admin) are cluster-wide: each test release
 * names its own after its namespace, so releases never fight over them.
 */
export function userRoleValues(namespace: string): string[] {
  return ['--set', `rbac.userRoles.namePrefix=${namespace}`];
}

/** Authorization headers of a ServiceAccount granted `<prefix>-<role>` in the namespace. */
export async function roleHeaders(kc: k8s.KubeConfig, namespace: string, prefix: string, role: 'view' | 'edit' | 'admin', account = `test-${role}`): Promise<Record<string, string>> {
  const token = await clientToken(kc, namespace, account, { clusterRoles: [`${prefix}-${role}`] });
  return { authorization: `Bearer ${token}` };
}

export function imageValues(image: Image): string[] {
  return ['--set', `image.repository=${image.repository}`, '--set', `image.tag=${image.tag}`, '--set', `image.pullPolicy=${image.pullPolicy}`];
}

/** Waits until the Deployment's new pods are all ready. */
export async function waitForDeployment(kc: k8s.KubeConfig, namespace: string, name: string, timeoutMs = 180_000): Promise<void> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await waitFor(`deployment ${namespace}/${name} ready`, timeoutMs, async () => {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=server' });
    for (const pod of pods.items) {
      for (const s of pod.status?.containerStatuses ?? []) {
        const reason = s.state?.waiting?.reason ?? '';
        if (/ErrImage|ImagePull|InvalidImage|ErrImageNeverPull|CreateContainerConfigError/.test(reason)) throw new Error(`pod ${pod.metadata?.name}: ${reason}: ${s.state?.waiting?.message}`);
      }
    }
    const ok = d.status?.observedGeneration === d.metadata?.generation && d.status?.updatedReplicas === 1 && d.status?.readyReplicas === 1 && (d.status?.replicas ?? 0) === 1;
    return ok ? true : undefined;
  });
}

/** The server pod of a release, running. */
export async function serverPod(kc: k8s.KubeConfig, namespace: string): Promise<k8s.V1Pod> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=server' });
  const running = pods.items.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  expect(running, 'running server pods').to.have.length(1);
  return running[0]!;
}

export interface Endpoint {
  url: string;
  wsUrl: string;
  via: string;
  stop(): void;
}

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * The Service from outside the cluster: its ClusterIP when this machine routes Service
 * addresses (the test cluster's kube-proxy does, for local traffic), else `kubectl
 * port-forward svc/NAME` as a child process.
 */
export async function reachService(kc: k8s.KubeConfig, namespace: string, service: string): Promise<Endpoint> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const svc = await core.readNamespacedService({ name: service, namespace });
  const port = svc.spec?.ports?.find((p) => p.name === 'http')?.port ?? 8080;
  const ip = svc.spec?.clusterIP;
  if (ip && ip !== 'None' && process.env.CONVEYOR_TEST_PORT_FORWARD !== '1') {
    const url = `http://${ip}:${port}`;
    const answers = async () => (await tcpOpen(ip, port, 1000)) && (await fetch(`${url}/ping`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok).catch(() => false));
    // On the test cluster kube-proxy programs a new Service within seconds; elsewhere one try.
    const deadline = Date.now() + (isHarnessCluster() ? 20_000 : 0);
    for (;;) {
      if (await answers()) return { url, wsUrl: url.replace(/^http/, 'ws'), via: `Service ClusterIP ${ip}:${port}`, stop: () => undefined };
      if (Date.now() >= deadline) break;
      await sleep(500);
    }
  }
  return portForward(namespace, `svc/${service}`, port);
}

/** `kubectl port-forward TARGET :PORT` as a child process, on a free local port. */
export async function portForward(namespace: string, target: string, port: number): Promise<Endpoint> {
  const child = spawn(kubectlBin(), ['port-forward', '-n', namespace, '--address', '127.0.0.1', target, `:${port}`], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const errors: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => errors.push(l));
  const local = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`port-forward ${target} did not start: ${errors.join('\n')}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`port-forward ${target} exited ${code}: ${errors.join('\n')}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const url = `http://127.0.0.1:${local}`;
  return { url, wsUrl: `ws://127.0.0.1:${local}`, via: `kubectl port-forward ${target}`, stop: () => stopChild(child) };
}

export function stopChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}

export interface HttpAnswer {
  status: number;
  body: any;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** An HTTP request with node:http, so a Host header can be set (fetch does not allow it). */
export function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(url, { method, headers: { ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}), ...headers }, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, text, headers: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

export interface Frames {
  frames: string[];
  closeCode: number;
}

/** Every text frame of a websocket until the server closes it. */
export function websocketFrames(url: string, headers: Record<string, string> = {}, timeoutMs = 120_000): Promise<Frames> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const frames: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket ${url} did not close within ${timeoutMs} ms; ${frames.length} frames: ${frames.join(' ')}`));
    }, timeoutMs);
    ws.on('message', (data, isBinary) => {
      if (!isBinary) frames.push(data.toString());
    });
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`websocket ${url}: HTTP ${res.statusCode} instead of an upgrade`));
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ frames, closeCode: code });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The seed tutorial against a server reached at `base`/`wsBase` (directly, or through an
 * Ingress with `headers` carrying its Host): POST the seed's resource (201 and a run id),
 * then its log frames on the websocket route until the server closes it, then the run.
 */
export async function seedOverHttp(base: string, wsBase: string, headers: Record<string, string> = {}): Promise<{ runid: string; messages: string[] }> {
  const posted = await http('POST', `${base}/resources/`, seedResource, headers);
  expect(posted.status, `POST /resources/: ${posted.text}`).to.equal(201);
  expect(posted.body.message).to.equal('Resource created successfully');
  expect(posted.body.name).to.equal(seedResource.name);
  const runid = posted.body.runid as string;
  expect(runid).to.match(/^[0-9a-f-]{36}$/);
  const { frames, closeCode } = await websocketFrames(`${wsBase}/drivers/streams/logs/command-runner/${runid}`, headers);
  expect(closeCode, `close code; frames: ${frames.join(' ')}`).to.equal(1000);
  const parsed = frames.map((f) => JSON.parse(f) as unknown);
  for (const frame of parsed) {
    expect(frame).to.be.an('array').with.length(2);
    expect((frame as string[])[0]).to.be.a('string');
  }
  const messages = parsed.map((f) => (f as string[])[1]!);
  expect(messages).to.include.members(['Executing step: print-working-directory', '/workspace', 'Executing step: list-files', 'Step completed successfully']);
  expect(messages.indexOf('Executing step: print-working-directory')).to.be.lessThan(messages.indexOf('Executing step: list-files'));
  const after = await http('GET', `${base}/runs/${runid}`, undefined, headers);
  expect(after.status).to.equal(200);
  expect(after.body.phase, JSON.stringify(after.body)).to.equal('Succeeded');
  return { runid, messages };
}

/** What a failed test needs to be understood: the namespace's objects, events and the server's log. */
export async function diagnostics(namespace: string): Promise<string> {
  const out: string[] = [];
  const add = async (title: string, args: string[]) => {
    const r = await run(kubectlBin(), args, { timeoutMs: 20_000 });
    out.push(`---- ${title}\n${r.stdout}${r.stderr}`);
  };
  await add('objects', ['get', 'all,pvc,ingress,runs.conveyor.ci,pipelines.conveyor.ci', '-n', namespace, '-o', 'wide']);
  await add('events', ['get', 'events', '-n', namespace, '--sort-by=.lastTimestamp']);
  await add('server log', ['logs', '-n', namespace, '-l', 'app.kubernetes.io/component=server', '--tail=80', '--all-containers']);
  await add('test pod log', ['logs', '-n', namespace, '-l', 'app.kubernetes.io/component=test', '--tail=80']);
  return out.join('\n');
}

/** Deletes a namespace and waits until it is gone (pods holding Conveyor's log finalizer are released). */
export async function deleteNamespaceAndWait(kc: k8s.KubeConfig, namespace: string, timeoutMs = 120_000): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.deleteNamespace({ name: namespace, propagationPolicy: 'Background' });
  } catch (err) {
    if (err instanceof k8s.ApiException && err.code === 404) return;
    throw err;
  }
  await waitFor(`namespace ${namespace} deleted`, timeoutMs, async () => {
    const pods = await core.listNamespacedPod({ namespace });
    for (const pod of pods.items) {
      if (!pod.metadata?.finalizers?.length) continue;
      await core
        .patchNamespacedPod({ name: pod.metadata.name!, namespace, body: { metadata: { finalizers: null } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch))
        .catch(() => undefined);
    }
    try {
      await core.readNamespace({ name: namespace });
      await sleep(500);
      return undefined;
    } catch (err) {
      if (err instanceof k8s.ApiException && err.code === 404) return true;
      throw err;
    }
  });
}

// A port free on loopback now (for a process the test starts next, e.g. Traefik).
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
