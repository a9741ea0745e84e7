// Runs the API server over the engine of the configured mode until asked to stop.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createApp } from '../api/app.ts';
import { attachLogSockets } from '../api/websocket.ts';
import type { Config } from '../config.ts';
import type { Engine } from './engine.ts';
import { localEngine } from './local.ts';
import { driverBus } from './drivers.ts';

export interface RunningServer {
  server: Server;
  url: string;
  engine: Engine;
  stop(): Promise<void>;
}

// Logs go to stdout through Node's own stream, not pino's default sonic-boom: when the
// reader of stdout is gone (`npm start | head`, a dead log shipper), sonic-boom's exit
// flush retries EPIPE forever and SIGTERM never ends the process. A log nobody reads is
// dropped instead.
export function createLogger(level: string): Logger {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  return pino({ level, base: { service: 'conveyor' } }, process.stdout);
}

export async function serve(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  // Kubernetes mode's client library is loaded only when it is used: local mode saves
  // ~70 MB of resident memory.
  const engine =
    config.mode === 'kubernetes' ? (await import('./kubernetes.ts')).kubernetesEngine(config, logger) : localEngine(config);
  await engine.start();
  const drivers = driverBus(config, engine, logger);
  try {
    await drivers?.start();
  } catch (err) {
    await engine.stop(0);
    throw err;
  }
  const deps = {
    store: engine.store,
    hub: engine.hub,
    archive: engine.archive,
    runs: drivers ? { cancel: (runid: string) => drivers.cancel(runid, engine.runs) } : engine.runs,
    metrics: engine.metrics,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    heartbeatMs: config.heartbeatMs,
    driverFor: engine.driverFor,
    requiresImage: engine.requiresImage,
    drivers,
  };
  const { app } = createApp(deps);
  const server = createServer(app.callback());
  const wss = attachLogSockets(server, deps);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info(
    { mode: engine.mode, url, port, ...engine.details, natsUrl: config.natsUrl ?? null },
    `Conveyor is listening on ${url} in ${engine.banner}${drivers ? `; external drivers over NATS at ${config.natsUrl}` : ''}`,
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info({ graceMs: config.shutdownGraceMs }, 'shutting down: no new runs start, running runs get the grace period');
      server.close();
      await drivers?.stop();
      await engine.stop(config.shutdownGraceMs);
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      server.closeAllConnections();
      logger.info('stopped');
    })());
  return { server, url, engine, stop };
}
