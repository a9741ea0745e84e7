import Router from '@koa/router';
import { NotFoundError, parseDefinitionInput, type ResourceDefinition } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { schemaValidators } from '../resource-runs.ts';

function present(def: ResourceDefinition) {
  return { id: def.id, name: def.name, version: def.version, description: def.description, schema: def.schema, builtIn: def.builtIn, createdAt: def.createdAt, updatedAt: def.updatedAt };
}

function parse(body: unknown, pathName?: string) {
  const input = parseDefinitionInput(body, pathName);
  schemaValidators.check(input.schema);
  return input;
}

// A definition written or deleted lets go of its old validator; the next resource of its
// type compiles the schema it has now.
function written<T extends { name: string }>(def: T): T {
  schemaValidators.forget(def.name);
  return def;
}

export function resourceDefinitionRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/resource-definitions', async (ctx) => {
    ctx.body = (await deps.store.listDefinitions()).map(present);
  });

  router.post('/resource-definitions', async (ctx) => {
    const def = written(await deps.store.createDefinition(parse(ctx.request.body)));
    ctx.status = 201;
    ctx.body = present(def);
  });

  router.post('/resource-definitions/apply', async (ctx) => {
    const definition = written((await deps.store.applyDefinition(parse(ctx.request.body))).definition);
    ctx.status = 201;
    ctx.body = present(definition);
  });

  router.get('/resource-definitions/:name', async (ctx) => {
    const def = await deps.store.getDefinition(ctx.params.name!);
    if (!def) throw new NotFoundError(`resource definition "${ctx.params.name}" not found`);
    ctx.body = present(def);
  });

  router.put('/resource-definitions/:name', async (ctx) => {
    ctx.body = present(written(await deps.store.replaceDefinition(parse(ctx.request.body, ctx.params.name))));
  });

  router.delete('/resource-definitions/:name', async (ctx) => {
    await deps.store.deleteDefinition(ctx.params.name!);
    schemaValidators.forget(ctx.params.name!);
    ctx.status = 204;
  });

  return router;
}
