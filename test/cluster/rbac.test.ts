// Least privilege, checked on the real API server (issue 6, point 6): the chart's
// ServiceAccount may do what the server does in its own namespace, and nothing else: no
// secrets, no nodes, no role bindings, no other namespace. `kubectl auth can-i --as` asks the
// authorizer; one request is also made with the account's own token. The release runs in a
// namespace enforcing the `restricted` Pod Security Standard.
import * as k8s from '@kubernetes/client-node';
import { expect } from 'chai';
import { chartDir, deleteNamespaceAndWait, diagnostics, ensureImage, helm, helmBin, imageValues, kubectl, kubectlBin, run, waitForDeployment, userRoleValues } from './support/install.ts';
import { createTestNamespace, loadKubeConfig, tokenKubeConfig } from './support/kube.ts';

describe('packaging: least privilege of the server account', function () {
  this.timeout(120_000);
  let kc: k8s.KubeConfig;
  let ns: string;
  let as: string;
  const release = 'rbac';
  const account = 'rbac-conveyor';

  before(async function () {
    this.timeout(1_200_000);
    kc = loadKubeConfig();
    const image = await ensureImage();
    ns = await createTestNamespace(kc.makeApiClient(k8s.CoreV1Api), 'conveyor-rbac');
    as = `system:serviceaccount:${ns}:${account}`;
    // The strictest Pod Security Standard: the server's pod must be admitted under it.
    await kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
    // The chart's defaults (the archive on a claim of the default StorageClass).
    await helm(['install', release, chartDir, '-n', ns, ...imageValues(image), ...userRoleValues(ns), '--wait', '--timeout', '120s'], { timeoutMs: 150_000 });
  });

  it('runs its server pod in a namespace that enforces the restricted Pod Security Standard', async () => {
    await waitForDeployment(kc, ns, account);
    const events = await kubectl(['get', 'events', '-n', ns, '-o', 'jsonpath={range .items[*]}{.message}{"\\n"}{end}']);
    expect(events).to.not.match(/violates PodSecurity/);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && ns) console.log(await diagnostics(ns));
  });

  after(async function () {
    this.timeout(180_000);
    if (ns) {
      await run(helmBin(), ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
      await deleteNamespaceAndWait(kc, ns);
    }
  });

  /** `kubectl auth can-i` as the server's account: true for yes, false for no. */
  async function canI(args: string[], namespace: string | null = ns): Promise<boolean> {
    const r = await run(kubectlBin(), ['auth', 'can-i', ...args, `--as=${as}`, ...(namespace ? ['-n', namespace] : [])]);
    if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() === 'yes';
  }

  const allowed: [string, string[]][] = [
    ['create Pipelines', ['create', 'pipelines.conveyor.ci']],
    ['watch Pipelines', ['watch', 'pipelines.conveyor.ci']],
    ['update Pipelines', ['update', 'pipelines.conveyor.ci']],
    ['delete Pipelines', ['delete', 'pipelines.conveyor.ci']],
    ['update Pipeline status', ['update', 'pipelines.conveyor.ci', '--subresource=status']],
    ['create Runs', ['create', 'runs.conveyor.ci']],
    ['list Runs', ['list', 'runs.conveyor.ci']],
    ['patch Runs (cancel)', ['patch', 'runs.conveyor.ci']],
    ['update Run status', ['update', 'runs.conveyor.ci', '--subresource=status']],
    ['create Resources', ['create', 'resources.conveyor.ci']],
    ['delete ResourceDefinitions', ['delete', 'resourcedefinitions.conveyor.ci']],
    ['create Jobs', ['create', 'jobs.batch']],
    ['list Jobs', ['list', 'jobs.batch']],
    ['watch Jobs', ['watch', 'jobs.batch']],
    ['read a Job', ['get', 'jobs.batch']],
    ['patch Jobs (suspend)', ['patch', 'jobs.batch']],
    ['delete Jobs (retention)', ['delete', 'jobs.batch']],
    ['list pods', ['list', 'pods']],
    ['watch pods', ['watch', 'pods']],
    ['patch pods (finalizer, deadline)', ['patch', 'pods']],
    ['read pod logs', ['get', 'pods', '--subresource=log']],
    ['create events', ['create', 'events']],
    ['get the leader Lease', ['get', 'leases.coordination.k8s.io']],
    ['create the leader Lease', ['create', 'leases.coordination.k8s.io']],
    ['update the leader Lease', ['update', 'leases.coordination.k8s.io']],
    ['read its own Deployment (is the installation going?)', ['get', `deployments.apps/${account}`]],
    // Checking its callers (system:auth-delegator): their tokens and their permissions.
    ['review tokens', ['create', 'tokenreviews.authentication.k8s.io']],
    ['review access', ['create', 'subjectaccessreviews.authorization.k8s.io']],
  ];
  for (const [what, args] of allowed) {
    it(`can ${what} in its namespace`, async () => {
      expect(await canI(args), `can-i ${args.join(' ')}`).to.equal(true);
    });
  }

  const denied: [string, string[], string | null][] = [
    ['read secrets in its namespace', ['get', 'secrets'], 'self'],
    ['list secrets in its namespace', ['list', 'secrets'], 'self'],
    ['list secrets anywhere', ['list', 'secrets', '--all-namespaces'], null],
    ['read configmaps', ['get', 'configmaps'], 'self'],
    ['delete nodes', ['delete', 'nodes'], null],
    ['list nodes', ['list', 'nodes'], null],
    ['create cluster role bindings', ['create', 'clusterrolebindings.rbac.authorization.k8s.io'], null],
    ['bind cluster roles', ['bind', 'clusterroles.rbac.authorization.k8s.io'], null],
    ['create role bindings in its namespace', ['create', 'rolebindings.rbac.authorization.k8s.io'], 'self'],
    ['escalate roles', ['escalate', 'roles.rbac.authorization.k8s.io'], 'self'],
    ['impersonate users', ['impersonate', 'users'], null],
    ['create pods directly', ['create', 'pods'], 'self'],
    ['exec into pods', ['create', 'pods', '--subresource=exec'], 'self'],
    ['delete pods', ['delete', 'pods'], 'self'],
    ['create service account tokens', ['create', 'serviceaccounts', '--subresource=token'], 'self'],
    ['read CRDs', ['get', 'customresourcedefinitions.apiextensions.k8s.io'], null],
    ['create Jobs in another namespace', ['create', 'jobs.batch'], 'default'],
    ['read Runs in another namespace', ['get', 'runs.conveyor.ci'], 'default'],
    ['read another Deployment', ['get', 'deployments.apps/other'], 'self'],
    ['list Deployments', ['list', 'deployments.apps'], 'self'],
    ['do anything to anything', ['*', '*'], 'self'],
  ];
  for (const [what, args, where] of denied) {
    it(`cannot ${what}`, async () => {
      expect(await canI(args, where === 'self' ? ns : where), `can-i ${args.join(' ')}`).to.equal(false);
    });
  }

  it('is refused secrets by the API server with its own token', async () => {
    const token = (await kubectl(['create', 'token', account, '-n', ns, '--duration=10m'])).trim();
    const core = tokenKubeConfig(kc, token).makeApiClient(k8s.CoreV1Api);
    let status = 0;
    try {
      await core.listNamespacedSecret({ namespace: ns });
    } catch (err) {
      status = err instanceof k8s.ApiException ? err.code : -1;
    }
    expect(status).to.equal(403);
    // ... while its own work is allowed with the same token.
    const pods = await core.listNamespacedPod({ namespace: ns });
    expect(pods.items).to.be.an('array');
  });
});
