// The packaging, installed for real (issue 6): `helm lint --strict`, the committed install
// bundle is what the chart renders, the chart installed from the image the Dockerfile makes
// into a fresh namespace with its default values (ready, hardened pod, `helm test`), the seed
// tutorial from outside the cluster through the chart's Service, the log archive surviving
// the server pod's deletion on its volume (a claim of the default StorageClass), and `helm
// uninstall` leaving no run pod held by the log finalizer (issue 10, points 14 and 15); then
// the same with `kubectl apply -f manifests/install.yaml`, whose log archive is on a
// PersistentVolumeClaim.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chartDir,
  deleteNamespaceAndWait,
  diagnostics,
  ensureImage,
  helm,
  http,
  helmBin,
  imageValues,
  isHarnessCluster,
  kubectl,
  kubectlBin,
  reachService,
  roleHeaders,
  run,
  seedOverHttp,
  serverPod,
  userRoleValues,
  waitForDeployment,
  websocketFrames,
  type Endpoint,
  type Image,
} from './support/install.ts';
import { createTestNamespace, isApiError, loadKubeConfig, repoRoot, uniqueName, waitFor } from './support/kube.ts';

describe('packaging: chart and install bundle', function () {
  this.timeout(120_000);

  it('helm lint --strict is clean', async () => {
    const r = await run(helmBin(), ['lint', '--strict', chartDir]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.stdout).to.not.match(/\[(WARNING|ERROR)\]/);
  });

  it('manifests/install.yaml is what scripts/render-install.sh renders from the chart (not stale)', async () => {
    const r = await run('bash', [join(repoRoot, 'scripts', 'render-install.sh'), '--check'], { env: { HELM: helmBin() } });
    expect(r.code, r.stderr).to.equal(0);
  });

  it('helm refuses values the schema rejects', async () => {
    for (const bad of ['image.pullPolicy=Sometimes', 'securityContext.allowPrivilegeEscalation=true', 'podSecurityContext.runAsNonRoot=false', 'replicas=2']) {
      const r = await run(helmBin(), ['template', 'x', chartDir, '--set', bad]);
      expect(r.code, `helm template --set ${bad}`).to.not.equal(0);
      expect(r.stderr).to.match(/values don't meet the specifications of the schema/);
    }
  });
});

describe('packaging: helm install of the chart, for real', function () {
  this.timeout(300_000);
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let image: Image;
  let ns: string;
  let endpoint: Endpoint | undefined;
  let seed: { runid: string; messages: string[] } | undefined;
  // A ServiceAccount granted <prefix>-edit: auth is on.
  let auth: Record<string, string> = {};
  let uninstalled = false;
  const release = 'ci';
  const fullname = 'ci-conveyor';
  const imageOfTests = 'jimjuniorb/hello-node:1.2.3';

  before(async function () {
    this.timeout(1_200_000);
    kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    image = await ensureImage();
    ns = await createTestNamespace(core, 'conveyor-helm');
    // What the chart's README recommends for a namespace that runs pipelines (their steps run
    // as their image's user, often root, which `restricted` refuses).
    await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=baseline']);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && ns) console.log(await diagnostics(ns));
  });

  after(async function () {
    this.timeout(180_000);
    endpoint?.stop();
    if (ns) {
      if (!uninstalled) await run(helmBin(), ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
      await deleteNamespaceAndWait(kc, ns);
    }
  });

  it('installs into a fresh namespace from the image built from the Dockerfile and becomes ready', async () => {
    const started = Date.now();
    // The chart's defaults, as the README gives the command: the log archive on a claim of
    // the default StorageClass (on the test cluster, local-path-provisioner's).
    await helm(['install', release, chartDir, '-n', ns, ...imageValues(image), ...userRoleValues(ns), '--wait', '--timeout', '180s'], { timeoutMs: 200_000 });
    await waitForDeployment(kc, ns, fullname);
    console.log(`      (installed and ready in ${Math.round((Date.now() - started) / 1000)} s)`);
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: `${fullname}-data`, namespace: ns });
    expect(claim.status?.phase).to.equal('Bound');
    if (isHarnessCluster()) expect(claim.spec?.storageClassName).to.equal('local-path');
    const notes = await helm(['get', 'notes', release, '-n', ns]);
    expect(notes).to.include(`kubectl -n ${ns} port-forward svc/${fullname}`);
    expect(notes).to.include('/drivers/streams/logs/command-runner/<runid>');
    // How to get a token: a ServiceAccount, a RoleBinding to <prefix>-edit, kubectl create token.
    expect(notes).to.include(`kubectl -n ${ns} create token conveyor-user`);
    expect(notes).to.include(`--clusterrole=${ns}-edit`);
  });

  it('runs the server non-root, on a read-only root file system, with the namespace from the downward API', async () => {
    const pod = await serverPod(kc, ns);
    const name = pod.metadata!.name!;
    const [container] = pod.spec!.containers;
    expect(container!.image).to.equal(`${image.repository}:${image.tag}`);
    const sh = (script: string) => run(kubectlBin(), ['exec', '-n', ns, name, '-c', 'conveyor', '--', 'sh', '-c', script]);
    const id = await sh('id -u; id -g; node --version');
    expect(id.code, id.stderr).to.equal(0);
    const [uid, gid, node] = id.stdout.trim().split('\n');
    expect(uid).to.equal('1000');
    expect(gid).to.equal('1000');
    expect(node).to.match(/^v24\./);
    const write = await sh('touch /app/probe');
    expect(write.code).to.not.equal(0);
    expect(write.stderr).to.match(/Read-only file system/);
    const data = await sh('touch /data/probe && rm /data/probe && ls /data');
    expect(data.code, data.stderr).to.equal(0);
    expect(data.stdout).to.match(/conveyor\.db/);
    const env = await sh('echo "$CONVEYOR_MODE $CONVEYOR_NAMESPACE $CONVEYOR_DATA_DIR"');
    expect(env.stdout.trim()).to.equal(`kubernetes ${ns} /data`);
    const modules = await sh('ls /app/node_modules | grep -c . ; ls /app/node_modules/mocha /app/node_modules/typescript /app/node_modules/node 2>&1 | grep -c "No such file"');
    expect(modules.stdout.trim().split('\n')[1], 'dev dependencies in the image').to.equal('3');
  });

  it('passes helm test: the hook pod posts a pipeline and its run succeeds', async () => {
    const r = await run(helmBin(), ['test', release, '-n', ns, '--logs', '--timeout', '180s'], { timeoutMs: 200_000 });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Phase:\s+Succeeded/);
    expect(r.stdout).to.include('PASS: pipeline helm-test-');
    // With auth on it calls with a ServiceAccount token, and says how a user gets one.
    expect(r.stdout).to.include(`kubectl -n ${ns} create token ci-conveyor-test`);
  });

  it('serves the seed tutorial from outside the cluster through the Service: POST, then log frames on the websocket', async () => {
    endpoint = await reachService(kc, ns, fullname);
    console.log(`      (through ${endpoint.via})`);
    auth = await roleHeaders(kc, ns, ns, 'edit');
    const { runid, messages } = await seedOverHttp(endpoint.url, endpoint.wsUrl, auth);
    seed = { runid, messages };
    // The run really was a Job in the release namespace.
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const jobs = await batch.listNamespacedJob({ namespace: ns, labelSelector: `conveyor.ci/run-id=${runid}` });
    expect(jobs.items).to.have.length(1);
  });

  it('did all that within its Role: no request of the server was forbidden', async () => {
    const log = await kubectl(['logs', '-n', ns, `deployment/${fullname}`]);
    expect(log).to.match(/controller caches synced/);
    const forbidden = log.split('\n').filter((line) => /forbidden|\b403\b/i.test(line));
    expect(forbidden, forbidden.join('\n')).to.deep.equal([]);
  });

  it('keeps the log archive on its volume: the server pod deleted, the new one serves every line', async () => {
    expect(seed, 'the seed run of the test before').to.not.equal(undefined);
    endpoint?.stop();
    endpoint = undefined;
    const before = await serverPod(kc, ns);
    await core.deleteNamespacedPod({ name: before.metadata!.name!, namespace: ns });
    await waitFor('a new server pod', 120_000, async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/component=server' });
      return pods.items.some((p) => p.metadata?.uid !== before.metadata?.uid && p.status?.phase === 'Running') ? true : undefined;
    });
    await waitForDeployment(kc, ns, fullname);
    endpoint = await reachService(kc, ns, fullname);
    const replay = await websocketFrames(`${endpoint.wsUrl}/drivers/streams/logs/command-runner/${seed!.runid}`, auth);
    expect(replay.closeCode).to.equal(1000);
    expect(replay.frames.map((f) => (JSON.parse(f) as string[])[1])).to.deep.equal(seed!.messages);
    const archived = await http('GET', `${endpoint.url}/logs?runid=${seed!.runid}`, undefined, auth);
    expect(archived.status).to.equal(200);
    expect((archived.body as { message: string }[]).map((l) => l.message)).to.deep.equal(seed!.messages);
  });

  it('helm uninstall releases the run pods left behind (post-delete hook); the namespace then goes away by itself', async () => {
    // A run under way: its pod holds the log finalizer, and no server will be left to archive it.
    const posted = await http('POST', `${endpoint!.url}/resources/`, { name: 'left-behind', resource: 'pipeline', spec: { image: imageOfTests, steps: [{ name: 'wait', command: 'sleep 600' }] } }, auth);
    expect(posted.status, posted.text).to.equal(201);
    const runid = posted.body.runid as string;
    const pod = await waitFor('the run pod running', 90_000, async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `conveyor.ci/run-id=${runid}` });
      return pods.items.find((p) => p.status?.phase === 'Running');
    });
    expect(pod.metadata?.finalizers).to.include('conveyor.ci/logs');
    endpoint?.stop();
    endpoint = undefined;
    await helm(['uninstall', release, '-n', ns, '--wait', '--timeout', '120s'], { timeoutMs: 150_000 });
    uninstalled = true;
    const after = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: ns });
    expect(after.metadata?.finalizers ?? []).to.not.include('conveyor.ci/logs');
    // The hook cleaned up after itself (hook-succeeded): no Job, account or Role is left.
    const jobs = await kc.makeApiClient(k8s.BatchV1Api).listNamespacedJob({ namespace: ns, labelSelector: 'app.kubernetes.io/component=cleanup' });
    expect(jobs.items.filter((j) => !j.metadata?.deletionTimestamp)).to.deep.equal([]);
    // Nothing holds the namespace now: deleting it needs no help.
    await core.deleteNamespace({ name: ns });
    await waitFor(`namespace ${ns} gone`, 90_000, async () => {
      try {
        await core.readNamespace({ name: ns });
        return undefined;
      } catch (err) {
        if (isApiError(err, 404)) return true;
        throw err;
      }
    });
  });
});

describe('packaging: kubectl apply -f manifests/install.yaml, for real', function () {
  this.timeout(300_000);
  const ns = 'conveyor';
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let image: Image;
  let endpoint: Endpoint | undefined;
  let volume: { pv: string; dir: string } | undefined;
  let work: string | undefined;
  let applied = false;

  before(async function () {
    this.timeout(1_200_000);
    kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    image = await ensureImage();
    // Volumes an interrupted run of this suite left behind.
    const leftovers = await core.listPersistentVolume({ labelSelector: 'conveyor.ci/test-volume=install-bundle' });
    for (const pv of leftovers.items) {
      if (pv.status?.phase === 'Bound') continue;
      await run(kubectlBin(), ['delete', 'pv', pv.metadata!.name!, '--wait=false']);
      if (isHarnessCluster() && pv.spec?.hostPath?.path?.startsWith(join(tmpdir(), 'conveyor-pv-'))) rmSync(pv.spec.hostPath.path, { recursive: true, force: true });
    }
    // The bundle installs into `conveyor`: start from none (only one this suite made).
    try {
      const existing = await core.readNamespace({ name: ns });
      if (existing.metadata?.labels?.['app.kubernetes.io/part-of'] !== 'conveyor') throw new Error(`namespace ${ns} exists and is not the bundle's: not touching it`);
      await deleteNamespaceAndWait(kc, ns);
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(await diagnostics(ns));
  });

  after(async function () {
    this.timeout(180_000);
    endpoint?.stop();
    if (applied) await deleteNamespaceAndWait(kc, ns);
    if (volume) {
      await run(kubectlBin(), ['delete', 'pv', volume.pv, '--wait=false']);
      rmSync(volume.dir, { recursive: true, force: true });
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('gives the log archive a volume: the default StorageClass, else a hostPath volume on the test cluster', async () => {
    const storage = kc.makeApiClient(k8s.StorageV1Api);
    const classes = await storage.listStorageClass();
    const hasDefault = classes.items.some((c) => c.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
    if (hasDefault) return;
    expect(isHarnessCluster(), 'no default StorageClass, and not the test cluster (where a hostPath volume can be made)').to.equal(true);
    // What an administrator does without a provisioner: a volume bound in advance to the
    // bundle's claim, writable by the server's group (hostPath ignores fsGroup).
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-pv-'));
    chownSync(dir, 1000, 1000);
    chmodSync(dir, 0o770);
    volume = { pv: uniqueName('conveyor-install-data'), dir };
    await kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: volume.pv, labels: { 'app.kubernetes.io/part-of': 'conveyor-cluster-tests', 'conveyor.ci/test-volume': 'install-bundle' } },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: '',
          hostPath: { path: dir, type: 'Directory' },
          claimRef: { namespace: ns, name: 'conveyor-data' },
        },
      }),
    });
  });

  it('applies with kubectl and becomes ready, its claim bound', async () => {
    const started = Date.now();
    const bundle = join(repoRoot, 'manifests', 'install.yaml');
    const deployment = (k8s.loadAllYaml(readFileSync(bundle, 'utf8')) as { kind?: string; spec?: any }[]).find((o) => o?.kind === 'Deployment');
    const bundleImage = deployment!.spec.template.spec.containers[0].image as string;
    const ours = `${image.repository}:${image.tag}`;
    applied = true;
    if (image.pullPolicy === 'Never' || bundleImage === ours) {
      // The test cluster has this build also as conveyor:<version>, the bundle's image.
      await kubectl(['apply', '--server-side', '-f', bundle]);
    } else {
      // Another cluster: the bundle as it is, its image retargeted the way the README says.
      work = mkdtempSync(join(tmpdir(), 'conveyor-bundle-'));
      copyFileSync(bundle, join(work, 'install.yaml'));
      const at = bundleImage.lastIndexOf(':');
      writeFileSync(
        join(work, 'kustomization.yaml'),
        `resources: [install.yaml]\nimages:\n  - name: ${bundleImage.slice(0, at)}\n    newName: ${image.repository}\n    newTag: "${image.tag}"\n`,
      );
      await kubectl(['apply', '--server-side', '-k', work]);
    }
    await waitForDeployment(kc, ns, 'conveyor');
    console.log(`      (applied and ready in ${Math.round((Date.now() - started) / 1000)} s)`);
    const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'conveyor-data', namespace: ns });
    expect(claim.status?.phase).to.equal('Bound');
  });

  it('serves the seed tutorial from outside the cluster through the Service, and keeps the log archive on the claim', async () => {
    endpoint = await reachService(kc, ns, 'conveyor');
    console.log(`      (through ${endpoint.via})`);
    // The bundle's user roles have the default prefix: conveyor-edit.
    const auth = await roleHeaders(kc, ns, 'conveyor', 'edit');
    const { runid, messages } = await seedOverHttp(endpoint.url, endpoint.wsUrl, auth);
    // The archive is on the volume: a new server pod (Recreate) still serves every line.
    endpoint.stop();
    endpoint = undefined;
    const before = await serverPod(kc, ns);
    await kubectl(['rollout', 'restart', 'deployment/conveyor', '-n', ns]);
    await waitFor('a new server pod', 120_000, async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/component=server' });
      return pods.items.some((p) => p.metadata?.uid !== before.metadata?.uid) ? true : undefined;
    });
    await waitForDeployment(kc, ns, 'conveyor');
    endpoint = await reachService(kc, ns, 'conveyor');
    const replay = await websocketFrames(`${endpoint.wsUrl}/drivers/streams/logs/command-runner/${runid}`, auth);
    expect(replay.closeCode).to.equal(1000);
    expect(replay.frames.map((f) => (JSON.parse(f) as string[])[1])).to.deep.equal(messages);
  });
});
