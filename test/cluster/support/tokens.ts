// Tokens of test clients, the way a user gets one: a ServiceAccount, RBAC bound to it with
// ordinary (Cluster)Roles, and a token from the TokenRequest API (`kubectl create token`).
import * as k8s from '@kubernetes/client-node';

// Marks the cluster-wide bindings made for a test namespace's clients.
const TEST_NAMESPACE_LABEL = 'conveyor.ci/test-namespace';

export interface ClientGrant {
  // ClusterRoles bound in the namespace with a RoleBinding (e.g. conveyor-edit).
  clusterRoles?: string[];
  // Rules of a Role made for this client in the namespace.
  rules?: k8s.V1PolicyRule[];
  // ClusterRoles bound cluster-wide (non-resource URLs such as /metrics need this); the
  // binding is named after the namespace and client, and deleted by revokeClusterGrants.
  clusterWide?: string[];
}

export async function clientToken(kc: k8s.KubeConfig, namespace: string, name: string, grant: ClientGrant = {}, seconds = 3600): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch(ignoreExists);
  const subject = { kind: 'ServiceAccount', name, namespace };
  if (grant.rules) {
    await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: grant.rules } }).catch(ignoreExists);
    await rbac
      .createNamespacedRoleBinding({ namespace, body: { metadata: { name: `${name}-role` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [subject] } })
      .catch(ignoreExists);
  }
  for (const role of grant.clusterRoles ?? []) {
    await rbac
      .createNamespacedRoleBinding({ namespace, body: { metadata: { name: `${name}-${role}`.slice(0, 253) }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [subject] } })
      .catch(ignoreExists);
  }
  for (const role of grant.clusterWide ?? []) {
    await rbac
      .createClusterRoleBinding({
        body: {
          metadata: { name: `${namespace}-${name}-${role.replace(/[^a-z0-9-]/g, '-')}`.slice(0, 253), labels: { [TEST_NAMESPACE_LABEL]: namespace } },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [subject],
        },
      })
      .catch(ignoreExists);
  }
  const request = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: seconds } } });
  const token = request.status?.token;
  if (!token) throw new Error(`no token for ServiceAccount ${namespace}/${name}`);
  return token;
}

// The cluster-wide bindings clientToken made for a namespace's clients (listed by label,
// each checked, then deleted by name: never a collection delete on cluster-wide RBAC).
export async function revokeClusterGrants(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const bindings = await rbac.listClusterRoleBinding({ labelSelector: `${TEST_NAMESPACE_LABEL}=${namespace}` });
  for (const binding of bindings.items) {
    if (binding.metadata?.labels?.[TEST_NAMESPACE_LABEL] !== namespace) continue;
    await rbac.deleteClusterRoleBinding({ name: binding.metadata.name! }).catch(() => undefined);
  }
}

// Bindings whose test namespace is gone (a test that ended without its cleanup).
export async function pruneStaleClusterGrants(kc: k8s.KubeConfig): Promise<void> {
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const bindings = await rbac.listClusterRoleBinding({ labelSelector: TEST_NAMESPACE_LABEL });
  for (const binding of bindings.items) {
    const namespace = binding.metadata?.labels?.[TEST_NAMESPACE_LABEL];
    if (!namespace) continue;
    const gone = await core.readNamespace({ name: namespace }).then(
      (ns) => ns.status?.phase === 'Terminating',
      (err: unknown) => err instanceof k8s.ApiException && err.code === 404,
    );
    if (gone) await rbac.deleteClusterRoleBinding({ name: binding.metadata!.name! }).catch(() => undefined);
  }
}

function ignoreExists(err: unknown): void {
  if (err instanceof k8s.ApiException && err.code === 409) return;
  throw err;
}

// What the integration scenarios do over HTTP: everything on Conveyor's resources, and
// create pods (the bar for naming a ServiceAccount).
export const SCENARIO_RULES: k8s.V1PolicyRule[] = [
  { apiGroups: ['conveyor.ci'], resources: ['pipelines', 'resources', 'resourcedefinitions', 'runs', 'runs/log', 'driverpipelines', 'drivermessages', 'drivers'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
];
