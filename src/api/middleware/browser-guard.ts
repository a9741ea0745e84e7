// Origin and Host checks on every route (see ../auth/browser.ts), and CORS only for the
// origins an operator allowed: without them a browser never lets another page read answers.
import type { Middleware } from 'koa';
import { checkBrowserHeaders, isAllowedOrigin, type BrowserPolicy } from '../auth/browser.ts';

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE';
const ALLOWED_HEADERS = 'Authorization, Content-Type, Last-Event-ID, X-Request-Id';

export function browserGuard(policy: BrowserPolicy): Middleware {
  return async (ctx, next) => {
    const origin = ctx.get('origin') || undefined;
    checkBrowserHeaders({ host: ctx.get('host'), origin }, policy);
    if (origin !== undefined && isAllowedOrigin(origin, policy)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Vary', 'Origin');
      if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
        ctx.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
        ctx.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 204;
        return;
      }
    }
    await next();
  };
}
