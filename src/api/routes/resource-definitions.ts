import Router from '@koa/router';
import { ConflictError, NotFoundError, PIPELINE_TYPE, acceptsBuiltInPipelines, parseDefinitionInput, type ResourceDefinition } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { schemaValidators } from '../resource-runs.ts';
import { requires } from '../auth/access.ts';
import { onDefinitions } from '../auth/route-access.ts';

function present(def: ResourceDefinition) {
  return { id: def.id, name: def.name, version: def.version, description: def.description, schema: def.schema, builtIn: def.builtIn, createdAt: def.createdAt, updatedAt: def.updatedAt };
}

function parse(body: unknown, pathName?: string) {
  const input = parseDefinitionInput(body, pathName);
  const validate = schemaValidators.check(input.schema);
  return { input, validate };
}

// A definition written or deleted lets go of its old validator; the next resource of its
// type compiles the schema it has now.
function written<T extends { name: string }>(def: T): T {
  schemaValidators.forget(def.name);
  return def;
}

export function resourceDefinitionRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/resource-definitions', requires(deps.auth, onDefinitions('list')), async (ctx) => {
    ctx.body = (await deps.store.listDefinitions()).map(present);
  });

  router.post('/resource-definitions', requires(deps.auth, onDefinitions('create')), async (ctx) => {
    const def = written(await deps.store.createDefinition(parse(ctx.request.body).input));
    ctx.status = 201;
    ctx.body = present(def);
  });

  router.post('/resource-definitions/apply', requires(deps.auth, [onDefinitions('create'), onDefinitions('update')]), async (ctx) => {
    const { input, validate } = parse(ctx.request.body);
    if (input.name === PIPELINE_TYPE) {
      // Upstream drivers apply their own `pipeline` definition at start-up: a compatible one
      // is accepted and the built-in one kept (see acceptsBuiltInPipelines).
      if (!acceptsBuiltInPipelines(validate)) {
        throw new ConflictError('resource definition "pipeline" is built in: the schema applied must accept the built-in pipelines (an image and named steps with commands)');
      }
      ctx.status = 201;
      ctx.body = present((await deps.store.getDefinition(PIPELINE_TYPE))!);
      return;
    }
    const definition = written((await deps.store.applyDefinition(input)).definition);
    ctx.status = 201;
    ctx.body = present(definition);
  });

  router.get('/resource-definitions/:name', requires(deps.auth, onDefinitions('get')), async (ctx) => {
    const def = await deps.store.getDefinition(ctx.params.name!);
    if (!def) throw new NotFoundError(`resource definition "${ctx.params.name}" not found`);
    ctx.body = present(def);
  });

  router.put('/resource-definitions/:name', requires(deps.auth, onDefinitions('update')), async (ctx) => {
    ctx.body = present(written(await deps.store.replaceDefinition(parse(ctx.request.body, ctx.params.name).input)));
  });

  router.delete('/resource-definitions/:name', requires(deps.auth, onDefinitions('delete')), async (ctx) => {
    await deps.store.deleteDefinition(ctx.params.name!);
    schemaValidators.forget(ctx.params.name!);
    ctx.status = 204;
  });

  return router;
}
