// A request id on every response (the caller's own, if it sent a sane one), so a user's
// report and the server's log line can be matched. crypto.randomUUID draws from a cached
// entropy pool: a v4 id without a system call per request.
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';

const SANE = /^[\w.:-]{1,128}$/;

export function requestId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const id = given && SANE.test(given) ? given : randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
