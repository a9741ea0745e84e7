// Through an ingress (issue 6, point 5): a real Ingress controller (Traefik v3, built from Go
// modules by scripts/cluster/ingress.sh, run on this machine with its Kubernetes Ingress
// provider and its own ServiceAccount) serves the chart's Ingress; the seed's resource is
// posted through it and its log frames stream over a websocket upgraded through it, also
// across a quiet spell longer than a minute.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  chartDir,
  deleteNamespaceAndWait,
  diagnostics,
  ensureImage,
  helm,
  helmBin,
  freePort,
  http,
  imageValues,
  roleHeaders,
  run,
  seedOverHttp,
  stopChild,
  userRoleValues,
  waitForDeployment,
  websocketFrames,
} from './support/install.ts';
import { createTestNamespace, kubeconfigPath, loadKubeConfig, repoRoot, waitFor } from './support/kube.ts';

const HOST = 'conveyor.ingress.test';

describe('packaging: through an ingress controller (Traefik)', function () {
  this.timeout(180_000);
  let kc: k8s.KubeConfig;
  let ns: string;
  let traefik: ChildProcess | undefined;
  const traefikLog: string[] = [];
  let base: string;
  let wsBase: string;
  const release = 'edge';
  const headers: Record<string, string> = { host: HOST };

  before(async function () {
    this.timeout(1_800_000);
    kc = loadKubeConfig();
    const [image, built] = await Promise.all([
      ensureImage(),
      run('bash', [join(repoRoot, 'scripts', 'cluster', 'ingress.sh'), 'build'], { timeoutMs: 1_500_000 }),
    ]);
    if (built.code !== 0) throw new Error(`scripts/cluster/ingress.sh build failed:\n${built.stderr.split('\n').slice(-30).join('\n')}`);
    ns = await createTestNamespace(kc.makeApiClient(k8s.CoreV1Api), 'conveyor-ingress');
    await helm(
      [
        'install', release, chartDir, '-n', ns, ...imageValues(image), ...userRoleValues(ns),
        '--set', 'ingress.enabled=true',
        '--set', 'ingress.className=traefik',
        '--set', `ingress.hosts[0].host=${HOST}`,
        '--set', 'ingress.hosts[0].paths[0].path=/',
        '--set', 'ingress.hosts[0].paths[0].pathType=Prefix',
        '--wait', '--timeout', '180s',
      ],
      { timeoutMs: 200_000 },
    );
    await waitForDeployment(kc, ns, `${release}-conveyor`);
    Object.assign(headers, await roleHeaders(kc, ns, ns, 'edit'));

    const port = await freePort();
    traefik = spawn('bash', [join(repoRoot, 'scripts', 'cluster', 'ingress.sh'), 'run', '--port', String(port), '--namespace', ns], {
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [traefik.stdout!, traefik.stderr!]) createInterface({ input: stream }).on('line', (l) => traefikLog.push(l));
    base = `http://127.0.0.1:${port}`;
    wsBase = `ws://127.0.0.1:${port}`;
    // Up, and the chart's Ingress routed to the server's pod.
    await waitFor('traefik to route the Ingress', 90_000, async () => {
      if (traefik!.exitCode !== null) throw new Error(`traefik exited ${traefik!.exitCode}:\n${traefikLog.slice(-20).join('\n')}`);
      const health = await http('GET', `${base}/health`, undefined, headers).catch(() => undefined);
      return health?.status === 200 && health.body?.status === 'healthy' ? true : undefined;
    });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`---- traefik\n${traefikLog.slice(-40).join('\n')}`);
      if (ns) console.log(await diagnostics(ns));
    }
  });

  after(async function () {
    this.timeout(180_000);
    if (traefik) stopChild(traefik);
    if (ns) {
      await run(helmBin(), ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
      await deleteNamespaceAndWait(kc, ns);
    }
  });

  it('routes only the Ingress host to the server', async () => {
    const other = await http('GET', `${base}/health`, undefined, { host: 'elsewhere.test' });
    expect(other.status).to.equal(404);
    const ping = await http('GET', `${base}/ping`, undefined, headers);
    expect(ping.status).to.equal(200);
    expect(ping.text).to.equal('pong');
  });

  it('takes the seed resource and streams its log frames over a websocket through the ingress', async () => {
    const { messages } = await seedOverHttp(base, wsBase, headers);
    expect(messages[0]).to.equal('Executing step: print-working-directory');
  });

  it('keeps a websocket through the ingress open across 70 s without a line', async function () {
    this.timeout(240_000);
    const posted = await http(
      'POST',
      `${base}/resources/`,
      { name: 'quiet', resource: 'pipeline', spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'wait', command: 'echo before; sleep 70; echo after' }] } },
      headers,
    );
    expect(posted.status, posted.text).to.equal(201);
    const { frames, closeCode } = await websocketFrames(`${wsBase}/drivers/streams/logs/command-runner/${posted.body.runid}`, headers, 200_000);
    expect(closeCode).to.equal(1000);
    const messages = frames.map((f) => (JSON.parse(f) as string[])[1]);
    expect(messages).to.deep.equal(['Executing step: wait', 'before', 'after', 'Step completed successfully']);
  });
});
