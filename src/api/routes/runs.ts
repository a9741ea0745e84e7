import Router from '@koa/router';
import { BadRequestError, NotFoundError, toPublicRun } from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';
import { onRuns } from '../auth/route-access.ts';
import { watchRuns } from '../run-watch.ts';
import { phaseParam } from '../run-phase-param.ts';

const MAX_PAGE = 500;

function limitParam(raw: unknown): number {
  if (raw === undefined) return 50;
  const value = String(raw);
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_PAGE) throw new BadRequestError(`limit must be a whole number from 1 to ${MAX_PAGE} (got "${value}")`);
  return n;
}

function continueParam(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  const value = String(raw);
  // The token's meaning is the store's (each store checks its own); here only its alphabet.
  if (!/^[A-Za-z0-9_=-]{1,512}$/.test(value)) throw new BadRequestError(`continue "${value}" is not a token this server issued`);
  return value;
}

export function runRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/runs', requires(deps.auth, onRuns('list')), async (ctx) => {
    const { resource, name } = ctx.query;
    if (ctx.query.watch === 'true') {
      return watchRuns(deps, ctx, {
        resource: typeof resource === 'string' && resource ? resource : undefined,
        name: typeof name === 'string' && name ? name : undefined,
      });
    }
    const page = await deps.store.listRuns({
      resource: typeof resource === 'string' && resource ? resource : undefined,
      name: typeof name === 'string' && name ? name : undefined,
      phase: phaseParam(ctx.query.phase),
      limit: limitParam(ctx.query.limit),
      continue: continueParam(ctx.query.continue),
    });
    ctx.body = page;
  });

  router.get('/runs/:runid', requires(deps.auth, onRuns('get')), async (ctx) => {
    const run = await deps.store.getRun(ctx.params.runid!);
    if (!run) throw new NotFoundError(`run ${ctx.params.runid} not found`);
    ctx.body = toPublicRun(run);
  });

  router.post('/runs/:runid/cancel', requires(deps.auth, onRuns('update')), async (ctx) => {
    const run = await deps.runs.cancel(ctx.params.runid!);
    ctx.status = 202;
    ctx.body = { message: 'Run cancelled', runid: run.runid, phase: run.phase };
  });

  return router;
}
