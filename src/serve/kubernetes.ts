// Kubernetes mode: state as custom resources, each run a Job, logs followed through the
// log API into the archive in the data directory.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { KubernetesController } from '../controller/kubernetes/index.ts';
import { makeStoreInformers } from '../controller/kubernetes/informers.ts';
import { OrphanReleaser } from '../controller/kubernetes/log-finalizers.ts';
import { COMMAND_RUNNER, ConflictError, NotFoundError, PIPELINE_TYPE, isTerminal, type RunRecord } from '../domain/index.ts';
import { LogArchive, LogHub } from '../logs/index.ts';
import { RateLimitedKubeConfig } from '../kube/rate-limited-config.ts';
import { kubernetesReviews, ownServiceAccount } from '../kube/access-reviews.ts';
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
  const hub = new LogHub(
    archive,
    async (runid) => {
      // Asked of the API server: a follower told "not ended" by a lagging cache would wait
      // for an end that already happened.
      const obj = await store.runs.fresh(runid);
      return obj === undefined || (isTerminal(obj.status?.phase ?? 'Pending') && obj.status?.logsArchived === true);
    },
  );
  const metrics = new Metrics({ runsByPhase: () => store.countRunsByPhase(), logFollowers: () => hub.followerCount });
  // The server's own ServiceAccount: from the chart (downward API), else asked of the API
  // server at start (SelfSubjectReview). No pipeline may use it.
  let ownAccount: string | undefined = process.env.CONVEYOR_SERVICE_ACCOUNT || undefined;
  const auth = config.authEnabled ? kubernetesReviews({ kc, namespace, metricsAuth: config.metricsAuth, ownServiceAccount: ownAccount }) : undefined;
  const controller = new KubernetesController({
    ownServiceAccount: () => ownAccount,
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
    stopEscalationMs: config.stopEscalationMs,
    maxLineBytes: config.maxLineBytes,
  });

  // Lets run pods go that no server will archive (deleted with their runs, or left behind by
  // an uninstalled installation), leader or not.
  const orphans = new OrphanReleaser({
    kc,
    namespace,
    logger,
    installation: config.installation,
    runAlive: async (runid) => {
      // From the API server, not the cache: this decides whether a pod's log may be dropped.
      const run = await store.runs.fresh(runid);
      return run !== undefined && run.metadata.deletionTimestamp == null;
    },
  });

  const cancel = async (runid: string): Promise<RunRecord> => {
    const run = await store.getRun(runid);
    if (!run) throw new NotFoundError(`run ${runid} not found`);
    if (isTerminal(run.phase)) throw new ConflictError(`run ${runid} has already ended (${run.phase})`);
    let now = await store.requestCancel(runid);
    // The controller stops the run; answer with its end if it comes quickly. The cancel is
    // stored now: an outage from here on must not turn its 2xx into an error.
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (isTerminal(now.phase) || Date.now() > deadline) return now;
      await new Promise((r) => setTimeout(r, 200));
      const read = await store.getRun(runid).catch(() => undefined); // handled: an outage while waiting keeps the stored cancel's answer
      if (read) now = read;
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
    auth,
    async start() {
      const informers = Object.values(caches);
      for (const informer of informers) informer.start();
      // The server answers once its caches hold what the API server has.
      await Promise.all(informers.map((informer) => informer.waitForSync(120_000)));
      if (ownAccount === undefined) {
        ownAccount = await ownServiceAccount(kc, namespace).catch((err: unknown) => {
          logger.warn({ err }, 'could not tell which ServiceAccount this server runs as (SelfSubjectReview)');
          return undefined;
        });
        if (auth?.serviceAccounts) auth.serviceAccounts.own = ownAccount;
      }
      controller.start();
      orphans.start();
    },
    async stop() {
      await controller.stop();
      await Promise.all(Object.values(caches).map((informer) => informer.stop()));
      await orphans.stop();
      hub.close();
      await local.close();
    },
  };
}
