// Local mode: the embedded store, and steps as child processes on this machine.
import { join } from 'node:path';
import { LocalScheduler } from '../controller/index.ts';
import { COMMAND_RUNNER, PIPELINE_TYPE, isTerminal } from '../domain/index.ts';
import { LocalCommandRunner, openContainment } from '../drivers/command-runner/local/index.ts';
import { LogArchive, LogHub } from '../logs/index.ts';
import { Metrics } from '../observability/metrics.ts';
import { EmbeddedStore, openDatabase } from '../store/embedded/index.ts';
import type { Config } from '../config.ts';
import type { Engine } from './engine.ts';

export function localEngine(config: Config): Engine {
  const db = openDatabase(config.dataDir);
  const store = new EmbeddedStore(db);
  const archive = new LogArchive(db);
  const hub = new LogHub(
    archive,
    async (runid) => {
      const run = await store.getRun(runid);
      return run === undefined || isTerminal(run.phase);
    },
  );
  const metrics = new Metrics({ runsByPhase: () => store.countRunsByPhase(), logFollowers: () => hub.followerCount });
  const containment = openContainment({ dataDir: config.dataDir, freezerRoot: config.freezerRoot });
  const runner = new LocalCommandRunner({
    store,
    hub,
    workspaceRoot: join(config.dataDir, 'workspaces'),
    containment,
    maxLineBytes: config.maxLineBytes,
  });
  const scheduler = new LocalScheduler({
    store,
    hub,
    runner,
    concurrency: config.concurrency,
    onRunFinished: (run) => metrics.observeRunFinished(run),
  });
  return {
    mode: 'local',
    store,
    hub,
    archive,
    runs: scheduler,
    metrics,
    driverFor: (type) => (type === PIPELINE_TYPE ? COMMAND_RUNNER : null),
    requiresImage: false,
    banner: 'local mode: steps run as local processes and step images are not used',
    details: { dataDir: config.dataDir, concurrency: config.concurrency, stepContainment: containment.kind },
    start: () => scheduler.start(),
    async stop(graceMs) {
      await scheduler.drain(graceMs);
      await containment.close();
      hub.close();
      await store.close();
    },
  };
}
