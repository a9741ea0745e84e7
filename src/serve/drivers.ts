// External drivers over NATS, in either mode, when a NATS URL is configured.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { NatsDriverBus } from '../drivers/nats/index.ts';
import type { Engine } from './engine.ts';

export function driverBus(config: Config, engine: Engine, logger: Logger): NatsDriverBus | undefined {
  if (!config.natsUrl) return undefined;
  return new NatsDriverBus({
    url: config.natsUrl,
    auth: { user: config.natsUser, pass: config.natsPassword, token: config.natsToken },
    store: engine.store,
    hub: engine.hub,
    logger: logger.child({ component: 'drivers' }),
    noDriverTimeoutMs: config.noDriverTimeoutMs,
  });
}
