// The two halves of the check, shared by HTTP routes and the websocket upgrade: who the
// bearer token belongs to (401 when none or not accepted), and whether that user may do
// what the route declares (403 naming the verb and resource).
import type { Middleware, ParameterizedContext } from 'koa';
import { ForbiddenError } from './browser.ts';
import { UnauthorizedError, type Access, type RequestAuth, type User } from './types.ts';

// Whether `path` is one that needs no token (probes), compared without a trailing slash, as
// the routes match paths. The authentication middleware and each route's check agree on it.
export function isPublicPath(auth: RequestAuth, path: string): boolean {
  return auth.publicPaths.has(path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') : path);
}

export async function authenticateToken(auth: RequestAuth, token: string | undefined): Promise<User> {
  if (token === undefined) {
    throw new UnauthorizedError('authentication required: send the header "Authorization: Bearer <token>" (in Kubernetes mode a token of yours, e.g. from `kubectl create token`)');
  }
  const user = await auth.authenticator.authenticate(token);
  if (!user) throw new UnauthorizedError('the bearer token was not accepted (invalid or expired)');
  return user;
}

export async function authorize(auth: RequestAuth, user: User, accesses: Access[]): Promise<void> {
  for (const access of accesses) {
    if (!(await auth.authorizer.allowed(user, access))) {
      throw new ForbiddenError(`user "${user.name}" may not ${auth.authorizer.describe(access)}`);
    }
  }
}

type AccessSpec = Access | Access[] | ((ctx: ParameterizedContext) => Access | Access[]);

// A route's declaration of what it needs, e.g. `requires(deps.auth, { verb: 'list',
// resource: 'runs' })`; a function when it depends on the request (a resource's type).
// Without authentication there is nothing to check: a synchronous pass.
export function requires(auth: RequestAuth | undefined, spec: AccessSpec): Middleware {
  if (!auth) return (_ctx, next) => next();
  return async (ctx, next) => {
    if (!isPublicPath(auth, ctx.path)) {
      const user = ctx.state.user as User | undefined;
      if (!user) throw new UnauthorizedError('authentication required');
      const wanted = typeof spec === 'function' ? spec(ctx) : spec;
      await authorize(auth, user, Array.isArray(wanted) ? wanted : [wanted]);
    }
    await next();
  };
}
