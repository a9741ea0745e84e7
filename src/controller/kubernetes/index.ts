// Kubernetes mode's controller: informers feed two work queues (Pipelines and Runs) by key;
// reconcilers act while this server holds the leader Lease, so two servers never both
// reconcile.
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Labels, jobNameFor } from '../../kube/names.ts';
import { ConflictError, asUnavailable, type RunRecord } from '../../domain/index.ts';
import type { LogArchive, LogHub } from '../../logs/index.ts';
import type { KubernetesStore } from '../../store/kubernetes/index.ts';
import type { ResilientInformer } from '../informer.ts';
import { LeaderElector } from '../leader-election.ts';
import { WorkQueue, type ReconcileResult } from '../queue.ts';
import { EventRecorder } from './events.ts';
import { makeInformers, type Informers } from './informers.ts';
import { PipelineReconciler } from './pipeline-reconciler.ts';
import { RetentionController, type RetentionPolicy } from './retention.ts';
import { RunReconciler } from './run-reconciler.ts';

export interface KubernetesControllerOptions {
  kc: KubeConfig;
  namespace: string;
  identity: string;
  store: KubernetesStore;
  hub: LogHub;
  archive: LogArchive;
  logger: Logger;
  workers?: number;
  resyncMs?: number;
  leaseName?: string;
  onLogConnect?: () => void;
  onRunFinished?: (run: RunRecord) => void;
  // Finished runs kept (see retention.ts); absent: kept forever.
  retention?: RetentionPolicy;
  retentionIntervalMs?: number;
  // The server's own ServiceAccount (known once started): no run may use it.
  ownServiceAccount?: () => string | undefined;
  stopEscalationMs?: number;
  maxLineBytes?: number;
}

// A reconcile that failed because the API server is down or not ready is tried again soon
// and steadily, not after the per-key exponential backoff: that grows to a minute during a
// long outage, and the run would then wait that long after the API server is back.
export const OUTAGE_RETRY_MS = 2_000;
async function whileReachable(reconcile: () => Promise<ReconcileResult | void>, logger: Logger, key: string): Promise<ReconcileResult | void> {
  try {
    return await reconcile();
  } catch (err) {
    const unavailable = asUnavailable(err);
    if (!unavailable) throw err;
    logger.info({ key, cause: (err as Error).message }, 'reconcile waits for the API server; requeued');
    return { requeueAfter: Math.max(OUTAGE_RETRY_MS, Math.min(unavailable.retryAfterSeconds * 1000, 10_000)) };
  }
}

/** Resolves once `signal` aborts, at once if it already has. */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

export class KubernetesController {
  private readonly o: KubernetesControllerOptions;
  private readonly elector: LeaderElector;
  private informers?: Informers;
  private previousTerm: Promise<void> = Promise.resolve();

  constructor(options: KubernetesControllerOptions) {
    this.o = options;
    this.elector = new LeaderElector({
      kubeConfig: options.kc,
      name: options.leaseName ?? 'conveyor-controller',
      namespace: options.namespace,
      identity: options.identity,
      onStartedLeading: (signal) => this.leadAfterPreviousTerm(signal),
      onNewLeader: (identity) => options.logger.info({ leader: identity }, 'controller leader'),
      onError: (err) =>
        asUnavailable(err)
          ? options.logger.info({ cause: (err as Error).message }, 'leader election waits for the API server')
          : options.logger.warn({ err }, 'leader election'),
    });
  }

  get isLeader(): boolean {
    return this.elector.isLeader();
  }

  start(): void {
    this.elector.start();
  }

  async stop(): Promise<void> {
    await this.elector.stop();
  }

  // A term lost and won again quickly must not overlap the one before: two sets of workers
  // and log collectors in one process would reconcile twice and archive lines twice.
  private leadAfterPreviousTerm(signal: AbortSignal): Promise<void> {
    const term = this.previousTerm.then(() => (signal.aborted ? undefined : this.lead(signal)));
    this.previousTerm = term.catch(() => undefined); // handled: the elector reports the term's error; this chain only orders terms
    return term;
  }

  // Runs until `signal` aborts (leadership lost or stop): informers, queues, workers.
  private async lead(signal: AbortSignal): Promise<void> {
    const { kc, namespace, logger } = this.o;
    const informers = makeInformers(kc, namespace, logger);
    this.informers = informers;
    const onError = (err: unknown, key: string, retries: number) => {
      // A conflict is the status writer working as meant (it wrote from an object that
      // changed since); an outage of the API server passes. Neither needs a stack.
      if (err instanceof ConflictError) logger.debug({ key, retries }, 'reconcile met a newer object; requeued');
      else if (asUnavailable(err)) logger.info({ key, retries, cause: (err as Error).message }, 'reconcile waits for the API server; requeued');
      else logger.warn({ err, key, retries }, 'reconcile failed; retrying with backoff');
    };
    const runQueue = new WorkQueue({ name: 'runs', onError });
    const pipelineQueue = new WorkQueue({ name: 'pipelines', onError });
    const runReconciler = new RunReconciler({
      kc,
      namespace,
      informers,
      store: this.o.store,
      hub: this.o.hub,
      archive: this.o.archive,
      events: new EventRecorder(kc, namespace, logger),
      logger,
      requeue: (runid) => runQueue.add(runid),
      onLogConnect: this.o.onLogConnect,
      onRunFinished: this.o.onRunFinished,
      ownServiceAccount: this.o.ownServiceAccount,
      stopEscalationMs: this.o.stopEscalationMs,
      maxLineBytes: this.o.maxLineBytes,
    });
    const pipelineReconciler = new PipelineReconciler({ namespace, informers, store: this.o.store });

    const name = (obj: KubernetesObject) => obj.metadata?.name ?? '';
    const runOf = (obj: KubernetesObject) => obj.metadata?.labels?.[Labels.runId];
    const enqueueRun = (obj: KubernetesObject) => {
      runQueue.add(name(obj));
      const pipeline = obj.metadata?.labels?.[Labels.pipeline];
      if (pipeline) pipelineQueue.add(pipeline);
    };
    const enqueueOwner = (obj: KubernetesObject) => {
      const runid = runOf(obj);
      if (runid) runQueue.add(runid);
    };
    const onPod = (obj: KubernetesObject) => {
      const runid = runOf(obj);
      if (runid) runReconciler.podChanged(runid);
      enqueueOwner(obj);
    };
    const onPipeline = (obj: KubernetesObject) => pipelineQueue.add(name(obj));
    // Every change, whatever its kind, just queues keys: reconciles read current state.
    function watchAll<T extends KubernetesObject>(informer: ResilientInformer<T>, handler: (obj: T) => void): void {
      informer.on('add', handler);
      informer.on('update', (obj: T) => handler(obj));
      informer.on('delete', handler);
    }
    // A new Run's first reconcile makes its Job: ahead of status updates of runs under way,
    // so a burst of runs gets its Jobs as fast as the API server takes them.
    informers.runs.on('add', (obj: KubernetesObject) => {
      if (!informers.jobs.get(jobNameFor(name(obj)), namespace)) runQueue.addFirst(name(obj));
    });
    watchAll(informers.runs, enqueueRun);
    watchAll(informers.pipelines, onPipeline);
    watchAll(informers.jobs, enqueueOwner);
    watchAll(informers.pods, onPod);
    for (const informer of Object.values(informers)) informer.start();
    await Promise.race([Promise.all(Object.values(informers).map((i) => i.waitForSync())), untilAborted(signal)]);
    if (signal.aborted) {
      // Leadership was lost while the caches synced: reconcile nothing.
      await Promise.all(Object.values(informers).map((i) => i.stop()));
      return;
    }
    logger.info('controller caches synced; reconciling');
    const retention = this.o.retention
      ? new RetentionController({
          kc,
          namespace,
          runs: informers.runs,
          jobs: informers.jobs,
          store: this.o.store,
          archive: this.o.archive,
          policy: this.o.retention,
          logger,
          intervalMs: this.o.retentionIntervalMs,
        })
      : undefined;
    retention?.start();

    const resyncMs = this.o.resyncMs ?? 5 * 60_000;
    const stopRunResync = runQueue.resync(() => informers.runs.list(namespace).map(name), resyncMs);
    const stopPipelineResync = pipelineQueue.resync(() => informers.pipelines.list(namespace).map(name), resyncMs);
    const workers = this.o.workers ?? 16;
    const running = Promise.all([
      runQueue.run((key) => whileReachable(() => runReconciler.reconcile(key), logger, key), { workers }),
      pipelineQueue.run((key) => whileReachable(() => pipelineReconciler.reconcile(key), logger, key), { workers: 2 }),
    ]);
    await untilAborted(signal);
    await retention?.stop();
    stopRunResync();
    stopPipelineResync();
    runReconciler.shutdown();
    await Promise.all([runQueue.shutDown(), pipelineQueue.shutDown()]);
    await running;
    await Promise.all(Object.values(informers).map((i) => i.stop()));
  }
}
