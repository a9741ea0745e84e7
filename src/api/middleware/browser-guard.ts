// Origin and Host checks on every route (see ../auth/browser.ts), and CORS only for the
// origins an operator allowed: without them a browser never lets another page read answers.
import type { Middleware } from 'koa';
import { checkBrowserHeaders, isAllowedOrigin, type BrowserPolicy } from '../auth/browser.ts';

const ALLOWED_METHODS = 'GET, POST, PUT, DELETE';
const ALLOWED_HEADERS = 'Authorization, Content-Type, Last-Event-ID, X-Request-Id';
// Host values already accepted: a client sends the same one on every request, and the policy
// never changes, so the check (a few regular expressions) runs once per value. Bounded, so
// that a client sending random Hosts cannot grow it; past the bound every request is checked.
const KNOWN_HOSTS_MAX = 64;

// Synchronous: a request without Origin (every API client but a browser) costs a Set lookup.
export function browserGuard(policy: BrowserPolicy): Middleware {
  const acceptedHosts = new Set<string>();
  return (ctx, next) => {
    const headers = ctx.req.headers;
    const origin = headers.origin;
    const host = headers.host ?? '';
    if (origin === undefined || origin === '') {
      if (!acceptedHosts.has(host)) {
        checkBrowserHeaders({ host }, policy);
        if (acceptedHosts.size < KNOWN_HOSTS_MAX) acceptedHosts.add(host);
      }
      return next();
    }
    checkBrowserHeaders({ host, origin }, policy);
    if (isAllowedOrigin(origin, policy)) {
      ctx.set('Access-Control-Allow-Origin', origin);
      ctx.set('Vary', 'Origin');
      if (ctx.method === 'OPTIONS' && ctx.get('access-control-request-method')) {
        ctx.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
        ctx.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 204;
        return Promise.resolve();
      }
    }
    return next();
  };
}
