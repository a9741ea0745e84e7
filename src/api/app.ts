// The Koa application: a small stack of one-concern middleware, then one router per
// resource family. Errors are turned into JSON once, at the top.
import Koa from 'koa';
import Router from '@koa/router';
import type { ApiDeps } from './context.ts';
import { errorHandler } from './middleware/errors.ts';
import { requestId } from './middleware/request-id.ts';
import { requestMetrics } from './middleware/metrics.ts';
import { jsonBody } from './middleware/body.ts';
import { browserGuard } from './middleware/browser-guard.ts';
import { jsonOnly } from './middleware/json-only.ts';
import { authenticate } from './middleware/authenticate.ts';
import { openApiDocument } from './openapi.ts';
import { resourceRoutes } from './routes/resources.ts';
import { resourceDefinitionRoutes } from './routes/resource-definitions.ts';
import { driverPipelineRoutes } from './routes/driver-pipelines.ts';
import { runRoutes } from './routes/runs.ts';
import { logRoutes } from './routes/logs.ts';
import { healthRoutes } from './routes/health.ts';
import { driverRoutes } from './routes/drivers.ts';
import { uiPages } from './ui-pages.ts';

export function buildRouter(deps: ApiDeps): Router {
  const router = new Router();
  for (const child of [
    resourceRoutes(deps),
    resourceDefinitionRoutes(deps),
    driverPipelineRoutes(deps),
    runRoutes(deps),
    logRoutes(deps),
    healthRoutes(deps),
    driverRoutes(deps),
  ]) {
    // The child's routes are copied into this router; its allowedMethods would be one more
    // middleware on every request, and the top-level one below already answers 405/501.
    router.use(child.routes());
  }
  router.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument;
  });
  return router;
}

export function createApp(deps: ApiDeps): { app: Koa; router: Router } {
  const app = new Koa({ proxy: false });
  const router = buildRouter(deps);
  app.use(errorHandler(deps.logger, deps.maxBodyBytes));
  app.use(requestId());
  app.use(requestMetrics(deps.metrics));
  app.use(browserGuard(deps.browser ?? { checkHost: false, allowedHosts: [], allowedOrigins: [] }));
  // The page's static files carry no data: they load before a login, so that the page can
  // ask for the token every API call then needs.
  app.use(uiPages());
  app.use(authenticate(deps.auth, deps.defaultUser));
  // An unknown route is a 404 whatever its body: only bodies a route will read are parsed.
  const parseBody = jsonBody(deps.maxBodyBytes);
  const requireJson = jsonOnly();
  app.use((ctx, next) => (router.match(ctx.path, ctx.method).route ? requireJson(ctx, () => parseBody(ctx, next)) : next()));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, router };
}
