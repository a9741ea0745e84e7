// External drivers on a cluster (issue 12, point 1): the chart runs NATS with JetStream
// (image built from github.com/nats-io/nats-server/v2 by scripts/cluster/nats-image.sh),
// which refuses clients without the Secret's credentials; Conveyor connects to it; a driver
// speaking upstream's wire, from outside the cluster through the NATS Service, serves a
// resource type: the run posted through Conveyor's Service succeeds and its lines arrive on
// the websocket.
import * as k8s from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { expect } from 'chai';
import { join } from 'node:path';
import { startWireDriver, type WireDriver } from '../support/wire-driver.ts';
import {
  chartDir,
  deleteNamespaceAndWait,
  diagnostics,
  ensureImage,
  helm,
  helmBin,
  http,
  imageValues,
  isHarnessCluster,
  kubectl,
  reachService,
  roleHeaders,
  run,
  userRoleValues,
  waitForDeployment,
  websocketFrames,
  type Endpoint,
} from './support/install.ts';
import { createTestNamespace, loadKubeConfig, repoRoot, waitFor } from './support/kube.ts';

describe('drivers: the chart runs NATS with authentication and Conveyor serves a driver through it', function () {
  this.timeout(300_000);
  let kc: k8s.KubeConfig;
  let ns: string;
  let endpoint: Endpoint | undefined;
  let driver: WireDriver | undefined;
  const release = 'dr';
  const fullname = 'dr-conveyor';
  const password = `pw-${Math.random().toString(36).slice(2)}`;

  before(async function () {
    this.timeout(1_200_000);
    kc = loadKubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const image = await ensureImage();
    if (isHarnessCluster()) {
      const r = await run('bash', [join(repoRoot, 'scripts', 'cluster', 'nats-image.sh')], { timeoutMs: 900_000 });
      if (r.code !== 0) throw new Error(`scripts/cluster/nats-image.sh failed:\n${(r.stderr + r.stdout).split('\n').slice(-30).join('\n')}`);
    }
    ns = await createTestNamespace(core, 'conveyor-nats');
    await kubectl(['create', 'secret', 'generic', 'nats-creds', '-n', ns, '--from-literal=user=conveyor', `--from-literal=password=${password}`]);
    await helm(
      ['install', release, chartDir, '-n', ns, ...imageValues(image), ...userRoleValues(ns), '--set', 'nats.deploy.enabled=true', '--set', 'nats.existingSecret=nats-creds', '--set', 'nats.driverTimeoutSeconds=60', '--wait', '--timeout', '180s'],
      { timeoutMs: 200_000 },
    );
    await waitForDeployment(kc, ns, `${fullname}-nats`);
    await waitForDeployment(kc, ns, fullname);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && ns) console.log(await diagnostics(ns));
  });

  after(async function () {
    this.timeout(180_000);
    await driver?.stop().catch((err: unknown) => console.log(`driver stop: ${String(err)}`));
    endpoint?.stop();
    if (ns) {
      await run(helmBin(), ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
      await deleteNamespaceAndWait(kc, ns);
    }
  });

  async function natsUrl(): Promise<string> {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const svc = await core.readNamespacedService({ name: `${fullname}-nats`, namespace: ns });
    return `nats://${svc.spec!.clusterIP}:4222`;
  }

  it('refuses a NATS client without credentials, and the server connected with the Secret', async () => {
    const url = await natsUrl();
    const refused = await connect({ servers: url, maxReconnectAttempts: 0 }).then(
      async (nc) => {
        await nc.close();
        return 'connected';
      },
      (err: Error) => err.message,
    );
    expect(refused).to.match(/Authorization Violation/);
    const log = await kubectl(['logs', '-n', ns, `deployment/${fullname}`]);
    expect(log).to.match(/external drivers over NATS at nats:\/\/dr-conveyor-nats:4222/);
  });

  it('hands a resource to a driver connected through the NATS Service; the run succeeds and its lines reach the websocket', async () => {
    endpoint = await reachService(kc, ns, fullname);
    // Defining a resource type is an admin's job; the rest an editor could do.
    const auth = await roleHeaders(kc, ns, ns, 'admin');
    const defined = await http('POST', `${endpoint.url}/resource-definitions`, { name: 'deployment', schema: { type: 'object', required: ['app'] } }, auth);
    expect(defined.status, defined.text).to.equal(201);
    driver = await startWireDriver({
      natsUrl: await natsUrl(),
      user: 'conveyor',
      pass: password,
      name: 'deployer',
      subject: 'resources.deployment',
      async handle({ log, resource }) {
        await log(`deploying ${(resource.spec as { app: string }).app}`);
        await log('deployed');
        return { success: true, message: 'rolled out', data: { replicas: 3 } };
      },
    });
    await waitFor('the driver listed', 30_000, async () => {
      const list = await http('GET', `${endpoint!.url}/drivers`, undefined, auth);
      return (list.body as { name: string }[]).some((d) => d.name === 'deployer') ? true : undefined;
    });
    const posted = await http('POST', `${endpoint.url}/resources/`, { name: 'web', resource: 'deployment', spec: { app: 'web' } }, auth);
    expect(posted.status, posted.text).to.equal(201);
    const runid = posted.body.runid as string;
    const frames = await websocketFrames(`${endpoint.wsUrl}/drivers/streams/logs/deployer/${runid}`, auth, 60_000);
    expect(frames.closeCode).to.equal(1000);
    expect(frames.frames.map((f) => (JSON.parse(f) as string[])[1])).to.deep.equal(['deploying web', 'deployed']);
    const got = await http('GET', `${endpoint.url}/runs/${runid}`, undefined, auth);
    expect(got.body).to.include({ phase: 'Succeeded', message: 'rolled out', driver: 'deployer' });
    expect(got.body.steps[0].result).to.deep.equal({ success: true, message: 'rolled out', data: { replicas: 3 } });
  });
});
