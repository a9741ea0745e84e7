// Kubernetes mode: state as custom resources, each run a Job, logs followed through the
// log API into the archive in the data directory.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { KubernetesController } from '../controller/kubernetes/index.ts';
import { makeStoreInformers } from '../controller/kubernetes/informers.ts';
import { COMMAND_RUNNER, ConflictError, NotFoundError, PIPELINE_TYPE, isTerminal, type RunRecord } from '../domain/index.ts';
import { LogArchive, LogHub } from '../logs/index.ts';
import { RateLimitedKubeConfig } from '../kube/rate-limited-config.ts';
import { Metrics } from '../observability/metrics.ts';
import { EmbeddedStore, openDatabase } from '../store/embedded/index.ts';
import { KubernetesStore } from '../store/kubernetes/index.ts';
import type { Config } from '../config.ts';
import type { Engine } from './engine.ts';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

// CONVEYOR_NAMESPACE, else the pod's own namespace (from its service account), else default.
export function defaultNamespace(env: NodeJS.ProcessEnv = process.env, serviceAccountFile = SERVICE_ACCOUNT_NAMESPACE): string {
  if (env.CONVEYOR_NAMESPACE) return env.CONVEYOR_NAMESPACE;
  try {
    return readFileSync(serviceAccountFile, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

export function kubernetesEngine(config: Config, logger: Logger): Engine {
  const kc = new RateLimitedKubeConfig({ qps: config.kubeQps, burst: config.kubeBurst });
  // KUBECONFIG, then ~/.kube/config, then the in-cluster service account.
  kc.loadFromDefault();
  const namespace = config.namespace ?? defaultNamespace();
  const db = openDatabase(config.dataDir);
  const archive = new LogArchive(db);
  const local = new EmbeddedStore(db);
  // GETs are answered from these caches, never from the API server.
  const caches = makeStoreInformers(kc, namespace, logger);
  const store = new KubernetesStore({ kc, namespace, local, caches });
  const hub = new LogHub(archive, async (runid) => {
    // Asked of the API server: a follower told "not ended" by a lagging cache would wait
    // for an end that already happened.
    const obj = await store.runs.fresh(runid);
    return obj === undefined || (isTerminal(obj.status?.phase ?? 'Pending') && obj.status?.logsArchived === true);
  });
  const metrics = new Metrics({ runsByPhase: () => store.countRunsByPhase(), logFollowers: () => hub.followerCount });
  const controller = new KubernetesController({
    kc,
    namespace,
    identity: `${hostname()}-${process.pid}`,
    store,
    hub,
    archive,
    logger,
    onLogConnect: () => metrics.logStreamsOpened.inc(),
    onRunFinished: (run) => metrics.observeRunFinished(run),
    retention: { runsPerPipeline: config.retainRuns, maxAgeSeconds: config.retainSeconds, jobSeconds: config.retainJobSeconds },
  });

  const cancel = async (runid: string): Promise<RunRecord> => {
    const run = await store.getRun(runid);
    if (!run) throw new NotFoundError(`run ${runid} not found`);
    if (isTerminal(run.phase)) throw new ConflictError(`run ${runid} has already ended (${run.phase})`);
    await store.requestCancel(runid);
    // The controller stops the run; answer with its end if it comes quickly.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const now = (await store.getRun(runid))!;
      if (isTerminal(now.phase) || Date.now() > deadline) return now;
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  return {
    mode: 'kubernetes',
    store,
    hub,
    archive,
    runs: { cancel },
    metrics,
    driverFor: (type) => (type === PIPELINE_TYPE ? COMMAND_RUNNER : null),
    requiresImage: true,
    banner: `kubernetes mode: runs are Jobs in namespace ${namespace}`,
    details: { namespace, cluster: kc.getCurrentCluster()?.server, dataDir: config.dataDir, kubeQps: config.kubeQps, kubeBurst: config.kubeBurst },
    async start() {
      const informers = Object.values(caches);
      for (const informer of informers) informer.start();
      // The server answers once its caches hold what the API server has.
      await Promise.all(informers.map((informer) => informer.waitForSync(120_000)));
      controller.start();
    },
    async stop() {
      await controller.stop();
      await Promise.all(Object.values(caches).map((informer) => informer.stop()));
      hub.close();
      await local.close();
    },
  };
}
