// External drivers: which are connected (from their JetStream consumers), and Loki's push
// route, where older-generation drivers (0.4, conveyor-py) send a copy of each log line.
import Router from '@koa/router';
import { NotFoundError } from '../../domain/index.ts';
import type { ApiDeps, DriverBus } from '../context.ts';
import { requires } from '../auth/access.ts';
import { onRunLogs } from '../auth/route-access.ts';

function bus(deps: ApiDeps): DriverBus {
  if (!deps.drivers) throw new NotFoundError('this server has no driver bus: start it with --nats-url (CONVEYOR_NATS_URL) to serve external drivers');
  return deps.drivers;
}

export function driverRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/drivers', requires(deps.auth, { verb: 'list', resource: 'drivers' }), async (ctx) => {
    ctx.body = deps.drivers ? await deps.drivers.listDrivers() : [];
  });

  router.post('/loki/api/v1/push', requires(deps.auth, onRunLogs('create')), async (ctx) => {
    await bus(deps).acceptLokiPush(ctx.request.body);
    // What Loki answers.
    ctx.status = 204;
  });

  return router;
}
