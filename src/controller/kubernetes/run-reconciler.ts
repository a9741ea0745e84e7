// Reconciles one Run: makes sure its Job exists, stops it on cancel, reads the run's status
// back from the Job and its pod, keeps the pod's log collected, and, once the run is over
// and every line is archived, ends its log and lets the pod go. Level-based: it acts on
// what it observes now, so running it twice, or after a restart, changes nothing.
import { BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { COMMAND_RUNNER, Reasons, RunStopMessages, isTerminal, skipUnstarted, type RunRecord } from '../../domain/index.ts';
import { TERMINATION_GRACE_SECONDS, buildJob, jobTimedOut, noFurtherStep, runOutcome } from '../../drivers/command-runner/kubernetes/index.ts';
import { API_VERSION, CustomResources, LOGS_FINALIZER, Labels, jobNameFor } from '../../kube/names.ts';
import type { LogArchive, LogHub } from '../../logs/index.ts';
import { RunLogCollector, attemptsInArchive, eventStamp } from '../../logs/sources/run-log-collector.ts';
import { isStatus } from '../../store/kubernetes/custom-objects.ts';
import type { KubernetesStore } from '../../store/kubernetes/index.ts';
import { runFromObject, stepNamesOf, type RunObject } from '../../store/kubernetes/mapping.ts';
import type { ReconcileResult } from '../queue.ts';
import type { EventRecorder } from './events.ts';
import type { Informers } from './informers.ts';

const STOP_LINES: Record<string, string> = {
  [Reasons.Cancelled]: RunStopMessages.Cancelled,
  [Reasons.DeadlineExceeded]: RunStopMessages.DeadlineExceeded,
};

interface Collection {
  collector: RunLogCollector;
  // The attempt (1-based: the Job's pods oldest first) whose log this collects.
  attempt: number;
  abort: AbortController;
  finished: boolean;
}

export interface RunReconcilerOptions {
  kc: KubeConfig;
  namespace: string;
  informers: Informers;
  store: KubernetesStore;
  hub: LogHub;
  archive: LogArchive;
  events: EventRecorder;
  logger: Logger;
  // Asks for another reconcile of the run (e.g. when its log collection finished).
  requeue: (runid: string) => void;
  onLogConnect?: () => void;
  // How long a stopped pod may take to show that no step runs any more before the stop is
  // escalated (the pod deleted, the Job suspended). Default STOP_ESCALATION_MS.
  stopEscalationMs?: number;
  // Step output lines longer than this are split into marked parts (--max-line-bytes).
  maxLineBytes?: number;
  now?: () => number;
  // A run ended (once per run, by the leader that saw it end).
  onRunFinished?: (run: RunRecord) => void;
  ownServiceAccount?: () => string | undefined;
}

// The kubelet normally acts on a stop within a second or two, plus the pod's grace period
// (TERMINATION_GRACE_SECONDS) for a step that ignores SIGTERM; past this it is slow or cut
// off, and the stop is escalated.
export const STOP_ESCALATION_MS = 15_000;
// While a stop is not confirmed by the pod, the run is looked at again this often even
// without an event (a kubelet that is cut off sends none).
const STOP_POLL_MS = 2_000;

// Whether two records say the same, whatever the order of their keys (the API server hands
// objects back with keys sorted) and whether an absent field is undefined or missing. A
// write of an unchanged status makes no event, so "changed" must mean changed.
function sameRecord(a: RunRecord, b: RunRecord): boolean {
  return isDeepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)));
}

function podOver(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export class RunReconciler {
  private readonly o: RunReconcilerOptions;
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly collections = new Map<string, Collection>();
  // When this server first applied the stop of each run still stopping (in memory, as retry
  // counters are: a restarted server gives the kubelet the full time again).
  private readonly stopsSince = new Map<string, number>();

  constructor(options: RunReconcilerOptions) {
    this.o = options;
    this.batch = options.kc.makeApiClient(BatchV1Api);
    this.core = options.kc.makeApiClient(CoreV1Api);
  }

  // The run's pods, oldest first: one per attempt (a Job with retries makes a new pod for
  // each). Ties of the second-granular creation time fall back to the name.
  podsOf(runid: string): V1Pod[] {
    const pods = this.o.informers.pods.list(this.o.namespace).filter((p) => p.metadata?.labels?.[Labels.runId] === runid);
    const key = (p: V1Pod) => `${new Date(p.metadata?.creationTimestamp ?? 0).toISOString()}|${p.metadata?.name}`;
    return pods.sort((a, b) => key(a).localeCompare(key(b)));
  }

  podOf(runid: string): V1Pod | undefined {
    return this.podsOf(runid).at(-1);
  }

  podChanged(runid: string): void {
    this.collections.get(runid)?.collector.poke();
  }

  async reconcile(runid: string): Promise<ReconcileResult | void> {
    const obj = this.o.informers.runs.get(runid, this.o.namespace);
    if (!obj) {
      this.stopCollection(runid);
      this.stopsSince.delete(runid);
      // A deleted Run takes its log with it: its pods must not wait for an archive that
      // no reconcile will complete. The cache may only lag, so ask the API server.
      if (this.podsOf(runid).length > 0 && !(await this.o.store.runs.fresh(runid))) await this.releasePods(runid);
      return;
    }
    const run = runFromObject(obj);
    if (run.driver !== COMMAND_RUNNER) return;
    const cancel = obj.spec.cancelRequested === true;
    const job = this.o.informers.jobs.get(jobNameFor(runid), this.o.namespace);
    const pod = this.podOf(runid);
    const stepNames = stepNamesOf(run.resource, run.spec);
    if (isTerminal(run.phase)) {
      this.stopsSince.delete(runid);
      // The record of a finished run follows what its pod finally shows.
      if (await this.correctFromPod(obj, run, job, pod, stepNames)) return; // the write requeues
      if (obj.status?.logsArchived) {
        this.stopCollection(runid);
        await this.releasePods(runid);
        return;
      }
    }

    if (!job && !isTerminal(run.phase)) {
      // Only once the API server (not just a cache that may lag behind our own create)
      // says there is no Job: a Job made a moment ago would otherwise run unwatched.
      if (cancel) {
        if (await this.jobExists(runid)) return; // its event requeues this run, to stop it
        return this.finish(obj, run, { phase: 'Cancelled', reason: Reasons.Cancelled, message: 'cancelled before it started' });
      }
      if (!pod && run.phase === 'Pending') {
        await this.createJob(obj, run);
        return;
      }
      // The run got under way, so its Job was made and is gone now (or the cache lags).
      // Making it again would run the steps a second time: the run fails instead.
      if (await this.jobExists(runid)) return; // its event requeues this run
      const next: RunRecord = {
        ...run,
        phase: 'Failed',
        reason: 'JobDeleted',
        message: `its Job ${jobNameFor(runid)} was deleted before the run ended`,
        finishedAt: new Date().toISOString(),
        steps: skipUnstarted(run.steps.map((s) => (s.phase === 'Running' ? { ...s, phase: 'Cancelled' } : s))),
      };
      await this.save(obj, run, next);
      return; // the Run's change requeues it: its log is then completed and ended
    }
    let result: ReconcileResult | void = undefined;
    if (cancel && !isTerminal(run.phase)) result = await this.stop(obj, job, pod);
    if (pod) this.ensureCollection(run);

    const outcome = runOutcome(job, pod, stepNames, { stopped: cancel ? Reasons.Cancelled : undefined, previous: run.steps, now: new Date().toISOString() });
    let next: RunRecord = isTerminal(run.phase)
      ? run
      : {
          ...run,
          phase: outcome.phase,
          reason: outcome.reason,
          message: outcome.message,
          startedAt: run.startedAt ?? outcome.startedAt,
          finishedAt: outcome.finishedAt,
          steps: outcome.steps,
        };
    // A cancelled run whose pod never came (the Job was suspended first) ends here, once
    // the API server itself (not only the cache) confirms that no pod was made.
    if (cancel && !pod && !isTerminal(next.phase) && job?.spec?.suspend && (await this.livePodCount(runid)) === 0) {
      next = { ...next, phase: 'Cancelled', reason: Reasons.Cancelled, message: 'cancelled before it started', finishedAt: new Date().toISOString(), steps: skipUnstarted(next.steps) };
    }
    if (!sameRecord(next, run)) {
      await this.save(obj, run, next);
      return result; // the write's event brings the next reconcile, on the object as written
    }
    if (!isTerminal(next.phase)) return result;
    const collection = this.collections.get(runid);
    if (collection && !collection.finished) return; // its end requeues this run
    await this.finalizeLog(next);
  }

  // A finished run whose pod shows another end than recorded (a step that ran after all, a
  // different result) is corrected, with an Event saying what changed. Only on evidence:
  // a pod that is over; a missing pod changes nothing.
  private async correctFromPod(obj: RunObject, run: RunRecord, job: V1Job | undefined, pod: V1Pod | undefined, stepNames: string[]): Promise<boolean> {
    if (!pod || !noFurtherStep(pod)) return false;
    const cancel = obj.spec.cancelRequested === true;
    const outcome = runOutcome(job, pod, stepNames, { stopped: cancel ? Reasons.Cancelled : undefined, previous: run.steps });
    if (!isTerminal(outcome.phase)) return false;
    const summary = (phase: string, steps: RunRecord['steps']) => `${phase} (${steps.map((s) => `${s.name} ${s.phase}${s.exitCode === null ? '' : ` ${s.exitCode}`}`).join(', ')})`;
    const was = summary(run.phase, run.steps);
    const shown = summary(outcome.phase, outcome.steps);
    if (was === shown) return false;
    const next: RunRecord = {
      ...run,
      phase: outcome.phase,
      reason: outcome.reason,
      message: outcome.message,
      startedAt: run.startedAt ?? outcome.startedAt,
      finishedAt: outcome.finishedAt ?? run.finishedAt,
      steps: outcome.steps,
    };
    await this.o.store.writeRunStatus(obj, next, { correction: true });
    this.o.logger.warn({ runid: run.runid, was, shown }, 'run status corrected from its pod');
    this.o.events.record(obj, 'Warning', 'StatusCorrected', `the pod shows ${shown}; the record said ${was}`);
    return true;
  }

  private async livePodCount(runid: string): Promise<number> {
    const pods = await this.core.listNamespacedPod({ namespace: this.o.namespace, labelSelector: `${Labels.runId}=${runid}` });
    return pods.items.length;
  }

  private async jobExists(runid: string): Promise<boolean> {
    try {
      await this.batch.readNamespacedJob({ name: jobNameFor(runid), namespace: this.o.namespace });
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }

  private async createJob(obj: RunObject, run: RunRecord): Promise<void> {
    // Whatever path a Pipeline came by (the API checks, the chart's admission policy checks
    // too), the server's own credentials never go into a step's pod.
    const own = this.o.ownServiceAccount?.();
    const named = (run.spec as { serviceAccountName?: unknown }).serviceAccountName;
    if (own !== undefined && named === own) {
      await this.finish(obj, run, { phase: 'Failed', reason: 'ServiceAccountRefused', message: `spec.serviceAccountName "${own}" is Conveyor's own ServiceAccount, which no pipeline may use` });
      return;
    }
    let job;
    try {
      job = buildJob({
        run,
        namespace: this.o.namespace,
        runObject: { apiVersion: API_VERSION, kind: CustomResources.Run.kind, name: obj.metadata.name, uid: obj.metadata.uid! },
      });
    } catch (err) {
      // A spec no Job can be made of (e.g. a Pipeline applied without an image) will not
      // get better by retrying: the run fails and says why.
      await this.finish(obj, run, { phase: 'Failed', reason: 'InvalidSpec', message: (err as Error).message });
      return;
    }
    try {
      // No Event of our own for this: the Job controller's SuccessfulCreate on the Job says
      // it, and under a burst every write counts against the API server.
      await this.batch.createNamespacedJob({ namespace: this.o.namespace, body: job });
    } catch (err) {
      // The Job is named from the run id: one that exists is this run's, from an earlier
      // reconcile whose result the cache had not shown yet.
      if (!isStatus(err, 409)) throw err;
    }
  }

  // Stops a run's containers without deleting its pod, so the logs stay readable: the
  // pod's own deadline makes the kubelet kill them (the Job's would delete the pod). The
  // stop is checked, not hoped for: until the pod shows that no step runs any more the
  // run is looked at again, and a kubelet that has not acted within stopEscalationMs gets
  // the pod deleted (the logs finalizer keeps it readable) and the Job suspended.
  private async stop(obj: RunObject, job: V1Job | undefined, pod: V1Pod | undefined): Promise<ReconcileResult | void> {
    const runid = obj.metadata.name;
    // With retries left the Job would replace the stopped pod at once: allow no more
    // failures than it has seen, so the stopped pod's failure is its last.
    const failedSoFar = job?.status?.failed ?? 0;
    if (job && (job.spec?.backoffLimit ?? 0) > failedSoFar) {
      await this.batch.patchNamespacedJob(
        { name: jobNameFor(runid), namespace: this.o.namespace, body: { spec: { backoffLimit: failedSoFar } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    }
    const suspended = job?.spec?.suspend === true;
    if (pod && !noFurtherStep(pod)) {
      if (pod.spec?.activeDeadlineSeconds !== 1) {
        await this.core.patchNamespacedPod(
          { name: pod.metadata!.name!, namespace: this.o.namespace, body: { spec: { activeDeadlineSeconds: 1 } } },
          setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
        );
      }
      const now = (this.o.now ?? Date.now)();
      const since = this.stopsSince.get(runid) ?? now;
      this.stopsSince.set(runid, since);
      // A pod no node has taken has no kubelet to stop it, and no log to keep: it goes now.
      const escalateAfter = pod.spec?.nodeName ? (this.o.stopEscalationMs ?? STOP_ESCALATION_MS) : 0;
      if (now - since < escalateAfter) return { requeueAfter: Math.min(STOP_POLL_MS, escalateAfter - (now - since)) };
      if (!pod.metadata?.deletionTimestamp) {
        this.o.logger.warn({ runid, pod: pod.metadata?.name, waitedMs: now - since }, 'the kubelet has not stopped the run pod; deleting it');
        this.o.events.record(obj, 'Warning', 'StopEscalated', `pod ${pod.metadata?.name} still not stopped ${Math.round((now - since) / 1000)}s after the stop; deleting it and suspending the Job`);
        try {
          await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: this.o.namespace, gracePeriodSeconds: TERMINATION_GRACE_SECONDS });
        } catch (err) {
          if (!isStatus(err, 404)) throw err;
        }
      }
      if (!suspended) await this.suspendJob(runid);
      return { requeueAfter: STOP_POLL_MS };
    }
    // A stopped pod must not be replaced by a retry: once no pod runs, suspend the Job
    // (suspending earlier would make the Job controller delete the running pod).
    if (job && !suspended) await this.suspendJob(runid);
  }

  private async suspendJob(runid: string): Promise<void> {
    await this.batch.patchNamespacedJob(
      { name: jobNameFor(runid), namespace: this.o.namespace, body: { spec: { suspend: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  // Keeps one collector on the run's log: for the attempt the archive ends in when none
  // runs yet (a fresh server resumes there), then for each later attempt in turn, so a
  // retry's lines follow the lines of the try before, each once.
  private ensureCollection(run: RunRecord): void {
    const existing = this.collections.get(run.runid);
    if (existing && !existing.finished) return;
    const pods = this.podsOf(run.runid);
    const attempt = existing ? existing.attempt + 1 : Math.min(attemptsInArchive(this.o.archive.marks(run.runid)), pods.length);
    if (attempt > pods.length || attempt < 1) return;
    const podName = pods[attempt - 1]!.metadata!.name!;
    const abort = new AbortController();
    const collector = new RunLogCollector({
      kc: this.o.kc,
      namespace: this.o.namespace,
      hub: this.o.hub,
      archive: this.o.archive,
      runid: run.runid,
      pipeline: run.name,
      driver: run.driver,
      stepNames: stepNamesOf(run.resource, run.spec),
      attempt,
      pod: () => this.podsOf(run.runid).find((p) => p.metadata?.name === podName),
      stopMessage: () => this.stopMessageOf(run.runid),
      signal: abort.signal,
      maxLineBytes: this.o.maxLineBytes,
      onConnect: (container) => {
        this.o.onLogConnect?.();
        this.o.logger.debug({ runid: run.runid, attempt, container }, 'log stream opened');
      },
      onBreak: (err, container) => this.o.logger.info({ err, runid: run.runid, container }, 'log stream broke; resuming'),
    });
    const collection: Collection = { collector, abort, attempt, finished: false };
    this.collections.set(run.runid, collection);
    collector
      .collect()
      .catch((err: unknown) => this.o.logger.error({ err, runid: run.runid }, 'log collection failed'))
      .finally(() => {
        collection.finished = true;
        if (!abort.signal.aborted) this.o.requeue(run.runid);
      });
  }

  // Why the run is being stopped from outside, as its last line will say, if it is.
  private stopMessageOf(runid: string): string | undefined {
    if (this.o.informers.runs.get(runid, this.o.namespace)?.spec.cancelRequested === true) return RunStopMessages.Cancelled;
    return jobTimedOut(this.o.informers.jobs.get(jobNameFor(runid), this.o.namespace)) ? RunStopMessages.DeadlineExceeded : undefined;
  }

  private stopCollection(runid: string): void {
    const collection = this.collections.get(runid);
    if (!collection) return;
    collection.abort.abort();
    this.collections.delete(runid);
  }

  private async finish(obj: RunObject, run: RunRecord, end: Pick<RunRecord, 'phase' | 'reason' | 'message'>): Promise<void> {
    const next: RunRecord = { ...run, ...end, finishedAt: new Date().toISOString(), steps: skipUnstarted(run.steps) };
    await this.save(obj, run, next);
    await this.finalizeLog(next);
  }

  // Every line is in the archive: say how the run was stopped (if it was), end the log so
  // followers close, release the pod, and record that the archive is complete. A retry of
  // this (a failed release, a restart before logsArchived was written) adds nothing twice.
  private async finalizeLog(run: RunRecord): Promise<void> {
    const stopLine = run.reason ? STOP_LINES[run.reason] : undefined;
    const last = this.o.hub.lastLine(run.runid);
    const stopWritten = this.o.archive.marks(run.runid).at(-1)?.event === 'stop';
    if (stopLine && !stopWritten && !this.o.hub.hasEnded(run.runid)) {
      const mark = { attempt: attemptsInArchive(this.o.archive.marks(run.runid)), event: 'stop' as const };
      this.o.hub.append(run.runid, { driver: run.driver, pipeline: run.name, step: null, stream: 'system', message: stopLine, ts: eventStamp(null, last?.ts), mark });
    }
    this.o.hub.end(run.runid);
    await this.releasePods(run.runid);
    await this.o.store.patchRunStatus(run.runid, { logsArchived: true });
    this.stopCollection(run.runid);
  }

  private async releasePods(runid: string): Promise<void> {
    const pods = this.o.informers.pods.list(this.o.namespace).filter((p) => p.metadata?.labels?.[Labels.runId] === runid);
    for (const pod of pods) {
      const finalizers = pod.metadata?.finalizers ?? [];
      if (!finalizers.includes(LOGS_FINALIZER)) continue;
      try {
        await this.core.patchNamespacedPod(
          {
            name: pod.metadata!.name!,
            namespace: this.o.namespace,
            body: { metadata: { finalizers: finalizers.filter((f) => f !== LOGS_FINALIZER), resourceVersion: pod.metadata!.resourceVersion } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
    }
  }

  // Writes the run's new state, then tells (Events, the finished-run hook) what changed.
  private async save(obj: RunObject, before: RunRecord, after: RunRecord): Promise<void> {
    await this.o.store.writeRunStatus(obj, after);
    this.recordTransition(obj, before, after);
  }

  private recordTransition(obj: RunObject, before: RunRecord, after: RunRecord): void {
    if (before.phase === after.phase) return;
    if (isTerminal(after.phase)) this.o.onRunFinished?.(after);
    // A quick pod can take a run from Pending straight to its end: it started all the same.
    const started = before.phase === 'Pending' && after.phase !== 'Cancelled' && after.startedAt !== null;
    if (started) {
      const step = after.steps.find((s) => s.phase === 'Running')?.name ?? after.steps[0]?.name ?? '';
      this.o.events.record(obj, 'Normal', 'Started', `run started: step ${step}${after.requestedBy ? `; requested by ${after.requestedBy}` : ''}`);
    }
    if (after.phase === 'Succeeded') this.o.events.record(obj, 'Normal', 'Succeeded', after.message ?? 'Pipeline executed successfully');
    else if (after.phase === 'Failed') this.o.events.record(obj, 'Warning', 'Failed', after.message ?? 'run failed');
    else if (after.phase === 'Cancelled') this.o.events.record(obj, 'Normal', 'Cancelled', after.message ?? 'run cancelled');
  }

  shutdown(): void {
    for (const runid of [...this.collections.keys()]) this.stopCollection(runid);
  }
}
