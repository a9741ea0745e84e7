// Upstream's pipelines: ordered chains of drivers for one resource type. Stored and
// validated here; executing chains of external drivers comes with external drivers.
import Router from '@koa/router';
import { NotFoundError, parseBroadcastInput, parseDriverPipelineInput, type DriverPipelineInput } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';
import { onDriverPipelines } from '../auth/route-access.ts';

async function checked(deps: ApiDeps, input: DriverPipelineInput): Promise<DriverPipelineInput> {
  if (!(await deps.store.getDefinition(input.resource))) throw new NotFoundError(`resource type "${input.resource}" is not defined`);
  return input;
}

export function driverPipelineRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/pipelines', requires(deps.auth, onDriverPipelines('list')), async (ctx) => {
    ctx.body = await deps.store.listDriverPipelines();
  });

  router.post('/pipelines', requires(deps.auth, onDriverPipelines('create')), async (ctx) => {
    const input = await checked(deps, parseDriverPipelineInput(ctx.request.body));
    ctx.status = 201;
    ctx.body = await deps.store.createDriverPipeline(input);
  });

  router.get('/pipelines/:name', requires(deps.auth, onDriverPipelines('get')), async (ctx) => {
    const pipeline = await deps.store.getDriverPipeline(ctx.params.name!);
    if (!pipeline) throw new NotFoundError(`pipeline "${ctx.params.name}" not found`);
    ctx.body = pipeline;
  });

  router.put('/pipelines/:name', requires(deps.auth, onDriverPipelines('update')), async (ctx) => {
    const input = await checked(deps, parseDriverPipelineInput(ctx.request.body, ctx.params.name));
    ctx.body = await deps.store.replaceDriverPipeline(input);
  });

  router.delete('/pipelines/:name', requires(deps.auth, onDriverPipelines('delete')), async (ctx) => {
    await deps.store.deleteDriverPipeline(ctx.params.name!);
    ctx.status = 204;
  });

  router.post('/drivers/broadcast-message', requires(deps.auth, { verb: 'create', resource: 'drivermessages' }), async (ctx) => {
    const input = parseBroadcastInput(ctx.request.body);
    await deps.store.addBroadcast(input);
    ctx.status = 200;
    ctx.body = { message: 'message published' };
  });

  return router;
}
