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
  // Bodies are checked and parsed here, inside the router, so only for a request that
  // matched a route (an unknown route is a 404 whatever its body: only bodies a route will
  // read are parsed), and the route is matched once per request, by the router itself.
  // Added first, so it runs before any route's own middleware (authorization reads the body).
  const requireJson = jsonOnly();
  const parseBody = jsonBody(deps.maxBodyBytes);
  router.use((ctx, next) => requireJson(ctx, () => parseBody(ctx, next)));
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
  // Every request passes each of these; all but the first two are synchronous on the API's
  // hot path (no promise of their own), which the API benchmark (bench/README.md, 4) measures.
  // Metrics first: it records the status the error handler answers with, and its time.
  app.use(requestMetrics(deps.metrics));
  app.use(errorHandler(deps.logger, deps.maxBodyBytes));
  app.use(requestId());
  app.use(browserGuard(deps.browser ?? { checkHost: false, allowedHosts: [], allowedOrigins: [] }));
  // The page's static files carry no data: they load before a login, so that the page can
  // ask for the token every API call then needs.
  app.use(uiPages());
  app.use(authenticate(deps.auth, deps.defaultUser));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, router };
}
