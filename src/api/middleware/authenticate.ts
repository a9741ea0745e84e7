// One authentication check at the top of the app: every path but the public ones (probes)
// needs a bearer token the configured authenticator accepts. The user lands in
// ctx.state.user for the routes' own authorization and for attribution of runs.
import type { Middleware } from 'koa';
import { authenticateToken, isPublicPath } from '../auth/access.ts';
import { bearerFromHeader } from '../auth/credentials.ts';
import { UnauthorizedError, type RequestAuth, type User } from '../auth/types.ts';

export function authenticate(auth: RequestAuth | undefined, defaultUser: User | undefined): Middleware {
  // Without authentication (local mode on loopback, no token) every request is the default
  // user: a synchronous pass, no promise of its own.
  if (!auth) {
    return (ctx, next) => {
      ctx.state.user = defaultUser;
      return next();
    };
  }
  return async (ctx, next) => {
    if (isPublicPath(auth, ctx.path)) return next();
    try {
      ctx.state.user = await authenticateToken(auth, bearerFromHeader(ctx.get('authorization') || undefined));
    } catch (err) {
      if (err instanceof UnauthorizedError) ctx.set(err.headers);
      throw err;
    }
    await next();
  };
}
