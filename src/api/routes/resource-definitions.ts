import Router from '@koa/router';
import { NotFoundError, compileUserSchema, parseDefinitionInput, type ResourceDefinition } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';
import { onDefinitions } from '../auth/route-access.ts';

function present(def: ResourceDefinition) {
  return { id: def.id, name: def.name, version: def.version, description: def.description, schema: def.schema, builtIn: def.builtIn, createdAt: def.createdAt, updatedAt: def.updatedAt };
}

function parse(body: unknown, pathName?: string) {
  const input = parseDefinitionInput(body, pathName);
  compileUserSchema(input.schema);
  return input;
}

export function resourceDefinitionRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/resource-definitions', requires(deps.auth, onDefinitions('list')), async (ctx) => {
    ctx.body = (await deps.store.listDefinitions()).map(present);
  });

  router.post('/resource-definitions', requires(deps.auth, onDefinitions('create')), async (ctx) => {
    const def = await deps.store.createDefinition(parse(ctx.request.body));
    ctx.status = 201;
    ctx.body = present(def);
  });

  router.post('/resource-definitions/apply', requires(deps.auth, [onDefinitions('create'), onDefinitions('update')]), async (ctx) => {
    const { definition } = await deps.store.applyDefinition(parse(ctx.request.body));
    ctx.status = 201;
    ctx.body = present(definition);
  });

  router.get('/resource-definitions/:name', requires(deps.auth, onDefinitions('get')), async (ctx) => {
    const def = await deps.store.getDefinition(ctx.params.name!);
    if (!def) throw new NotFoundError(`resource definition "${ctx.params.name}" not found`);
    ctx.body = present(def);
  });

  router.put('/resource-definitions/:name', requires(deps.auth, onDefinitions('update')), async (ctx) => {
    ctx.body = present(await deps.store.replaceDefinition(parse(ctx.request.body, ctx.params.name)));
  });

  router.delete('/resource-definitions/:name', requires(deps.auth, onDefinitions('delete')), async (ctx) => {
    await deps.store.deleteDefinition(ctx.params.name!);
    ctx.status = 204;
  });

  return router;
}
