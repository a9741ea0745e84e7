// A request id on every response (the caller's own, if it sent a sane one), so a user's
// report and the server's log line can be matched.
import type { Middleware } from 'koa';
import { v4 as uuidv4 } from 'uuid';

const SANE = /^[\w.:-]{1,128}$/;

export function requestId(): Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const id = SANE.test(given) ? given : uuidv4();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
    await next();
  };
}
