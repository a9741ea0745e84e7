// Runs the API server over the engine of the configured mode until asked to stop.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createApp } from '../api/app.ts';
import { attachLogSockets } from '../api/websocket.ts';
import { answerClientErrors } from '../api/client-errors.ts';
import type { Config } from '../config.ts';
import type { Engine } from './engine.ts';
import { localEngine } from './local.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { guardProcess, superviseWith } from '../observability/background.ts';
import { kubernetesSecurity, localSecurity, type Security } from './security.ts';
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
  // Before anything starts: local mode off loopback without a token refuses to.
  const localGuard: Security | undefined = config.mode === 'local' ? localSecurity(config) : undefined;
  // Before anything reads or writes the data directory: a second server exits here.
  const lock = lockDataDir(config.dataDir);
  // Kubernetes mode's client library is loaded only when it is used: local mode saves
  // ~70 MB of resident memory.
  const engine =
    config.mode === 'kubernetes' ? (await import('./kubernetes.ts')).kubernetesEngine(config, logger) : localEngine(config);
  superviseWith({ logger, counter: engine.metrics.backgroundErrors });
  guardProcess();
  await engine.start();
  const security = localGuard ?? kubernetesSecurity(config, engine.auth, logger);
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
    ...security,
    drivers,
  };
  const { app } = createApp(deps);
  const server = createServer(app.callback());
  const wss = attachLogSockets(server, deps);
  answerClientErrors(server);
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
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await drivers?.stop();
      await engine.stop(config.shutdownGraceMs);
      // 1012 (service restart), not 1000: the runs go on and followers should come back.
      for (const client of wss.clients) client.close(1012, 'server restarting');
      // Responses that are ending (SSE streams the hub just closed) get a moment to finish
      // cleanly; whatever is still open after that is cut.
      const settle = setInterval(() => server.closeIdleConnections(), 20);
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      clearInterval(settle);
      server.closeAllConnections();
      lock.release();
      logger.info('stopped');
    })());
  return { server, url, engine, stop };
}
