// The Helm chart and the install bundle, checked without a cluster or helm: the chart's CRDs
// are manifests/crds/ byte for byte, values.yaml passes values.schema.json and bad values do
// not, every value is documented, and the committed manifests/install.yaml (rendered from the
// chart by scripts/render-install.sh; the cluster tier checks it is not stale) holds the CRDs,
// a Service that selects the Deployment's pod, a hardened pod and a least-privilege Role.
import { loadAllYaml, loadYaml } from '@kubernetes/client-node';
import { Ajv } from 'ajv';
import { expect } from 'chai';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');
const chart = join(root, 'charts', 'conveyor');
const read = (...parts: string[]) => readFileSync(join(...parts), 'utf8');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };

const values = loadYaml<Record<string, any>>(read(chart, 'values.yaml'));
const schema = JSON.parse(read(chart, 'values.schema.json')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const bundle = (loadAllYaml(read(root, 'manifests', 'install.yaml')) as Obj[]).filter(Boolean);
const find = (kind: string) => bundle.filter((o) => o.kind === kind);
const one = (kind: string): Obj => {
  const found = find(kind);
  expect(found, `${kind} objects in install.yaml`).to.have.length(1);
  return found[0]!;
};

/** A deep copy of the default values with `change` applied. */
function withValues(change: (v: Record<string, any>) => void): Record<string, any> {
  const copy = structuredClone(values);
  change(copy);
  return copy;
}

/** Every leaf path of an object (arrays and empty objects are leaves). */
function leafPaths(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) return leafPaths(value as Record<string, unknown>, path);
    return [path];
  });
}

describe('helm chart', () => {
  it('ships exactly the CRDs of manifests/crds/, byte for byte', () => {
    const want = readdirSync(join(root, 'manifests', 'crds')).sort();
    const have = readdirSync(join(chart, 'crds')).sort();
    expect(have, 'run scripts/render-install.sh to copy manifests/crds/ into the chart').to.deep.equal(want);
    for (const file of want) {
      expect(read(chart, 'crds', file), `charts/conveyor/crds/${file} differs from manifests/crds/${file}: run scripts/render-install.sh`).to.equal(read(root, 'manifests', 'crds', file));
    }
  });

  it('has the appVersion of package.json', () => {
    const chartYaml = loadYaml<{ appVersion: string; version: string }>(read(chart, 'Chart.yaml'));
    const pkg = JSON.parse(read(root, 'package.json')) as { version: string };
    expect(String(chartYaml.appVersion)).to.equal(pkg.version);
  });

  it('default values pass values.schema.json', () => {
    expect(validate(values), JSON.stringify(validate.errors)).to.equal(true);
  });

  const bad: [string, (v: Record<string, any>) => void][] = [
    ['an unknown top-level key', (v) => (v.replicas = 2)],
    ['a misspelt nested key', (v) => (v.image.pullpolicy = 'Always')],
    ['an unknown pull policy', (v) => (v.image.pullPolicy = 'Sometimes')],
    ['an image repository with a tag in it', (v) => (v.image.repository = 'conveyor:dev')],
    ['a port that is not a number', (v) => (v.server.port = '8080')],
    ['a privileged port for a non-root server', (v) => (v.server.port = 80)],
    ['an unknown log level', (v) => (v.server.logLevel = 'loud')],
    ['an unknown Service type', (v) => (v.service.type = 'External')],
    ['an ingress path without a leading slash', (v) => (v.ingress.hosts[0].paths[0].path = 'api')],
    ['an unknown pathType', (v) => (v.ingress.hosts[0].paths[0].pathType = 'Regex')],
    ['a claim size that is no quantity', (v) => (v.persistence.size = 'lots')],
    ['persistence.enabled as a string', (v) => (v.persistence.enabled = 'yes')],
    ['a resource limit that is no quantity', (v) => (v.resources.limits.memory = 'half a gig')],
    ['running as root', (v) => (v.podSecurityContext.runAsNonRoot = false)],
    ['uid 0', (v) => (v.podSecurityContext.runAsUser = 0)],
    ['privilege escalation', (v) => (v.securityContext.allowPrivilegeEscalation = true)],
    ['a privileged container', (v) => (v.securityContext.privileged = true)],
    ['added capabilities', (v) => (v.securityContext.capabilities.add = ['NET_ADMIN'])],
    ['capabilities not all dropped', (v) => (v.securityContext.capabilities.drop = ['NET_RAW'])],
    ['an unconfined seccomp profile', (v) => (v.securityContext.seccompProfile.type = 'Unconfined')],
    ['a misspelt security key', (v) => (v.securityContext.readOnlyRootFileSystem = true)],
    ['a misspelt pod security key', (v) => (v.podSecurityContext.runAsNonroot = true)],
    ['allowPrivilegeEscalation left out', (v) => delete v.securityContext.allowPrivilegeEscalation],
    ['capabilities left out', (v) => delete v.securityContext.capabilities],
    ['the dropped capabilities left out', (v) => delete v.securityContext.capabilities.drop],
    ['the container seccomp profile left out', (v) => delete v.securityContext.seccompProfile],
    ['runAsNonRoot left out of the pod', (v) => delete v.podSecurityContext.runAsNonRoot],
    ['an env var without a name', (v) => (v.server.extraEnv = [{ value: 'x' }])],
    ['a fullnameOverride that is no DNS label', (v) => (v.fullnameOverride = 'Conveyor_Server')],
  ];
  for (const [what, change] of bad) {
    it(`values.schema.json rejects ${what}`, () => {
      expect(validate(withValues(change))).to.equal(false);
    });
  }

  it('documents every value in charts/conveyor/README.md, and no value that does not exist', () => {
    const readme = read(chart, 'README.md');
    const section = readme.slice(readme.indexOf('## Values'), readme.indexOf('\n## ', readme.indexOf('## Values') + 1));
    const documented = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
    expect(documented.length).to.be.greaterThan(20);
    for (const path of leafPaths(values)) {
      const covered = documented.some((d) => path === d || path.startsWith(`${d}.`));
      expect(covered, `value ${path} is not in the README's values table`).to.equal(true);
    }
    const all = new Set([...leafPaths(values), ...leafPaths(values).flatMap((p) => p.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.')))]);
    for (const d of documented) expect(all.has(d), `the README documents ${d}, which values.yaml does not have`).to.equal(true);
  });
});

describe('manifests/install.yaml (committed render of the chart)', () => {
  it('says it is generated, and by what', () => {
    expect(read(root, 'manifests', 'install.yaml')).to.match(/^# .*\n# GENERATED by scripts\/render-install\.sh/);
  });

  it('holds the namespace and the CRDs of manifests/crds/ unchanged', () => {
    expect(one('Namespace').metadata.name).to.equal('conveyor');
    const crds = readdirSync(join(root, 'manifests', 'crds')).map((f) => loadYaml<Obj>(read(root, 'manifests', 'crds', f)));
    const inBundle = find('CustomResourceDefinition');
    expect(inBundle.map((c) => c.metadata.name).sort()).to.deep.equal(crds.map((c) => c.metadata.name).sort());
    for (const crd of crds) expect(inBundle.find((c) => c.metadata.name === crd.metadata.name)).to.deep.equal(crd);
  });

  // Cluster-wide: the user roles, the server's auth-delegator binding (TokenReview,
  // SubjectAccessReview) and the admission policy for kubectl apply (docs/security.md).
  const CLUSTER_SCOPED = ['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'];

  it('puts every namespaced object in the namespace conveyor', () => {
    for (const obj of bundle) {
      if (CLUSTER_SCOPED.includes(obj.kind)) continue;
      expect(obj.metadata.namespace, `${obj.kind} ${obj.metadata.name}`).to.equal('conveyor');
    }
  });

  it('grants users access through ClusterRoles aggregated into view, edit and admin, and the server only auth-delegator cluster-wide', () => {
    const roles = find('ClusterRole');
    expect(roles.map((r) => r.metadata.name).sort()).to.deep.equal(['conveyor-admin', 'conveyor-edit', 'conveyor-view']);
    const labels = (name: string) => roles.find((r) => r.metadata.name === name)!.metadata.labels as Record<string, string>;
    expect(labels('conveyor-view')).to.include({ 'rbac.authorization.k8s.io/aggregate-to-view': 'true', 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' });
    expect(labels('conveyor-edit')).to.include({ 'rbac.authorization.k8s.io/aggregate-to-edit': 'true', 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' });
    expect(labels('conveyor-edit')).to.not.have.property('rbac.authorization.k8s.io/aggregate-to-view');
    expect(labels('conveyor-admin')).to.have.property('rbac.authorization.k8s.io/aggregate-to-admin', 'true');
    for (const role of roles) for (const rule of role.rules) expect(rule.apiGroups, role.metadata.name).to.deep.equal(['conveyor.ci']);
    const view = roles.find((r) => r.metadata.name === 'conveyor-view')!;
    expect(view.rules.flatMap((r: { verbs: string[] }) => r.verbs).sort()).to.deep.equal(['get', 'list', 'watch']);
    const bindings = find('ClusterRoleBinding');
    expect(bindings).to.have.length(1);
    expect(bindings[0]!.roleRef).to.deep.include({ kind: 'ClusterRole', name: 'system:auth-delegator' });
    expect(bindings[0]!.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: one('ServiceAccount').metadata.name, namespace: 'conveyor' }]);
    const policy = one('ValidatingAdmissionPolicy');
    expect(policy.spec.matchConstraints.resourceRules[0]).to.deep.include({ apiGroups: ['conveyor.ci'], resources: ['pipelines'] });
    const rules = JSON.stringify(policy.spec);
    expect(rules).to.include("authorizer.group('').resource('pods')");
    expect(rules).to.include("variables.account != 'conveyor'");
    expect(one('ValidatingAdmissionPolicyBinding').spec.matchResources.namespaceSelector.matchLabels).to.deep.equal({ 'kubernetes.io/metadata.name': 'conveyor' });
  });

  it('holds no Helm hook: kubectl would run the uninstall clean-up Job at once', () => {
    for (const obj of bundle) expect(obj.metadata?.annotations?.['helm.sh/hook'], `${obj.kind} ${obj.metadata?.name}`).to.equal(undefined);
    expect(find('Job')).to.have.length(0);
  });

  it('has a Service that selects the Deployment pod (the upstream chart selected none)', () => {
    const service = one('Service');
    const deployment = one('Deployment');
    const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
    const selector = service.spec.selector as Record<string, string>;
    expect(Object.keys(selector)).to.have.length.greaterThan(0);
    for (const [key, value] of Object.entries(selector)) expect(podLabels[key], `pod label ${key}`).to.equal(value);
    expect(deployment.spec.selector.matchLabels).to.deep.equal(selector);
    const port = (deployment.spec.template.spec.containers[0].ports as { name: string }[]).map((p) => p.name);
    expect(port).to.include(service.spec.ports[0].targetPort);
  });

  it('runs one hardened server replica with Recreate, probes and the Kubernetes-mode environment', () => {
    const deployment = one('Deployment');
    expect(deployment.spec.replicas).to.equal(1);
    expect(deployment.spec.strategy.type).to.equal('Recreate');
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).to.include({ runAsNonRoot: true });
    expect(pod.securityContext.runAsUser).to.be.greaterThan(0);
    expect(pod.securityContext.seccompProfile.type).to.equal('RuntimeDefault');
    const [container] = pod.containers;
    expect(container.securityContext).to.include({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false });
    expect(container.securityContext.capabilities.drop).to.deep.equal(['ALL']);
    expect(container.livenessProbe.httpGet.path).to.equal('/ping');
    expect(container.readinessProbe.httpGet.path).to.equal('/health');
    expect(container.resources.requests).to.have.keys('cpu', 'memory');
    const env = Object.fromEntries((container.env as { name: string; value?: string; valueFrom?: any }[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).to.include({ CONVEYOR_MODE: 'kubernetes', CONVEYOR_HOST: '0.0.0.0', CONVEYOR_PORT: '8080', CONVEYOR_DATA_DIR: '/data' });
    expect(env.CONVEYOR_NAMESPACE).to.deep.equal({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env.CONVEYOR_INSTALLATION, 'its own Deployment').to.equal('conveyor');
    const mounts = Object.fromEntries((container.volumeMounts as { name: string; mountPath: string }[]).map((m) => [m.mountPath, m.name]));
    const volumes = Object.fromEntries((pod.volumes as { name: string }[]).map((v) => [v.name, v]));
    expect((volumes[mounts['/data']!] as any).persistentVolumeClaim.claimName).to.equal(one('PersistentVolumeClaim').metadata.name);
    expect((volumes[mounts['/tmp']!] as any).emptyDir).to.be.an('object');
  });

  it('grants a least-privilege Role: no secrets, no wildcards, exactly the resources the server uses', () => {
    const role = one('Role');
    const rules = role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = new Map<string, Set<string>>();
    for (const rule of rules) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          expect(group, 'apiGroup').to.not.equal('*');
          expect(resource, 'resource').to.not.equal('*');
          for (const verb of rule.verbs) {
            expect(verb, `verb on ${resource}`).to.not.equal('*');
            const key = `${group}/${resource}`;
            granted.set(key, (granted.get(key) ?? new Set()).add(verb));
          }
        }
      }
    }
    expect([...granted.keys()].sort()).to.deep.equal(
      [
        'conveyor.ci/pipelines',
        'conveyor.ci/runs',
        'conveyor.ci/resources',
        'conveyor.ci/resourcedefinitions',
        'conveyor.ci/pipelines/status',
        'conveyor.ci/runs/status',
        'conveyor.ci/runs/finalizers',
        'batch/jobs',
        '/pods',
        '/pods/log',
        '/events',
        'coordination.k8s.io/leases',
        'apps/deployments',
      ].sort(),
    );
    // Its own Deployment only, read only: is the installation going?
    const deployments = rules.filter((r) => r.resources.includes('deployments'));
    expect(deployments).to.deep.equal([{ apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['conveyor'], verbs: ['get'] }]);
    expect([...granted.get('/pods')!].sort()).to.deep.equal(['list', 'patch', 'watch']);
    // delete: retention removes a finished run's Job once its log is archived.
    expect([...granted.get('batch/jobs')!].sort()).to.deep.equal(['create', 'delete', 'get', 'list', 'patch', 'watch']);
    expect([...granted.get('/events')!]).to.deep.equal(['create']);
    expect([...granted.get('/pods/log')!]).to.deep.equal(['get']);
    const binding = one('RoleBinding');
    expect(binding.roleRef).to.deep.include({ kind: 'Role', name: role.metadata.name });
    expect(binding.subjects).to.deep.equal([{ kind: 'ServiceAccount', name: one('ServiceAccount').metadata.name, namespace: 'conveyor' }]);
  });
});
