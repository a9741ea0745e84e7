// Security on the real cluster (issue 9, docs/security.md): the chart installed with auth on
// (the default), called with tokens of ServiceAccounts granted the chart's ClusterRoles
// through ordinary RoleBindings, through the Service and through an Ingress (Traefik):
// no token → 401; a token without RBAC → 403; conveyor-edit → 201 and logs stream;
// conveyor-view reads and follows but cannot create or cancel; the websocket subprotocol
// token; a pipeline naming a ServiceAccount refused over HTTP and `kubectl apply` unless its
// author may create pods, and the server's own account always; who started a run.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
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
  kubectl,
  kubectlBin,
  reachService,
  run,
  stopChild,
  userRoleValues,
  waitForDeployment,
  websocketFrames,
  type Endpoint,
} from './support/install.ts';
import { createTestNamespace, kubeconfigPath, loadKubeConfig, repoRoot, tokenKubeConfig, waitFor } from './support/kube.ts';
import { clientToken, revokeClusterGrants } from './support/tokens.ts';
import { ensureUiBuilt, launchBrowser, openPage } from '../browser/support.ts';

const HOST = 'conveyor.security.test';
const IMAGE = 'jimjuniorb/hello-node:1.2.3';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const tokenProtocol = (token: string) => `base64url.bearer.authorization.k8s.io.${Buffer.from(token).toString('base64url')}`;
const pipelineDoc = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  resource: 'pipeline',
  spec: { image: IMAGE, steps: [{ name: 'greet', command: `echo hello from ${name}` }], ...extra },
});

// A websocket handshake with subprotocols: the status it got, its subprotocol, its frames.
function subprotocolStream(url: string, protocols: string[], headers: Record<string, string>): Promise<{ status: number; protocol?: string; frames: string[]; body?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    const frames: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket ${url} did not close`));
    }, 120_000);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, frames, body });
      });
    });
    ws.on('message', (data) => frames.push(data.toString()));
    ws.on('close', () => {
      clearTimeout(timer);
      resolve({ status: 101, protocol: ws.protocol, frames });
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('security: authentication and RBAC on the real cluster, through the Service and an Ingress', function () {
  this.timeout(180_000);
  let kc: k8s.KubeConfig;
  let ns: string;
  let service: Endpoint | undefined;
  let traefik: ChildProcess | undefined;
  const traefikLog: string[] = [];
  let work: string;
  const release = 'sec';
  const serverAccount = 'sec-conveyor';
  const tokens: Record<'nobody' | 'viewer' | 'editor' | 'podmaker' | 'monitor', string> = { nobody: '', viewer: '', editor: '', podmaker: '', monitor: '' };
  const ways: { name: string; base: string; ws: string; headers: Record<string, string> }[] = [];
  const user = (account: string) => `system:serviceaccount:${ns}:${account}`;

  before(async function () {
    this.timeout(1_800_000);
    kc = loadKubeConfig();
    work = mkdtempSync(join(tmpdir(), 'conveyor-security-'));
    const image = await ensureImage();
    ns = await createTestNamespace(kc.makeApiClient(k8s.CoreV1Api), 'conveyor-sec');
    await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=baseline']);
    await helm(
      [
        'install', release, chartDir, '-n', ns, ...imageValues(image), ...userRoleValues(ns),
        '--set', 'persistence.enabled=false',
        '--set', 'ingress.enabled=true',
        '--set', 'ingress.className=traefik',
        '--set', `ingress.hosts[0].host=${HOST}`,
        '--set', 'ingress.hosts[0].paths[0].path=/',
        '--set', 'ingress.hosts[0].paths[0].pathType=Prefix',
        '--wait', '--timeout', '180s',
      ],
      { timeoutMs: 200_000 },
    );
    await waitForDeployment(kc, ns, serverAccount);
    tokens.nobody = await clientToken(kc, ns, 'nobody');
    tokens.viewer = await clientToken(kc, ns, 'viewer', { clusterRoles: [`${ns}-view`] });
    tokens.editor = await clientToken(kc, ns, 'editor', { clusterRoles: [`${ns}-edit`] });
    tokens.podmaker = await clientToken(kc, ns, 'podmaker', { clusterRoles: [`${ns}-edit`], rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['create'] }] });
    tokens.monitor = await clientToken(kc, ns, 'monitor', { clusterWide: ['system:monitoring'] });

    service = await reachService(kc, ns, serverAccount);
    ways.push({ name: `the Service (${service.via})`, base: service.url, ws: service.wsUrl, headers: {} });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`---- traefik\n${traefikLog.slice(-20).join('\n')}`);
      if (ns) console.log(await diagnostics(ns));
    }
  });

  after(async function () {
    this.timeout(180_000);
    service?.stop();
    if (traefik) stopChild(traefik);
    if (ns) {
      await revokeClusterGrants(kc, ns);
      await run(helmBin(), ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
      await deleteNamespaceAndWait(kc, ns);
    }
    rmSync(work, { recursive: true, force: true });
  });

  // The same checks through each way in: the Service (ways[0]) and the Ingress (ways[1]).
  function accessTests(index: number): void {
    const way = () => ways[index]!;
    const call = (method: string, path: string, token?: string, body?: unknown) =>
      http(method, `${way().base}${path}`, body, { ...way().headers, ...(token ? bearer(token) : {}) });

    {
      it('answers 401 JSON with WWW-Authenticate: Bearer without a token or with one the API server rejects; probes stay open', async () => {
        for (const [method, path] of [['GET', '/runs'], ['POST', '/resources/'], ['GET', '/metrics'], ['GET', '/resource-definitions']] as const) {
          const res = await call(method, path, undefined, method === 'POST' ? pipelineDoc('anonymous') : undefined);
          expect(res.status, `${method} ${path}`).to.equal(401);
          expect(res.headers['www-authenticate']).to.match(/^Bearer/);
          expect(res.body.error).to.match(/Authorization: Bearer/);
        }
        const forged = await call('GET', '/runs', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.bm90LWEtc2lnbmF0dXJl');
        expect(forged.status).to.equal(401);
        expect(forged.body.error).to.match(/not accepted/);
        expect((await call('GET', '/health')).status).to.equal(200);
        expect((await call('GET', '/ping')).status).to.equal(200);
        expect((await call('GET', '/resources/pipeline/anonymous', tokens.viewer)).status).to.equal(404);
      });

      it('answers 403 JSON naming the verb and resource to a token without RBAC, and stores nothing', async () => {
        const created = await call('POST', '/resources/', tokens.nobody, pipelineDoc(`nobody-${index}`));
        expect(created.status).to.equal(403);
        expect(created.body.error).to.equal(`user "${user('nobody')}" may not create pipelines.conveyor.ci in namespace ${ns}`);
        const list = await call('GET', '/runs', tokens.nobody);
        expect(list.status).to.equal(403);
        expect(list.body.error).to.match(/may not list runs\.conveyor\.ci/);
        const generic = await call('POST', '/resources/', tokens.nobody, { name: 'x', resource: 'build', spec: {} });
        expect(generic.body.error).to.match(/may not create resources\.conveyor\.ci/);
        expect((await call('GET', `/resources/pipeline/nobody-${index}`, tokens.viewer)).status).to.equal(404);
      });

      it('lets conveyor-edit create a pipeline (201) and stream its logs, recording who started the run', async () => {
        const created = await call('POST', '/resources/', tokens.editor, pipelineDoc(`edited-${index}`));
        expect(created.status, created.text).to.equal(201);
        const { frames, closeCode } = await websocketFrames(`${way().ws}/drivers/streams/logs/command-runner/${created.body.runid}`, { ...way().headers, ...bearer(tokens.editor) });
        expect(closeCode).to.equal(1000);
        expect(frames.map((f) => (JSON.parse(f) as string[])[1])).to.include(`hello from edited-${index}`);
        const runRes = await call('GET', `/runs/${created.body.runid}`, tokens.editor);
        expect(runRes.body.requestedBy).to.equal(user('editor'));
        expect(runRes.body.phase).to.equal('Succeeded');
      });

      it('lets conveyor-view read and follow logs (subprotocol token, answered conveyor.logs.v1) but not create or cancel', async () => {
        const created = await call('POST', '/resources/', tokens.editor, pipelineDoc(`viewed-${index}`, { steps: [{ name: 'slow', command: 'echo start; sleep 3; echo end' }] }));
        expect(created.status, created.text).to.equal(201);
        const runid = created.body.runid as string;
        const url = `${way().ws}/drivers/streams/logs/command-runner/${runid}`;
        const followed = await subprotocolStream(url, ['conveyor.logs.v1', tokenProtocol(tokens.viewer)], way().headers);
        expect(followed.status).to.equal(101);
        expect(followed.protocol).to.equal('conveyor.logs.v1');
        expect(followed.frames.map((f) => (JSON.parse(f) as string[])[1])).to.include.members(['start', 'end']);
        expect((await call('GET', `/runs/${runid}`, tokens.viewer)).status).to.equal(200);
        expect((await call('GET', `/logs?runid=${runid}`, tokens.viewer)).status).to.equal(200);
        expect((await call('GET', '/runs', tokens.viewer)).status).to.equal(200);
        const create = await call('POST', '/resources/', tokens.viewer, pipelineDoc(`viewer-${index}`));
        expect(create.status).to.equal(403);
        expect(create.body.error).to.match(/may not create pipelines\.conveyor\.ci/);
        const cancel = await call('POST', `/runs/${runid}/cancel`, tokens.viewer);
        expect(cancel.status).to.equal(403);
        expect(cancel.body.error).to.match(/may not update runs\.conveyor\.ci/);
        // A websocket without a token, or with one that has no RBAC, is refused before the upgrade.
        expect((await subprotocolStream(url, ['conveyor.logs.v1'], way().headers)).status).to.equal(401);
        const refused = await subprotocolStream(url, ['conveyor.logs.v1', tokenProtocol(tokens.nobody)], way().headers);
        expect(refused.status).to.equal(403);
        expect(JSON.parse(refused.body!).error).to.match(/may not get runs\/log\.conveyor\.ci/);
      });
    }
  }

  describe('through the Service', () => accessTests(0));

  describe('no privilege escalation through a pipeline', () => {
    const call = (method: string, path: string, token: string, body?: unknown) => http(method, `${ways[0]!.base}${path}`, body, bearer(token));

    it('over HTTP: naming a ServiceAccount needs create pods; the server\'s own account never', async () => {
      const escalate = await call('POST', '/resources/', tokens.editor, pipelineDoc('escalate-http', { serviceAccountName: 'default' }));
      expect(escalate.status).to.equal(403);
      expect(escalate.body.error).to.equal(`spec.serviceAccountName "default": user "${user('editor')}" may not create pods in namespace ${ns}, which running as a ServiceAccount requires`);
      const own = await call('POST', '/resources/', tokens.podmaker, pipelineDoc('escalate-own', { serviceAccountName: serverAccount }));
      expect(own.status).to.equal(403);
      expect(own.body.error).to.match(/is Conveyor's own ServiceAccount/);
      for (const name of ['escalate-http', 'escalate-own']) expect((await call('GET', `/resources/pipeline/${name}`, tokens.viewer)).status).to.equal(404);
      const allowed = await call('POST', '/resources/', tokens.podmaker, pipelineDoc('named-account', { serviceAccountName: 'default' }));
      expect(allowed.status, allowed.text).to.equal(201);
      const batch = kc.makeApiClient(k8s.BatchV1Api);
      const job = await waitFor('the Job of the run', 30_000, async () => (await batch.listNamespacedJob({ namespace: ns, labelSelector: `conveyor.ci/run-id=${allowed.body.runid}` })).items[0]);
      expect(job.spec?.template.spec?.serviceAccountName).to.equal('default');
      // Replacing an existing pipeline with an escalation is refused the same way.
      const created = await call('POST', '/resources/', tokens.editor, pipelineDoc('replace-me'));
      expect(created.status).to.equal(201);
      // A step pod of a pipeline that names no account: no token, no server environment.
      const core = kc.makeApiClient(k8s.CoreV1Api);
      const pod = await waitFor('the step pod', 60_000, async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: `conveyor.ci/run-id=${created.body.runid}` })).items[0]);
      expect(pod.spec?.automountServiceAccountToken).to.equal(false);
      expect(pod.spec?.enableServiceLinks).to.equal(false);
      expect((pod.spec?.volumes ?? []).filter((v) => v.projected?.sources?.some((src) => src.serviceAccountToken))).to.deep.equal([]);
      const envNames = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].flatMap((c) => (c.env ?? []).map((e) => e.name));
      expect(envNames.filter((n) => /^CONVEYOR_(AUTH|SERVICE_ACCOUNT|NAMESPACE|DATA_DIR|TOKEN)|^HOME$/.test(n))).to.deep.equal([]);
      expect((pod.spec?.containers ?? []).flatMap((c) => c.envFrom ?? [])).to.deep.equal([]);
      const replaced = await call('PUT', '/resources/pipeline/replace-me', tokens.editor, { spec: { ...pipelineDoc('x').spec, serviceAccountName: 'default' } });
      expect(replaced.status).to.equal(403);
    });

    it('with kubectl apply: the admission policy checks create pods, refuses the server\'s account, and records the requester', async () => {
      const kubeconfig = join(work, 'editor.kubeconfig');
      writeFileSync(kubeconfig, tokenKubeConfig(kc, tokens.editor).exportConfig(), { mode: 0o600 });
      const asEditor = (doc: object) => run(kubectlBin(), ['apply', '-n', ns, '-f', '-'], { input: JSON.stringify(doc), env: { KUBECONFIG: kubeconfig } });
      const manifest = (name: string, annotations: Record<string, string>, extra: Record<string, unknown> = {}) => ({
        apiVersion: 'conveyor.ci/v1alpha1',
        kind: 'Pipeline',
        metadata: { name, annotations },
        spec: { ...pipelineDoc(name).spec, ...extra },
      });
      const mine = { 'conveyor.ci/requested-by': user('editor') };
      const escalate = await asEditor(manifest('escalate-kubectl', mine, { serviceAccountName: 'default' }));
      expect(escalate.code).to.not.equal(0);
      expect(escalate.stderr).to.include(`may not create pods in namespace ${ns}`);
      const own = await asEditor(manifest('own-kubectl', mine, { serviceAccountName: serverAccount }));
      expect(own.code).to.not.equal(0);
      expect(own.stderr).to.match(/is Conveyor's own ServiceAccount/);
      const anonymous = await asEditor(manifest('unsigned-kubectl', {}));
      expect(anonymous.code).to.not.equal(0);
      expect(anonymous.stderr).to.include(`set the annotation conveyor.ci/requested-by: "${user('editor')}"`);
      const spoofed = await asEditor(manifest('spoofed-kubectl', { 'conveyor.ci/requested-by': 'someone-else' }));
      expect(spoofed.code).to.not.equal(0);
      const custom = kc.makeApiClient(k8s.CustomObjectsApi);
      for (const name of ['escalate-kubectl', 'own-kubectl', 'unsigned-kubectl', 'spoofed-kubectl']) {
        const found = await custom.getNamespacedCustomObject({ group: 'conveyor.ci', version: 'v1alpha1', namespace: ns, plural: 'pipelines', name }).then(() => true, () => false);
        expect(found, `Pipeline ${name} stored`).to.equal(false);
      }

      const applied = await asEditor(manifest('applied-kubectl', mine));
      expect(applied.code, applied.stderr).to.equal(0);
      const runid = await waitFor('the Pipeline\'s run', 60_000, async () => {
        const obj = (await custom.getNamespacedCustomObject({ group: 'conveyor.ci', version: 'v1alpha1', namespace: ns, plural: 'pipelines', name: 'applied-kubectl' })) as { status?: { lastRunId?: string } };
        return obj.status?.lastRunId;
      });
      const runRes = await call('GET', `/runs/${runid}`, tokens.viewer);
      expect(runRes.body.requestedBy).to.equal(user('editor'));
      const wide = await kubectl(['get', 'runs.conveyor.ci', runid, '-n', ns, '-o', 'wide']);
      expect(wide).to.match(/REQUESTED BY/);
      expect(wide).to.include(user('editor'));
      const started = await waitFor('the run\'s Started event', 60_000, async () => {
        const events = await kubectl(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${runid},reason=Started`, '-o', 'jsonpath={.items[*].message}']);
        return events.trim() || undefined;
      });
      expect(started).to.include(`requested by ${user('editor')}`);
    });
  });

  describe('/metrics, and tokens kept out of logs', () => {
    it('authorizes /metrics as the non-resource URL /metrics', async () => {
      const base = ways[0]!.base;
      expect((await http('GET', `${base}/metrics`)).status).to.equal(401);
      const denied = await http('GET', `${base}/metrics`, undefined, bearer(tokens.editor));
      expect(denied.status).to.equal(403);
      expect(denied.body.error).to.match(/may not get the non-resource URL \/metrics/);
      const allowed = await http('GET', `${base}/metrics`, undefined, bearer(tokens.monitor));
      expect(allowed.status).to.equal(200);
      expect(allowed.text).to.match(/http_requests_total/);
    });

    it('never writes a token to its log', async () => {
      const log = await kubectl(['logs', '-n', ns, `deployment/${serverAccount}`]);
      for (const token of Object.values(tokens)) {
        expect(log).to.not.include(token.slice(-40));
      }
      expect(log).to.not.match(/AUTHENTICATION IS OFF/);
    });
  });

  describe('through the Ingress (Traefik)', () => {
    before(async function () {
      this.timeout(2_400_000);
      const built = await run('bash', [join(repoRoot, 'scripts', 'cluster', 'ingress.sh'), 'build'], { timeoutMs: 2_400_000 });
      if (built.code !== 0) throw new Error(`scripts/cluster/ingress.sh build failed:\n${(built.stderr + built.stdout).split('\n').slice(-30).join('\n')}`);
      const port = await freePort();
      traefik = spawn('bash', [join(repoRoot, 'scripts', 'cluster', 'ingress.sh'), 'run', '--port', String(port), '--namespace', ns], {
        env: { ...process.env, KUBECONFIG: kubeconfigPath() },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      for (const stream of [traefik.stdout!, traefik.stderr!]) createInterface({ input: stream }).on('line', (l) => traefikLog.push(l));
      const ingress = { name: 'the Ingress (Traefik)', base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}`, headers: { host: HOST } };
      await waitFor('traefik to route the Ingress', 90_000, async () => {
        if (traefik!.exitCode !== null) throw new Error(`traefik exited ${traefik!.exitCode}:\n${traefikLog.slice(-20).join('\n')}`);
        const health = await http('GET', `${ingress.base}/health`, undefined, ingress.headers).catch(() => undefined);
        return health?.status === 200 ? true : undefined;
      });
      ways.push(ingress);
    });

    accessTests(1);

    // The web page as a user reaches it: by the Ingress's host name (chromium resolves it to
    // Traefik), the same origin for the page, the API and the websocket, the token asked for.
    it('serves the web page through the Ingress: sign in with a token, a run followed live to its end', async () => {
      ensureUiBuilt();
      const ingress = ways[1]!;
      const port = new URL(ingress.base).port;
      // The step waits before it speaks, so that its line reaches a page already signed in and
      // following: over the websocket through the Ingress, not from the archive.
      const doc = pipelineDoc('through-the-ingress-page');
      (doc.spec.steps as { command: string }[])[0]!.command = 'sleep 10; echo hello from through-the-ingress-page';
      const created = await http('POST', `${ingress.base}/resources`, doc, { ...ingress.headers, ...bearer(tokens.editor) });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const runid = (created.body as { runid: string }).runid;
      const browser = await launchBrowser([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
      try {
        const { page, errors } = await openPage(browser);
        let frames = 0;
        page.on('websocket', (ws) => ws.on('framereceived', () => frames++));
        await page.goto(`http://${HOST}:${port}/ui/runs/${runid}`);
        await page.getByLabel('Token').fill(tokens.editor);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.locator('[data-testid=steps] [data-step="greet"][data-phase="Succeeded"]').waitFor({ timeout: 120_000 });
        await page.locator('.line .msg', { hasText: 'hello from through-the-ingress-page' }).waitFor({ timeout: 60_000 });
        await page.locator('[data-testid=run-phase] [data-phase=Succeeded]').waitFor();
        expect(frames, 'log frames over the websocket through the Ingress').to.be.above(0);
        expect(errors).to.deep.equal([]);
      } finally {
        await browser.close();
      }
    });
  });
});
