// Smoke tests of the test cluster itself (issue 4): a Ready node, Jobs that run to
// completion, logs through the log API (follow, timestamps, sinceTime), pods that reach the
// API server through the `kubernetes` Service with their service account token, pod-to-Service
// traffic, RBAC and TokenRequest. Every object lives in a namespace made for this run.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import {
  createTestNamespace,
  deleteNamespace,
  deletePod,
  isApiError,
  jwtClaims,
  kubeconfigPath,
  kubectlPath,
  loadKubeConfig,
  shellPod,
  testImage,
  tokenKubeConfig,
  uniqueName,
  waitFor,
  waitForPodPhase,
  waitForPodReady,
} from './support/kube.ts';

const run = promisify(execFile);

describe('test cluster (smoke)', function () {
  this.timeout(120_000);

  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let ns: string;

  before(async () => {
    kc = loadKubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = await createTestNamespace(core, 'smoke');
  });

  after(async () => {
    if (ns) await deleteNamespace(core, ns);
  });

  /** Reads a pod's whole log through the log API. */
  async function podLog(name: string, options: k8s.LogOptions = {}): Promise<string> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((done, fail) => {
      out.on('end', done);
      out.on('error', fail);
    });
    await new k8s.Log(kc).log(ns, name, 'main', out, options);
    await ended;
    return Buffer.concat(chunks).toString('utf8');
  }

  it('has a node that is Ready', async () => {
    const nodes = await core.listNode();
    expect(nodes.items).to.have.length.greaterThan(0);
    for (const node of nodes.items) {
      const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
      expect(ready?.status, `node ${node.metadata?.name} Ready`).to.equal('True');
      expect(node.status?.nodeInfo?.containerRuntimeVersion).to.match(/^\w+:\/\//);
    }
  });

  it('runs a Job to completion and serves its pod log', async () => {
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const name = uniqueName('job');
    const pod = shellPod(name, 'echo job-started; pwd; cat /etc/os-release; echo job-done');
    await batch.createNamespacedJob({
      namespace: ns,
      body: { metadata: { name }, spec: { backoffLimit: 0, ttlSecondsAfterFinished: 300, template: pod } },
    });
    try {
      const job = await waitFor(`job ${name} to complete`, 90_000, async () => {
        const j = await batch.readNamespacedJob({ name, namespace: ns });
        if (j.status?.failed) throw new Error(`job ${name} failed: ${JSON.stringify(j.status)}`);
        return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
      });
      expect(job.status?.succeeded).to.equal(1);
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `batch.kubernetes.io/job-name=${name}` });
      expect(pods.items).to.have.length(1);
      const jobPod = pods.items[0]!;
      expect(jobPod.status?.phase).to.equal('Succeeded');
      expect(jobPod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).to.equal(0);
      expect(jobPod.spec?.containers[0]?.image).to.equal(testImage);
      const log = await core.readNamespacedPodLog({ name: jobPod.metadata!.name!, namespace: ns });
      expect(log.split('\n')).to.include.members(['job-started', '/', 'VERSION_ID=1.2.3', 'job-done']);
    } finally {
      await batch.deleteNamespacedJob({ name, namespace: ns, propagationPolicy: 'Background', gracePeriodSeconds: 0 });
    }
  });

  it('streams logs with follow, timestamps and sinceTime through client-node Log', async () => {
    const name = uniqueName('logs');
    await core.createNamespacedPod({
      namespace: ns,
      body: shellPod(name, 'for i in 1 2 3 4 5 6; do echo line-$i; sleep 1; done'),
    });
    try {
      await waitForPodPhase(core, ns, name, ['Running', 'Succeeded']);

      // follow: lines arrive while the container runs, and the stream ends when it exits.
      const out = new PassThrough();
      const arrivals: Array<{ at: number; text: string }> = [];
      out.on('data', (c: Buffer) => arrivals.push({ at: Date.now(), text: c.toString('utf8') }));
      const ended = new Promise<void>((done) => out.on('end', done));
      await new k8s.Log(kc).log(ns, name, 'main', out, { follow: true });
      await ended;
      const followed = arrivals.map((a) => a.text).join('');
      expect(followed.trim().split('\n')).to.deep.equal(['line-1', 'line-2', 'line-3', 'line-4', 'line-5', 'line-6']);
      expect(arrivals.length, 'the log came in more than one piece').to.be.greaterThan(1);
      expect(arrivals.at(-1)!.at - arrivals[0]!.at, 'ms between first and last piece').to.be.greaterThan(1500);
      const done = await waitForPodPhase(core, ns, name, ['Succeeded']);
      expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).to.equal(0);

      // timestamps: every line starts with an RFC 3339 time, in order, about a second apart.
      const stamped = (await podLog(name, { timestamps: true })).trim().split('\n');
      expect(stamped).to.have.length(6);
      const times = stamped.map((line, i) => {
        const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/.exec(line);
        expect(m, `timestamped line: ${line}`).to.not.equal(null);
        expect(m![2]).to.equal(`line-${i + 1}`);
        return new Date(m![1]!).getTime();
      });
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).to.be.within(900, 5000);

      // sinceTime (whole seconds on the wire): from line-4's second on, lines 1-3 are earlier.
      const since = new Date(Math.floor(times[3]! / 1000) * 1000).toISOString().replace('.000Z', 'Z');
      const tail = (await podLog(name, { sinceTime: since })).trim().split('\n');
      expect(tail).to.deep.equal(['line-4', 'line-5', 'line-6']);

      // tailLines and the plain API agree with the stream.
      expect((await podLog(name, { tailLines: 2 })).trim().split('\n')).to.deep.equal(['line-5', 'line-6']);
    } finally {
      await deletePod(core, ns, name);
    }
  });

  it('lets a pod reach the API server through the kubernetes Service with its token', async () => {
    const svc = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
    const name = uniqueName('incluster');
    const script = [
      'set -e',
      'SA=/var/run/secrets/kubernetes.io/serviceaccount',
      'TOKEN=$(cat $SA/token)',
      'API=https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT',
      'echo "host=$KUBERNETES_SERVICE_HOST namespace=$(cat $SA/namespace)"',
      'test -s $SA/ca.crt',
      // A request every authenticated identity may make: who am I?
      'echo review-begin',
      'wget -qO- --no-check-certificate --header "Authorization: Bearer $TOKEN" ' +
        `--header "Content-Type: application/json" --post-data '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' ` +
        '$API/apis/authentication.k8s.io/v1/selfsubjectreviews',
      'echo; echo review-end',
      // The same API server by its Service's DNS name (the cluster DNS resolves it).
      'echo version-begin',
      'wget -qO- --no-check-certificate --header "Authorization: Bearer $TOKEN" https://kubernetes.default.svc/version',
      'echo; echo version-end',
      // One the default service account is not allowed: RBAC says 403.
      'if wget -qO- --no-check-certificate --header "Authorization: Bearer $TOKEN" $API/api/v1/namespaces/$(cat $SA/namespace)/secrets 2>/tmp/err; ' +
        'then echo secrets=allowed; else echo "secrets=$(cat /tmp/err)"; fi',
    ].join('\n');
    await core.createNamespacedPod({ namespace: ns, body: shellPod(name, script) });
    try {
      const pod = await waitForPodPhase(core, ns, name, ['Succeeded', 'Failed'], 60_000);
      const log = await core.readNamespacedPodLog({ name, namespace: ns });
      expect(pod.status?.phase, log).to.equal('Succeeded');
      expect(log).to.contain(`host=${svc.spec?.clusterIP} namespace=${ns}`);
      const review = /^review-begin\n([^]*)\nreview-end$/m.exec(log)?.[1];
      expect(review, log).to.be.a('string');
      const parsed = JSON.parse(review!) as k8s.V1SelfSubjectReview;
      expect(parsed.kind).to.equal('SelfSubjectReview');
      expect(parsed.status?.userInfo?.username).to.equal(`system:serviceaccount:${ns}:default`);
      expect(parsed.status?.userInfo?.groups).to.include('system:serviceaccounts');
      expect(log).to.match(/^secrets=.*403 Forbidden/m);
      const version = JSON.parse(/^version-begin\n([^]*)\nversion-end$/m.exec(log)?.[1] ?? 'null') as { gitVersion?: string } | null;
      expect(version?.gitVersion, log).to.match(/^v1\.\d+\./);
    } finally {
      await deletePod(core, ns, name);
    }
  });

  it('carries pod-to-Service traffic, by ClusterIP and by DNS name', async () => {
    const web = uniqueName('web');
    const serve = 'mkdir -p /tmp/www && echo "served-by-$HOSTNAME" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www';
    const webPod = shellPod(web, serve, { restartPolicy: 'Always' }, { app: web });
    const container = webPod.spec!.containers[0]!;
    container.ports = [{ containerPort: 8080, name: 'http' }];
    container.readinessProbe = { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 };
    await core.createNamespacedPod({ namespace: ns, body: webPod });
    const client = uniqueName('client');
    try {
      const service = await core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: web }, spec: { selector: { app: web }, ports: [{ port: 80, targetPort: 8080 }] } },
      });
      const ip = service.spec?.clusterIP;
      expect(ip).to.match(/^\d+\.\d+\.\d+\.\d+$/);
      await waitForPodReady(core, ns, web);
      // (busybox's own `wget -T` crashes in this static build: `timeout` bounds each try.)
      const script = `for i in $(seq 1 30); do if timeout 3 wget -qO- http://${ip}:80/ && timeout 3 wget -qO- http://${web}.${ns}.svc/; then exit 0; fi; sleep 1; done; exit 1`;
      await core.createNamespacedPod({ namespace: ns, body: shellPod(client, script) });
      const pod = await waitForPodPhase(core, ns, client, ['Succeeded', 'Failed'], 60_000);
      const log = await core.readNamespacedPodLog({ name: client, namespace: ns });
      expect(pod.status?.phase, log).to.equal('Succeeded');
      expect(log.trim().split('\n').slice(-2)).to.deep.equal([`served-by-${web}`, `served-by-${web}`]);
    } finally {
      await deletePod(core, ns, client);
      await deletePod(core, ns, web);
      await core.deleteNamespacedService({ name: web, namespace: ns }).catch(() => undefined);
    }
  });

  it('issues service account tokens (TokenRequest) and enforces RBAC on them', async () => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const sa = uniqueName('sa');
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    try {
      const request = await core.createNamespacedServiceAccountToken({
        name: sa,
        namespace: ns,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      const token = request.status?.token;
      expect(token).to.be.a('string');
      const claims = jwtClaims(token!);
      const subject = `system:serviceaccount:${ns}:${sa}`;
      expect(claims.sub).to.equal(subject);
      expect(claims.exp as number).to.be.within(Date.now() / 1000 + 500, Date.now() / 1000 + 700);

      // The token authenticates as the service account...
      const asSa = tokenKubeConfig(kc, token!);
      const review = await asSa.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: {} });
      expect(review.status?.userInfo?.username).to.equal(subject);

      // ...which may not list secrets: by the authorizer's word and by a real request.
      const sar = await kc.makeApiClient(k8s.AuthorizationV1Api).createSubjectAccessReview({
        body: { spec: { user: subject, groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`], resourceAttributes: { namespace: ns, verb: 'list', resource: 'secrets' } } },
      });
      expect(sar.status?.allowed).to.equal(false);
      const saCore = asSa.makeApiClient(k8s.CoreV1Api);
      const denied = await saCore.listNamespacedSecret({ namespace: ns }).then(() => 'allowed', (err: unknown) => (isApiError(err, 403) ? 'forbidden' : err));
      expect(denied).to.equal('forbidden');

      const kubectl = kubectlPath();
      if (kubectl) {
        const canI = await run(kubectl, ['--kubeconfig', kubeconfigPath(), 'auth', 'can-i', 'list', 'secrets', '-n', ns, '--as', subject]).then(
          (r) => r.stdout.trim(),
          (err: { stdout?: string }) => (err.stdout ?? '').trim(),
        );
        expect(canI).to.equal('no');
      }

      // A Role and RoleBinding grant exactly what they say.
      await rbac.createNamespacedRole({
        namespace: ns,
        body: { metadata: { name: sa }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: sa },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
        },
      });
      const pods = await waitFor('the RoleBinding to take effect', 10_000, () => saCore.listNamespacedPod({ namespace: ns }));
      expect(pods.items).to.be.an('array');
      const stillDenied = await saCore.listNamespacedSecret({ namespace: ns }).then(() => 'allowed', (err: unknown) => (isApiError(err, 403) ? 'forbidden' : err));
      expect(stillDenied).to.equal('forbidden');
    } finally {
      await core.deleteNamespacedServiceAccount({ name: sa, namespace: ns }).catch(() => undefined);
      await rbac.deleteNamespacedRoleBinding({ name: sa, namespace: ns }).catch(() => undefined);
      await rbac.deleteNamespacedRole({ name: sa, namespace: ns }).catch(() => undefined);
    }
  });
});
