// The Koa application: a small stack of one-concern middleware, then one router per
// resource family. Errors are turned into JSON once, at the top.
import Koa from 'koa';
import Router from '@koa/router';
import type { ApiDeps } from './context.ts';
import { errorHandler } from './middleware/errors.ts';
import { requestId } from './middleware/request-id.ts';
import { requestMetrics } from './middleware/metrics.ts';
import { jsonBody } from './middleware/body.ts';
import { openApiDocument } from './openapi.ts';
import { resourceRoutes } from './routes/resources.ts';
import { resourceDefinitionRoutes } from './routes/resource-definitions.ts';
import { driverPipelineRoutes } from './routes/driver-pipelines.ts';
import { runRoutes } from './routes/runs.ts';
import { logRoutes } from './routes/logs.ts';
import { healthRoutes } from './routes/health.ts';
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
  ]) {
    router.use(child.routes(), child.allowedMethods());
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
  app.use(uiPages());
  // An unknown route is a 404 whatever its body: only bodies a route will read are parsed.
  const parseBody = jsonBody(deps.maxBodyBytes);
  app.use((ctx, next) => (router.match(ctx.path, ctx.method).route ? parseBody(ctx, next) : next()));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return { app, router };
}
