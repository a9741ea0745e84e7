// Retention in Kubernetes mode, as Tekton's pruner and Argo's ttlStrategy/podGC do it, but
// built in: a finished Run whose log is archived no longer needs its Job and pods (the
// archive serves its log), and finished Runs beyond a count per pipeline or older than an
// age are deleted with their archived log. Runs whose log is not archived yet are never
// touched, so retention can lose no line.
//
// Level-based: every pass plans from the informer caches alone (planRetention, pure) and
// acts on what it finds, so a pass cut short or run twice converges.
import { BatchV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { jobNameFor } from '../../kube/names.ts';
import { NotFoundError, isTerminal, type RunPhase } from '../../domain/index.ts';
import type { LogArchive } from '../../logs/index.ts';
import type { KubernetesStore } from '../../store/kubernetes/index.ts';
import type { RunObject } from '../../store/kubernetes/mapping.ts';
import type { ResilientInformer } from '../informer.ts';

export interface RetentionPolicy {
  // Finished runs kept per pipeline (resource type and name), newest first; 0: no limit.
  runsPerPipeline: number;
  // Seconds a finished run is kept after it finished; 0: no limit.
  maxAgeSeconds: number;
  // Seconds after a run finished (and its log is archived) that its Job and pods go: time
  // to look at them with kubectl; the archive serves the log either way.
  jobSeconds: number;
}

export interface RetainedRun {
  runid: string;
  // The pipeline (resource type/name) the run belongs to.
  group: string;
  phase: RunPhase;
  finishedAt: string | null;
  logsArchived: boolean;
  hasJob: boolean;
}

export interface RetentionPlan {
  deleteJobs: string[];
  deleteRuns: string[];
}

export function planRetention(runs: readonly RetainedRun[], nowMs: number, policy: RetentionPolicy): RetentionPlan {
  const done = runs.filter((r) => isTerminal(r.phase) && r.finishedAt !== null && r.logsArchived);
  const deleteRuns = new Set<string>();
  const groups = new Map<string, RetainedRun[]>();
  for (const run of done) {
    const list = groups.get(run.group) ?? [];
    list.push(run);
    groups.set(run.group, list);
    if (policy.maxAgeSeconds > 0 && nowMs - Date.parse(run.finishedAt!) > policy.maxAgeSeconds * 1000) deleteRuns.add(run.runid);
  }
  if (policy.runsPerPipeline > 0) {
    for (const list of groups.values()) {
      list.sort((a, b) => (a.finishedAt! < b.finishedAt! ? 1 : a.finishedAt! > b.finishedAt! ? -1 : a.runid < b.runid ? 1 : -1));
      for (const run of list.slice(policy.runsPerPipeline)) deleteRuns.add(run.runid);
    }
  }
  // A deleted Run takes its Job with it (owner reference); the others lose only their Job.
  const deleteJobs = done
    .filter((r) => r.hasJob && !deleteRuns.has(r.runid) && nowMs - Date.parse(r.finishedAt!) >= policy.jobSeconds * 1000)
    .map((r) => r.runid);
  return { deleteJobs, deleteRuns: [...deleteRuns] };
}

export interface RetentionOptions {
  kc: KubeConfig;
  namespace: string;
  runs: ResilientInformer<RunObject>;
  jobs: ResilientInformer<V1Job>;
  store: KubernetesStore;
  archive: LogArchive;
  policy: RetentionPolicy;
  logger: Logger;
  intervalMs?: number;
  // Deletions per pass, so that a first pass over a long history does not flood the API server.
  maxDeletesPerPass?: number;
  onPruned?: (what: 'job' | 'run', runid: string) => void;
}

export class RetentionController {
  private readonly o: RetentionOptions;
  private readonly batch: BatchV1Api;
  private timer?: NodeJS.Timeout;
  private dueAt = 0;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(options: RetentionOptions) {
    this.o = options;
    this.batch = options.kc.makeApiClient(BatchV1Api);
  }

  start(): void {
    // A Run gone (pruned here, deleted by a user or by its namespace's owner) takes its
    // archived log with it.
    this.unsubscribe.push(
      this.o.runs.on('delete', (obj) => {
        const runid = obj.metadata?.name;
        if (runid) this.o.archive.delete(runid);
      }),
    );
    // A run that ends (and is archived) is a reason for a pass soon, not at the next tick.
    this.unsubscribe.push(this.o.runs.on('update', (obj) => obj.status?.logsArchived && this.soon()));
    this.schedule(1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, ms);
    this.timer.unref?.();
  }

  // Brings the next pass forward to within a second; never pushes it back, so a steady
  // stream of updates cannot postpone it forever.
  private soon(): void {
    if (this.running) this.again = true;
    else if (!this.timer || this.dueAt > Date.now() + 1000) this.schedule(1000);
  }

  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .then(() => undefined)
      .catch((err: unknown) => this.o.logger.warn({ err }, 'retention pass failed; retrying at the next one'))
      .finally(() => {
        this.running = undefined;
        // At most one pass a second, however busy the namespace.
        if (this.again) {
          this.again = false;
          this.schedule(1000);
        } else this.schedule(this.o.intervalMs ?? 30_000);
      });
  }

  private observed(): RetainedRun[] {
    const { runs, jobs, namespace } = this.o;
    return runs.list(namespace).map((obj) => ({
      runid: obj.metadata.name,
      group: `${obj.spec.resource}/${obj.spec.name}`,
      phase: obj.status?.phase ?? 'Pending',
      finishedAt: obj.status?.finishedAt ?? null,
      logsArchived: obj.status?.logsArchived === true,
      hasJob: jobs.get(jobNameFor(obj.metadata.name), namespace) !== undefined,
    }));
  }

  async pass(): Promise<RetentionPlan> {
    const plan = planRetention(this.observed(), Date.now(), this.o.policy);
    let budget = this.o.maxDeletesPerPass ?? 200;
    for (const runid of plan.deleteRuns) {
      if (this.stopped || budget-- <= 0) break;
      await this.o.store.runs.delete(runid).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      this.o.archive.delete(runid);
      this.o.onPruned?.('run', runid);
    }
    for (const runid of plan.deleteJobs) {
      if (this.stopped || budget-- <= 0) break;
      await this.batch.deleteNamespacedJob({ name: jobNameFor(runid), namespace: this.o.namespace, propagationPolicy: 'Background' }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      this.o.onPruned?.('job', runid);
    }
    if (budget < 0) this.again = true;
    if (plan.deleteRuns.length + plan.deleteJobs.length > 0) {
      this.o.logger.info({ runs: plan.deleteRuns.length, jobs: plan.deleteJobs.length }, 'retention: pruned finished runs and their Jobs');
    }
    return plan;
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof NotFoundError || (err as { code?: number } | undefined)?.code === 404;
}
