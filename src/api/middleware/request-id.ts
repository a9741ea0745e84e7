// Request ids: the caller's own (if it sent a sane one) is echoed on every answer, so a
// client can match its logs with ours; an error answer always carries one, and the same id
// is on the server's log line for it (see errors.ts), so that a user's report and the log
// line can be matched. A successful answer without a caller's id needs none: generating and
// sending a uuid on every request was a cost on the hot path that nothing read.
import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';

const SANE = /^[\w.:-]{1,128}$/;

// Synchronous: no promise of its own on the way down or up.
export function requestId(): Middleware {
  return (ctx, next) => {
    const given = ctx.req.headers['x-request-id'];
    if (typeof given === 'string' && given !== '' && SANE.test(given)) {
      ctx.state.requestId = given;
      ctx.set('X-Request-Id', given);
    }
    return next();
  };
}

// The id of this request, made (and sent) the first time it is needed. crypto.randomUUID
// draws from a cached entropy pool: a v4 id without a system call.
export function ensureRequestId(ctx: Context): string {
  let id = ctx.state.requestId as string | undefined;
  if (id === undefined) {
    id = randomUUID();
    ctx.state.requestId = id;
    ctx.set('X-Request-Id', id);
  }
  return id;
}
