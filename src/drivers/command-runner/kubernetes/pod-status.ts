// From what the cluster shows (the run's Job and its pod) to Conveyor's status: pure
// functions, so the controller can call them on every reconcile and get the same answer.
//
// Each step is the container of its name (see job-builder.ts): all step containers start
// together and take turns, so a container that runs is not yet a step that runs. A step
// runs once the step before it has succeeded, and its result and times are the report
// in its container's termination message (step-entrypoint.ts). Pods of the sequential
// model (init containers for steps 1..n-1, used for devices and by earlier versions) are
// read from the containers' own states and times. Timestamps arrive as Date objects from
// client-node's typed list calls and as RFC 3339 strings from its watch (informer) events;
// both are accepted, and the output is always `Date.toISOString()`, as in local mode.
import type { V1ContainerStatus, V1Job, V1JobCondition, V1Pod } from '@kubernetes/client-node';
import {
  Reasons,
  pendingSteps,
  resultMessage,
  skipUnstarted,
  type RunPhase,
  type StepStatus,
} from '../../../domain/index.ts';
import { stepReport } from './step-entrypoint.ts';

// Why a run was stopped from outside: `Cancelled` (the user asked) or `DeadlineExceeded`
// (timeoutSeconds passed). The step the stop killed becomes Cancelled, later ones Skipped.
export type StopReason = typeof Reasons.Cancelled | typeof Reasons.DeadlineExceeded;

export interface StepStatusOptions {
  stopped?: StopReason;
}

// Kubelet reasons for a container that cannot start and will not without a change (a bad
// image name, a missing secret) or only after a back-off: the run stays Pending but shows
// the kubelet's reason and message, so users see why.
export const CONTAINER_START_ERRORS: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'ImageInspectError',
  'RegistryUnavailable',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreCreateHookError',
]);

type Time = Date | string | null | undefined;

export function isoTime(value: Time): string | null {
  if (value === null || value === undefined || value === '') return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

interface Observed {
  status: StepStatus;
  waiting?: { reason: string; message: string | null };
  // The kubelet's reason for a terminated container: Completed, Error, OOMKilled, ...
  terminatedReason?: string;
}

function statusOf(pod: V1Pod | undefined, name: string): V1ContainerStatus | undefined {
  return pod?.status?.containerStatuses?.find((c) => c.name === name) ?? pod?.status?.initContainerStatuses?.find((c) => c.name === name);
}

// Init containers run one at a time, so their own states are the steps' states.
function isSequential(pod: V1Pod | undefined): boolean {
  return (pod?.spec?.initContainers?.length ?? 0) > 0;
}

// Where a step stands in its pod's turns: whether the step before it succeeded (so this one
// may run), and when that one ended.
interface Turn {
  sequential: boolean;
  mayRun: boolean;
  previousEnd: string | null;
}

// A step began when its container started (an init container, one at a time), or else when
// the step before it ended: its container started with the others and waited for its turn.
function startOf(turn: Turn, containerStart: string | null): string | null {
  return turn.sequential ? containerStart : (turn.previousEnd ?? containerStart);
}

function observeStep(pod: V1Pod | undefined, name: string, turn: Turn): Observed {
  const pending: StepStatus = { name, phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null };
  const state = statusOf(pod, name)?.state;
  if (state?.terminated) {
    const { exitCode, startedAt, finishedAt, reason } = state.terminated;
    const report = turn.sequential ? undefined : stepReport(state.terminated);
    if (report?.ran === false || (!report && !turn.mayRun)) return { status: pending };
    // No report: the container was killed while its step ran (a stop's SIGKILL), or it is an
    // init container; its own exit code and times are the step's.
    const code = report?.ran ? report.exitCode : exitCode;
    const began = report?.ran ? (report.startedAt ?? isoTime(startedAt)) : startOf(turn, isoTime(startedAt));
    const ended = (report?.ran ? report.finishedAt : null) ?? isoTime(finishedAt);
    return { terminatedReason: reason, status: { name, phase: code === 0 ? 'Succeeded' : 'Failed', exitCode: code, startedAt: began, finishedAt: ended } };
  }
  if (state?.running && turn.mayRun) return { status: { ...pending, phase: 'Running', startedAt: startOf(turn, isoTime(state.running.startedAt)) } };
  if (state?.waiting?.reason) return { status: pending, waiting: { reason: state.waiting.reason, message: state.waiting.message ?? null } };
  return { status: pending };
}

function observe(pod: V1Pod | undefined, stepNames: string[]): Observed[] {
  const turn: Turn = { sequential: isSequential(pod), mayRun: true, previousEnd: null };
  return stepNames.map((name) => {
    const observed = observeStep(pod, name, turn);
    turn.mayRun = observed.status.phase === 'Succeeded';
    turn.previousEnd = observed.status.finishedAt;
    return observed;
  });
}

// Steps run in order and the first failure ends the run: everything after a failed step is
// Skipped. Under a stop, the step that was running (or already killed) is Cancelled and the
// rest Skipped; steps that finished before the stop keep their result.
function settle(observed: StepStatus[], stopped: StopReason | undefined): StepStatus[] {
  let ended = false;
  return observed.map((step) => {
    if (ended) return { ...step, phase: 'Skipped' };
    if (step.phase === 'Succeeded') return step;
    if (step.phase === 'Failed') {
      ended = true;
      return stopped ? { ...step, phase: 'Cancelled' } : step;
    }
    if (stopped) {
      ended = true;
      return { ...step, phase: step.phase === 'Running' ? 'Cancelled' : 'Skipped' };
    }
    return step;
  });
}

export function stepStatusesFromPod(pod: V1Pod | undefined, stepNames: string[], options: StepStatusOptions = {}): StepStatus[] {
  return settle(
    observe(pod, stepNames).map((o) => o.status),
    options.stopped,
  );
}

export interface RunOutcomeOptions {
  // The user asked to cancel the run (Run.spec.cancelRequested).
  stopped?: typeof Reasons.Cancelled;
  // The steps as last recorded: used when the pod is gone (deleted after it ended, or not
  // yet observed), so that a missing pod never turns finished steps back into Pending.
  previous?: StepStatus[];
  // The caller's clock (ISO 8601): the end of a run that ended without an observable end
  // (cancelled before a step ran, its pod gone). Without it such a finishedAt is null.
  now?: string;
}

export interface RunOutcome {
  phase: RunPhase;
  reason: string;
  message: string;
  // The step running now; while Pending, the step whose container cannot start; at the
  // end, the step that failed or was stopped (null after success).
  currentStep: string | null;
  // When the first step started, and (for a finished run) when the last one ended. With
  // retries this is the current attempt's start: callers keep a startedAt already recorded.
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepStatus[];
}

function condition(job: V1Job | undefined, type: string): V1JobCondition | undefined {
  return job?.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

// Kubernetes 1.31+ first sets the interim FailureTarget, then (once the pods are gone or
// terminal) Failed; either one says the Job failed.
function failedCondition(job: V1Job | undefined): V1JobCondition | undefined {
  return condition(job, 'Failed') ?? condition(job, 'FailureTarget');
}

/** The Job failed because it ran past its activeDeadlineSeconds (the run's timeout). */
export function jobTimedOut(job: V1Job | undefined): boolean {
  return failedCondition(job)?.reason === 'DeadlineExceeded';
}

function earliest(times: (string | null)[]): string | null {
  const known = times.filter((t): t is string => t !== null).sort();
  return known[0] ?? null;
}

function latest(times: (string | null)[]): string | null {
  const known = times.filter((t): t is string => t !== null).sort();
  return known[known.length - 1] ?? null;
}

function timedOutMessage(job: V1Job | undefined): string {
  const seconds = job?.spec?.activeDeadlineSeconds;
  return seconds === undefined ? 'Run timed out' : `Run timed out after ${seconds}s`;
}

/**
 * The pod shows that none of its steps will run any more: it is over (Succeeded or Failed,
 * which the kubelet sets only once every container has stopped), or it was deleted before
 * it was bound to a node, so no kubelet will ever start it.
 */
export function noFurtherStep(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return true;
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null && !pod.spec?.nodeName;
}

// What a run is, given its Job and the Job's newest pod (either may be missing: not created
// yet, or deleted). The run ends when the Job says so (conditions Complete or
// SuccessCriteriaMet, Failed or FailureTarget), when its pod succeeded, or when its pod
// failed with no retry left. A stop (the user's cancel, or the Job's deadline) ends it once
// the step it interrupts has stopped, so that the step's and the run's end are the
// container's real end; until then the run stays Running with reason `Stopping`.
export function runOutcome(job: V1Job | undefined, pod: V1Pod | undefined, stepNames: string[], options: RunOutcomeOptions = {}): RunOutcome {
  // Likewise SuccessCriteriaMet comes before Complete; either one decides the outcome.
  const complete = condition(job, 'Complete') ?? condition(job, 'SuccessCriteriaMet');
  const failed = failedCondition(job);
  const podPhase = pod?.status?.phase;
  const podOver = podPhase === 'Succeeded' || podPhase === 'Failed';
  const succeeded = complete !== undefined || podPhase === 'Succeeded';
  const deadline = jobTimedOut(job);
  // A run that completed before the stop reached it succeeded.
  const stopped: StopReason | undefined = succeeded ? undefined : (options.stopped ?? (deadline ? Reasons.DeadlineExceeded : undefined));

  const observed = pod ? observe(pod, stepNames) : undefined;
  const raw = observed ? observed.map((o) => o.status) : (options.previous?.map((s) => ({ ...s })) ?? pendingSteps(stepNames));
  const running = raw.find((s) => s.phase === 'Running');
  // A stop ends the run only once the pod shows that no further step will run: it is over
  // (the kubelet has acted on the stop), or it was deleted before a node took it. Between
  // two steps none runs, yet until the kubelet has acted on the stop the next one may
  // start: until the pod says otherwise the run is stopping, not stopped.
  const stopping = stopped !== undefined && pod !== undefined && !noFurtherStep(pod);
  let steps = settle(raw, stopping ? undefined : stopped);
  const startedAt = earliest(steps.map((s) => s.startedAt)) ?? (raw.some((s) => s.phase !== 'Pending' && s.phase !== 'Skipped') ? isoTime(pod?.status?.startTime) : null);
  const stoppedStep = steps.find((s) => s.phase === 'Cancelled')?.name ?? null;
  const failedStep = steps.find((s) => s.phase === 'Failed');
  const conditionTime = failed?.lastTransitionTime;

  const finish = (phase: RunPhase, reason: string, message: string, currentStep: string | null, fallbackEnd?: Time): RunOutcome => {
    // A run that ended otherwise leaves no step Running (its pod is gone or stopped): the
    // step it interrupted is Cancelled, those it never reached Skipped.
    const ended = phase === 'Succeeded' ? steps : skipUnstarted(steps.map((s) => (s.phase === 'Running' ? { ...s, phase: 'Cancelled' } : s)));
    const fallback = isoTime(fallbackEnd) ?? options.now ?? null;
    return {
      phase,
      reason,
      message,
      currentStep,
      startedAt,
      // The last container's end; if a stopped step's end was never seen, when the Job
      // decided the stop, else the caller's clock.
      finishedAt: ended.some((s) => s.phase === 'Cancelled' && s.finishedAt === null)
        ? fallback
        : (latest(ended.map((s) => s.finishedAt)) ?? fallback),
      steps: ended,
    };
  };

  if (succeeded) {
    // Complete means every container exited 0, whatever the last observation missed.
    steps = steps.map((s) => (s.phase === 'Succeeded' ? s : { ...s, phase: 'Succeeded', exitCode: 0 }));
    return finish('Succeeded', Reasons.Succeeded, resultMessage(steps), null, job?.status?.completionTime ?? complete?.lastTransitionTime);
  }
  const stopMessage = stopped === Reasons.Cancelled ? 'Run cancelled' : timedOutMessage(job);
  if (stopping) {
    const anyRan = steps.some((s) => s.startedAt !== null || s.phase === 'Running');
    const what = running ? `stopping step ${running.name}` : 'waiting for the pod to stop';
    return {
      phase: anyRan ? 'Running' : 'Pending',
      reason: 'Stopping',
      message: `${stopMessage}; ${what}`,
      currentStep: running?.name ?? null,
      startedAt: anyRan ? startedAt : null,
      finishedAt: null,
      steps,
    };
  }
  if (stopped === Reasons.Cancelled) return finish('Cancelled', Reasons.Cancelled, stopMessage, stoppedStep, conditionTime);
  if (stopped === Reasons.DeadlineExceeded) return finish('Failed', Reasons.DeadlineExceeded, stopMessage, stoppedStep, conditionTime);

  const backoffLimit = job?.spec?.backoffLimit ?? 0;
  const podFailedForGood = podPhase === 'Failed' && backoffLimit === 0;
  const failureMessage = (): string => {
    if (!failedStep) return '';
    const killed = observed?.find((o) => o.status.name === failedStep.name)?.terminatedReason;
    const podReason = pod?.status?.reason;
    const why = [killed === 'OOMKilled' ? killed : undefined, podReason ? `pod ${podReason}${pod?.status?.message ? `: ${pod.status.message}` : ''}` : undefined].filter(Boolean);
    return `${resultMessage(steps)}${why.length > 0 ? ` (${why.join('; ')})` : ''}`;
  };
  if (failed || podFailedForGood) {
    if (failedStep) return finish('Failed', Reasons.StepFailed, failureMessage(), failedStep.name, conditionTime);
    const reason = pod?.status?.reason ?? failed?.reason ?? 'PodFailed';
    const message = pod?.status?.message ?? failed?.message ?? "the run's pod failed before its steps finished";
    return finish('Failed', reason, message, running?.name ?? null, conditionTime);
  }

  const anyStarted = steps.some((s) => s.startedAt !== null || s.phase === 'Running');
  const phase: RunPhase = anyStarted ? 'Running' : 'Pending';
  const active = (reason: string, message: string, currentStep: string | null): RunOutcome => ({
    phase,
    reason,
    message,
    currentStep,
    startedAt: anyStarted ? startedAt : null,
    finishedAt: null,
    steps,
  });

  if (podPhase === 'Failed') {
    const failures = job?.status?.failed ?? 0;
    const why = failedStep ? failureMessage() : (pod?.status?.message ?? "the run's pod failed");
    return active('Retrying', `${why}; retrying (${failures} of ${backoffLimit} retries used)`, failedStep?.name ?? null);
  }

  const next = observed?.find((o) => o.status.phase === 'Pending');
  if (next?.waiting && CONTAINER_START_ERRORS.has(next.waiting.reason)) {
    return active(next.waiting.reason, next.waiting.message ?? `step ${next.status.name} cannot start: ${next.waiting.reason}`, next.status.name);
  }
  if (anyStarted) {
    const current = running?.name ?? next?.status.name ?? null;
    return active(Reasons.Started, current ? `running step ${current}` : 'running steps', current);
  }
  const unschedulable = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unschedulable?.reason === 'Unschedulable') {
    return active('Unschedulable', unschedulable.message ?? 'the run pod cannot be scheduled', null);
  }
  if (!job) return active(Reasons.Waiting, 'waiting for the Job to be created', null);
  if (!pod) return active(Reasons.Waiting, 'waiting for the Job to create its pod', null);
  const detail = next?.waiting?.reason && next.waiting.reason !== 'PodInitializing' ? ` (${next.waiting.reason})` : '';
  return active(Reasons.Waiting, `waiting for the pod to start${detail}`, null);
}
