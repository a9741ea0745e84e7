// Who is calling and what a route needs, in Kubernetes' own terms: a user (name, groups)
// from the authenticator, and the verb on a resource of `conveyor.ci` (or a non-resource
// URL such as /metrics) that the authorizer must allow.
import { ConveyorError } from '../../domain/index.ts';

export interface User {
  name: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export type Access =
  | { verb: string; resource: string; subresource?: string; name?: string }
  | { verb: string; path: string };

export interface Authenticator {
  // The user a bearer token belongs to, or null when the token is not accepted.
  authenticate(token: string): Promise<User | null>;
}

export interface Authorizer {
  allowed(user: User, access: Access): Promise<boolean>;
  // How an access reads in a 403 (`create pipelines.conveyor.ci in namespace ci`).
  describe(access: Access): string;
}

export interface RequestAuth {
  authenticator: Authenticator;
  authorizer: Authorizer;
  // Paths served without a token: probes (and /metrics when its check is off).
  publicPaths: ReadonlySet<string>;
  // Kubernetes mode: a pipeline may name a ServiceAccount only if its author may create
  // pods; the server's own account never. Local mode has no such thing.
  serviceAccounts?: { own: string | undefined; namespace: string };
}

export class UnauthorizedError extends ConveyorError {
  readonly headers = { 'WWW-Authenticate': 'Bearer realm="conveyor"' };
  constructor(message: string) {
    super(401, message);
  }
}

export const TOKEN_PROTOCOL_PREFIX = 'base64url.bearer.authorization.k8s.io.';
export const LOG_PROTOCOL = 'conveyor.logs.v1';
