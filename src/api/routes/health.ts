import Router from '@koa/router';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';

export function healthRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'healthy', time: Math.floor(Date.now() / 1000) };
  });
  router.get('/ping', (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = 'pong';
  });
  router.get('/metrics', requires(deps.auth, { verb: 'get', path: '/metrics' }), async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  return router;
}
