// Kubernetes mode's authentication and authorization: the caller's own bearer token is
// checked by the API server with a TokenReview, and each route's verb on Conveyor's
// resources with a SubjectAccessReview, so access is granted with ordinary RBAC. Answers
// are cached briefly (seconds) in bounded caches, keyed by a hash: a token is never kept,
// logged or sent anywhere but to the API server.
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import type { Access, Authenticator, Authorizer, RequestAuth, User } from '../api/auth/types.ts';
import { BoundedTtlCache } from './bounded-cache.ts';

export const API_GROUP = 'conveyor.ci';

export interface ReviewOptions {
  kc: k8s.KubeConfig;
  namespace: string;
  // Whether /metrics needs `get` on the non-resource URL /metrics (as kube components do).
  metricsAuth: boolean;
  // The server's own ServiceAccount, never usable by a pipeline.
  ownServiceAccount: string | undefined;
  ttlMs?: number;
  deniedTtlMs?: number;
  maxEntries?: number;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

export function describeAccess(access: Access, namespace: string): string {
  if ('path' in access) return `${access.verb} the non-resource URL ${access.path}`;
  const resource = `${access.resource}${access.subresource ? `/${access.subresource}` : ''}`;
  const group = access.resource === 'pods' ? '' : `.${API_GROUP}`;
  return `${access.verb} ${resource}${group} in namespace ${namespace}`;
}

export function kubernetesReviews(options: ReviewOptions): RequestAuth {
  const authn = options.kc.makeApiClient(k8s.AuthenticationV1Api);
  const authz = options.kc.makeApiClient(k8s.AuthorizationV1Api);
  const ttl = options.ttlMs ?? 10_000;
  const deniedTtl = options.deniedTtlMs ?? 2_000;
  const users = new BoundedTtlCache<User | null>(options.maxEntries ?? 1024);
  const decisions = new BoundedTtlCache<boolean>(options.maxEntries ?? 4096);

  const authenticator: Authenticator = {
    async authenticate(token) {
      const key = sha256(token);
      const cached = users.get(key);
      if (cached !== undefined) return cached;
      const review = await authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } } });
      const info = review.status?.authenticated ? review.status.user : undefined;
      const user: User | null = info?.username ? { name: info.username, uid: info.uid, groups: info.groups ?? [], extra: info.extra } : null;
      users.set(key, user, user ? ttl : deniedTtl);
      return user;
    },
  };

  const authorizer: Authorizer = {
    async allowed(user, access) {
      const key = sha256(JSON.stringify([user.name, user.uid, user.groups, user.extra, access]));
      const cached = decisions.get(key);
      if (cached !== undefined) return cached;
      const target =
        'path' in access
          ? { nonResourceAttributes: { path: access.path, verb: access.verb } }
          : {
              resourceAttributes: {
                namespace: options.namespace,
                verb: access.verb,
                group: access.resource === 'pods' ? '' : API_GROUP,
                resource: access.resource,
                ...(access.subresource ? { subresource: access.subresource } : {}),
                ...(access.name ? { name: access.name } : {}),
              },
            };
      const review = await authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: user.name, uid: user.uid, groups: user.groups, extra: user.extra, ...target },
        },
      });
      const allowed = review.status?.allowed === true && review.status?.denied !== true;
      decisions.set(key, allowed, allowed ? ttl : deniedTtl);
      return allowed;
    },
    describe: (access) => describeAccess(access, options.namespace),
  };

  return {
    authenticator,
    authorizer,
    publicPaths: new Set(['/health', '/ping', ...(options.metricsAuth ? [] : ['/metrics'])]),
    serviceAccounts: { own: options.ownServiceAccount, namespace: options.namespace },
  };
}

// Who the server itself is (SelfSubjectReview): if a ServiceAccount of its own namespace,
// that account's name, which no pipeline may use.
export async function ownServiceAccount(kc: k8s.KubeConfig, namespace: string): Promise<string | undefined> {
  const authn = kc.makeApiClient(k8s.AuthenticationV1Api);
  const review = await authn.createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
  const name = review.status?.userInfo?.username ?? '';
  const match = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(name);
  return match && match[1] === namespace ? match[2] : undefined;
}
