// Wires local mode together and runs it until asked to stop.
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createApp } from './api/app.ts';
import { attachLogSockets } from './api/websocket.ts';
import type { Config } from './config.ts';
import { LocalScheduler } from './controller/index.ts';
import { COMMAND_RUNNER, PIPELINE_TYPE, isTerminal } from './domain/index.ts';
import { LocalCommandRunner } from './drivers/command-runner/local/index.ts';
import { LogArchive, LogHub } from './logs/index.ts';
import { Metrics } from './observability/metrics.ts';
import { EmbeddedStore, openDatabase } from './store/embedded/index.ts';

export interface RunningServer {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'conveyor' } });
}

export async function serveLocal(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const db = openDatabase(config.dataDir);
  const store = new EmbeddedStore(db);
  const archive = new LogArchive(db);
  const hub = new LogHub(archive, async (runid) => {
    const run = await store.getRun(runid);
    return run === undefined || isTerminal(run.phase);
  });
  const metrics = new Metrics({ runsByPhase: () => store.countRunsByPhase(), logFollowers: () => hub.followerCount });
  const runner = new LocalCommandRunner({ store, hub, workspaceRoot: join(config.dataDir, 'workspaces') });
  const scheduler = new LocalScheduler({
    store,
    hub,
    runner,
    concurrency: config.concurrency,
    onRunFinished: (run) => metrics.observeRunFinished(run),
  });
  await scheduler.start();

  const deps = {
    store,
    hub,
    archive,
    runs: scheduler,
    metrics,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    heartbeatMs: config.heartbeatMs,
    driverFor: (type: string) => (type === PIPELINE_TYPE ? COMMAND_RUNNER : null),
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
    { mode: 'local', url, port, dataDir: config.dataDir, concurrency: config.concurrency },
    `Conveyor is listening on ${url} in local mode: steps run as local processes and step images are not used`,
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info({ graceMs: config.shutdownGraceMs }, 'shutting down: no new runs start, running runs get the grace period');
      server.close();
      await scheduler.drain(config.shutdownGraceMs);
      hub.close();
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      server.closeAllConnections();
      await store.close();
      logger.info('stopped');
    })());
  return { server, url, stop };
}
