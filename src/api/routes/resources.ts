import Router from '@koa/router';
import { BadRequestError, NotFoundError, assertName, parseResourceInput, parseResourceReplacement, presentResource } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';
import { assertMayUseServiceAccount, requesterOf } from '../auth/service-accounts.ts';
import { onPostedResource, onResource } from '../auth/route-access.ts';
import { planRun, validateResource } from '../resource-runs.ts';

function versionParam(raw: string): number {
  if (!/^[1-9]\d{0,8}$/.test(raw)) throw new BadRequestError(`version "${raw}" must be a positive whole number`);
  return Number(raw);
}

export function resourceRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.post('/resources', requires(deps.auth, onPostedResource), async (ctx) => {
    const input = parseResourceInput(ctx.request.body);
    const chain = await validateResource(deps, input);
    await assertMayUseServiceAccount(deps.auth, ctx.state.user, input);
    const run = planRun(deps, input, 1, requesterOf(ctx), 'create', chain);
    await deps.store.createResource(input, run);
    ctx.status = 201;
    ctx.body = { message: 'Resource created successfully', name: input.name, runid: run.runid, version: '1' };
  });

  router.get('/resources/:type', requires(deps.auth, onResource('list')), async (ctx) => {
    const type = ctx.params.type!;
    assertName('resource', type);
    if (!(await deps.store.getDefinition(type))) throw new NotFoundError(`resource type "${type}" is not defined`);
    ctx.body = (await deps.store.listResources(type)).map(presentResource);
  });

  router.get('/resources/:type/:name', requires(deps.auth, onResource('get')), async (ctx) => {
    const { type, name } = ctx.params as { type: string; name: string };
    const resource = await deps.store.getResource(type, name);
    if (!resource) throw new NotFoundError(`resource ${type}/${name} not found`);
    ctx.body = presentResource(resource);
  });

  router.get('/resources/:type/:name/:version', requires(deps.auth, onResource('get')), async (ctx) => {
    const { type, name, version } = ctx.params as { type: string; name: string; version: string };
    const n = versionParam(version);
    const resource = await deps.store.getResource(type, name, n);
    if (!resource) throw new NotFoundError(`resource ${type}/${name} version ${n} not found`);
    ctx.body = presentResource(resource);
  });

  router.put('/resources/:type/:name', requires(deps.auth, onResource('update')), async (ctx) => {
    const { type, name } = ctx.params as { type: string; name: string };
    const input = parseResourceReplacement(ctx.request.body, type, name);
    if (!(await deps.store.getResource(type, name))) throw new NotFoundError(`resource ${type}/${name} not found`);
    const chain = await validateResource(deps, input);
    await assertMayUseServiceAccount(deps.auth, ctx.state.user, input);
    const { resource, run } = await deps.store.replaceResource(input, (version) => planRun(deps, input, version, requesterOf(ctx), 'update', chain));
    ctx.body = { message: 'Resource updated successfully', name, runid: run.runid, version: String(resource.metadata.version) };
  });

  router.delete('/resources/:type/:name', requires(deps.auth, onResource('delete')), async (ctx) => {
    const { type, name } = ctx.params as { type: string; name: string };
    // With external drivers on the bus, deleting a resource they serve is an event too: it
    // starts a run (the drivers clean up), whose id the answer carries.
    const resource = deps.drivers && deps.driverFor(type) === null ? await deps.store.getResource(type, name) : undefined;
    if (!resource) {
      await deps.store.deleteResource(type, name);
      ctx.status = 204;
      return;
    }
    const input = { name, resource: type, spec: resource.spec, ...(resource.pipeline ? { pipeline: resource.pipeline } : {}) };
    const chain = input.pipeline ? await deps.store.getDriverPipeline(input.pipeline) : undefined;
    const run = planRun(deps, input, resource.metadata.version, requesterOf(ctx), 'delete', chain);
    await deps.store.deleteResource(type, name, run);
    ctx.body = { message: 'Resource deleted successfully', name, runid: run.runid };
  });

  return router;
}
