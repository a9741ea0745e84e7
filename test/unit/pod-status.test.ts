// Step and run status from the Job and pod the API server returns. The objects below have
// the shape of real kube-apiserver 1.34 answers for the Jobs of job-builder.ts: mostly of
// its sequential model (init containers for steps 1..n-1, the main container for step n),
// whose rules the concurrent model shares; the last part is the concurrent model's own.
import { expect } from 'chai';
import type { V1ContainerState, V1ContainerStatus, V1Job, V1JobCondition, V1Pod } from '@kubernetes/client-node';
import {
  CONTAINER_START_ERRORS,
  isoTime,
  runOutcome,
  stepStatusesFromPod,
} from '../../src/drivers/command-runner/kubernetes/index.ts';
import { stepReport } from '../../src/drivers/command-runner/kubernetes/step-entrypoint.ts';

const RUNID = '0f3c6a1e-5b2d-4e8f-9a7c-1d2e3f4a5b6c';
const IMAGE = 'docker.io/jimjuniorb/hello-node:1.2.3';
const SEED_STEPS = ['hello', 'where', 'os'];

// Times of a run: T(0) is when the pod started, T(n) n seconds later, as the API server
// writes them (RFC 3339, second precision).
const T = (s: number) => new Date(Date.UTC(2026, 0, 15, 10, 0, s)).toISOString().replace('.000Z', 'Z');
const ISO = (s: number) => new Date(Date.UTC(2026, 0, 15, 10, 0, s)).toISOString();

const waiting = (reason = 'PodInitializing', message?: string): V1ContainerState => ({ waiting: message ? { reason, message } : { reason } });
const running = (at: number): V1ContainerState => ({ running: { startedAt: T(at) as unknown as Date } });
const terminated = (exitCode: number, from: number, to: number, reason = exitCode === 0 ? 'Completed' : 'Error'): V1ContainerState => ({
  terminated: {
    exitCode,
    reason,
    startedAt: T(from) as unknown as Date,
    finishedAt: T(to) as unknown as Date,
    containerID: `containerd://${'ab'.repeat(32)}`,
  },
});

function containerStatus(name: string, state: V1ContainerState): V1ContainerStatus {
  const started = state.running !== undefined || state.terminated !== undefined;
  return {
    name,
    state,
    lastState: {},
    ready: state.terminated?.exitCode === 0 || false,
    restartCount: 0,
    image: IMAGE,
    imageID: started ? `docker.io/jimjuniorb/hello-node@sha256:${'cd'.repeat(32)}` : '',
    started: state.running !== undefined,
    ...(started ? { containerID: `containerd://${'ab'.repeat(32)}` } : {}),
    volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
  } as V1ContainerStatus;
}

interface PodOptions {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  states: V1ContainerState[];
  steps?: string[];
  reason?: string;
  message?: string;
  deleted?: boolean;
  scheduled?: boolean;
  // 'concurrent' (the default of job-builder.ts): every step a regular container.
  // 'sequential': steps 1..n-1 init containers (pipelines with devices, earlier versions).
  model?: 'concurrent' | 'sequential';
}

// A run pod as the API server returns it (here in a watch event: timestamps as strings).
function podOf(options: PodOptions): V1Pod {
  const steps = options.steps ?? SEED_STEPS;
  const statuses = steps.map((name, i) => containerStatus(name, options.states[i] ?? waiting()));
  const scheduled = options.scheduled ?? true;
  const concurrent = options.model === 'concurrent';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `run-${RUNID}-x7k2p`,
      namespace: 'ci',
      uid: '6b1f0c9e-3d2a-4b7c-8e5f-0a1b2c3d4e5f',
      creationTimestamp: T(-2) as unknown as Date,
      labels: {
        'app.kubernetes.io/managed-by': 'conveyor',
        'batch.kubernetes.io/controller-uid': '9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d',
        'batch.kubernetes.io/job-name': `run-${RUNID}`,
        'conveyor.ci/driver': 'command-runner',
        'conveyor.ci/pipeline': 'ubuntu-pipeline-6',
        'conveyor.ci/run-id': RUNID,
      },
      finalizers: ['conveyor.ci/logs', 'batch.kubernetes.io/job-tracking'],
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: `run-${RUNID}`, uid: '9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d', controller: true, blockOwnerDeletion: true }],
      ...(options.deleted ? { deletionTimestamp: T(30) as unknown as Date, deletionGracePeriodSeconds: 5 } : {}),
    },
    spec: {
      restartPolicy: 'Never',
      ...(scheduled ? { nodeName: 'conveyor-node' } : {}),
      ...(concurrent
        ? { shareProcessNamespace: true, containers: steps.map((name) => ({ name, image: IMAGE })) }
        : { initContainers: steps.slice(0, -1).map((name) => ({ name, image: IMAGE })), containers: [{ name: steps.at(-1)!, image: IMAGE }] }),
    },
    status: {
      phase: options.phase,
      ...(options.reason ? { reason: options.reason } : {}),
      ...(options.message ? { message: options.message } : {}),
      conditions: scheduled
        ? [{ type: 'PodScheduled', status: 'True', lastTransitionTime: T(-2) as unknown as Date }]
        : [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.', lastTransitionTime: T(-2) as unknown as Date }],
      ...(scheduled ? { hostIP: '10.244.0.1', podIP: '10.244.0.23', startTime: T(-1) as unknown as Date, qosClass: 'BestEffort' } : { qosClass: 'BestEffort' }),
      ...(scheduled ? (concurrent ? { containerStatuses: statuses } : { initContainerStatuses: statuses.slice(0, -1), containerStatuses: statuses.slice(-1) }) : {}),
    },
  };
}

function jobOf(options: { conditions?: V1JobCondition[]; failed?: number; backoffLimit?: number; activeDeadlineSeconds?: number; completionTime?: string } = {}): V1Job {
  const conditions = options.conditions ?? [];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `run-${RUNID}`, namespace: 'ci', uid: '9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d', generation: 1 },
    spec: {
      backoffLimit: options.backoffLimit ?? 0,
      ...(options.activeDeadlineSeconds ? { activeDeadlineSeconds: options.activeDeadlineSeconds } : {}),
      completions: 1,
      parallelism: 1,
      podReplacementPolicy: 'Failed',
      template: { spec: { containers: [] } },
    },
    status: {
      startTime: T(-2) as unknown as Date,
      ...(conditions.length === 0 ? { active: 1 } : {}),
      ...(options.failed ? { failed: options.failed } : {}),
      ...(options.completionTime ? { completionTime: options.completionTime as unknown as Date, succeeded: 1 } : {}),
      ...(conditions.length > 0 ? { conditions } : {}),
      terminating: 0,
      uncountedTerminatedPods: {},
      ready: 0,
    },
  };
}

const condition = (type: string, reason: string, message: string, at: number): V1JobCondition => ({
  type,
  status: 'True',
  reason,
  message,
  lastProbeTime: T(at) as unknown as Date,
  lastTransitionTime: T(at) as unknown as Date,
});

const complete = (at: number) => [condition('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods', at), condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods', at)];
const backoffExceeded = (at: number) => [condition('FailureTarget', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', at), condition('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', at)];
const deadlineTarget = (at: number) => [condition('FailureTarget', 'DeadlineExceeded', 'Job was active longer than specified deadline', at)];
const deadlineExceeded = (at: number) => [...deadlineTarget(at), condition('Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline', at + 6)];

const phases = (steps: { phase: string }[]) => steps.map((s) => s.phase);

describe('kubernetes: step status from the pod', () => {
  it('is Pending for every step without a pod', () => {
    expect(stepStatusesFromPod(undefined, SEED_STEPS)).to.deep.equal(
      SEED_STEPS.map((name) => ({ name, phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null })),
    );
  });

  it('reads steps 1..n-1 from the init containers and step n from the main container', () => {
    const pod = podOf({ phase: 'Running', states: [terminated(0, 0, 1), terminated(0, 1, 2), running(3)] });
    expect(stepStatusesFromPod(pod, SEED_STEPS)).to.deep.equal([
      { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
      { name: 'where', phase: 'Succeeded', exitCode: 0, startedAt: ISO(1), finishedAt: ISO(2) },
      { name: 'os', phase: 'Running', exitCode: null, startedAt: ISO(3), finishedAt: null },
    ]);
  });

  it('reads a one-step pipeline from the main container', () => {
    const pod = podOf({ phase: 'Succeeded', steps: ['only'], states: [terminated(0, 0, 4)] });
    expect(stepStatusesFromPod(pod, ['only'])).to.deep.equal([{ name: 'only', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(4) }]);
  });

  it('gives the same times for Date objects (typed list calls) and strings (watch events)', () => {
    const asStrings = podOf({ phase: 'Running', states: [terminated(0, 0, 1), running(2)] });
    const asDates = structuredClone(asStrings);
    const init = asDates.status!.initContainerStatuses![0]!.state!.terminated!;
    init.startedAt = new Date(T(0));
    init.finishedAt = new Date(T(1));
    asDates.status!.initContainerStatuses![1]!.state!.running!.startedAt = new Date(T(2));
    expect(stepStatusesFromPod(asDates, SEED_STEPS)).to.deep.equal(stepStatusesFromPod(asStrings, SEED_STEPS));
    expect(isoTime('2026-01-15T10:00:07.123456Z')).to.equal('2026-01-15T10:00:07.123Z');
    expect(isoTime(undefined)).to.equal(null);
    expect(isoTime('not a time')).to.equal(null);
  });

  it('marks the steps after a failed one Skipped', () => {
    const pod = podOf({ phase: 'Failed', states: [terminated(0, 0, 1), terminated(3, 1, 2), waiting()] });
    expect(stepStatusesFromPod(pod, SEED_STEPS)).to.deep.equal([
      { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
      { name: 'where', phase: 'Failed', exitCode: 3, startedAt: ISO(1), finishedAt: ISO(2) },
      { name: 'os', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
    ]);
  });

  it('under a stop, marks the step it killed Cancelled and the later ones Skipped', () => {
    const killed = podOf({ phase: 'Failed', deleted: true, states: [terminated(0, 0, 1), terminated(143, 1, 9), waiting()] });
    expect(stepStatusesFromPod(killed, SEED_STEPS, { stopped: 'Cancelled' })).to.deep.equal([
      { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
      { name: 'where', phase: 'Cancelled', exitCode: 143, startedAt: ISO(1), finishedAt: ISO(9) },
      { name: 'os', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
    ]);
    // Still running when the stop was decided: Cancelled, its end not known yet.
    const stillRunning = podOf({ phase: 'Running', states: [running(0)] });
    expect(phases(stepStatusesFromPod(stillRunning, SEED_STEPS, { stopped: 'DeadlineExceeded' }))).to.deep.equal(['Cancelled', 'Skipped', 'Skipped']);
    // Stopped before any step started: nothing was cancelled, everything Skipped.
    const notStarted = podOf({ phase: 'Pending', states: [waiting('ImagePullBackOff', 'Back-off pulling image')] });
    expect(phases(stepStatusesFromPod(notStarted, SEED_STEPS, { stopped: 'Cancelled' }))).to.deep.equal(['Skipped', 'Skipped', 'Skipped']);
  });
});

describe('kubernetes: run outcome', () => {
  it('is Pending while there is no Job, then no pod', () => {
    const none = runOutcome(undefined, undefined, SEED_STEPS);
    expect(none).to.deep.include({ phase: 'Pending', reason: 'Waiting', message: 'waiting for the Job to be created', currentStep: null, startedAt: null, finishedAt: null });
    expect(phases(none.steps)).to.deep.equal(['Pending', 'Pending', 'Pending']);
    expect(runOutcome(jobOf(), undefined, SEED_STEPS)).to.deep.include({ phase: 'Pending', message: 'waiting for the Job to create its pod' });
  });

  it('is Pending while every step waits for its container', () => {
    const pod = podOf({ phase: 'Pending', states: [waiting(), waiting(), waiting()] });
    const out = runOutcome(jobOf(), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Pending', reason: 'Waiting', message: 'waiting for the pod to start', currentStep: null, startedAt: null, finishedAt: null });
    expect(phases(out.steps)).to.deep.equal(['Pending', 'Pending', 'Pending']);
    const creating = podOf({ phase: 'Pending', states: [waiting(), waiting(), waiting('ContainerCreating')], steps: SEED_STEPS });
    creating.status!.initContainerStatuses![0]!.state = waiting('ContainerCreating');
    expect(runOutcome(jobOf(), creating, SEED_STEPS).message).to.equal('waiting for the pod to start (ContainerCreating)');
  });

  it('is Pending and says why when the pod cannot be scheduled', () => {
    const pod = podOf({ phase: 'Pending', scheduled: false, states: [] });
    const out = runOutcome(jobOf(), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Pending', reason: 'Unschedulable', currentStep: null });
    expect(out.message).to.match(/Insufficient memory/);
  });

  it('is Running from the first step on, with the step running now', () => {
    const pod = podOf({ phase: 'Pending', states: [running(0), waiting(), waiting()] });
    const out = runOutcome(jobOf(), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Running', reason: 'Started', message: 'running step hello', currentStep: 'hello', startedAt: ISO(0), finishedAt: null });
    expect(phases(out.steps)).to.deep.equal(['Running', 'Pending', 'Pending']);
  });

  it('between two steps, names the next step as current', () => {
    const pod = podOf({ phase: 'Pending', states: [terminated(0, 0, 1), waiting(), waiting()] });
    expect(runOutcome(jobOf(), pod, SEED_STEPS)).to.deep.include({ phase: 'Running', currentStep: 'where', startedAt: ISO(0) });
  });

  it('fails with StepFailed when a middle step exits 3, the later step Skipped', () => {
    const pod = podOf({ phase: 'Failed', states: [terminated(0, 0, 1), terminated(3, 1, 2), waiting()] });
    const out = runOutcome(jobOf({ conditions: backoffExceeded(3), failed: 1 }), pod, SEED_STEPS);
    expect(out).to.deep.equal({
      phase: 'Failed',
      reason: 'StepFailed',
      message: 'step where failed with exit code 3',
      currentStep: 'where',
      startedAt: ISO(0),
      finishedAt: ISO(2),
      steps: [
        { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
        { name: 'where', phase: 'Failed', exitCode: 3, startedAt: ISO(1), finishedAt: ISO(2) },
        { name: 'os', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
      ],
    });
  });

  it('fails as soon as the pod failed when no retry is left, before the Job says so', () => {
    const pod = podOf({ phase: 'Failed', states: [terminated(0, 0, 1), terminated(3, 1, 2), waiting()] });
    expect(runOutcome(jobOf(), pod, SEED_STEPS)).to.deep.include({ phase: 'Failed', reason: 'StepFailed', message: 'step where failed with exit code 3' });
    expect(runOutcome(undefined, pod, SEED_STEPS)).to.deep.include({ phase: 'Failed', reason: 'StepFailed' });
  });

  it('keeps Running while a failed pod will be retried', () => {
    const pod = podOf({ phase: 'Failed', states: [terminated(0, 0, 1), terminated(3, 1, 2), waiting()] });
    const out = runOutcome(jobOf({ backoffLimit: 2, failed: 1 }), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Running', reason: 'Retrying', message: 'step where failed with exit code 3; retrying (1 of 2 retries used)', finishedAt: null });
    // The last attempt's failure ends it.
    expect(runOutcome(jobOf({ backoffLimit: 2, failed: 3, conditions: backoffExceeded(20) }), pod, SEED_STEPS)).to.deep.include({ phase: 'Failed', reason: 'StepFailed' });
  });

  it('says when a step was OOM-killed or the pod evicted', () => {
    const oom = podOf({ phase: 'Failed', states: [terminated(137, 0, 4, 'OOMKilled'), waiting(), waiting()] });
    expect(runOutcome(jobOf({ conditions: backoffExceeded(5) }), oom, SEED_STEPS).message).to.equal('step hello failed with exit code 137 (OOMKilled)');
    const evicted = podOf({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: ephemeral-storage.',
      states: [terminated(0, 0, 1), terminated(137, 1, 8), waiting()],
    });
    const out = runOutcome(jobOf({ conditions: backoffExceeded(9) }), evicted, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Failed', reason: 'StepFailed', message: 'step where failed with exit code 137 (pod Evicted: The node was low on resource: ephemeral-storage.)' });
  });

  it('fails with the pod or Job reason when the pod failed before any step ended', () => {
    const pod = podOf({ phase: 'Failed', reason: 'Evicted', message: 'The node had condition: [DiskPressure].', states: [waiting(), waiting(), waiting()] });
    const out = runOutcome(jobOf({ conditions: backoffExceeded(4) }), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Failed', reason: 'Evicted', message: 'The node had condition: [DiskPressure].', finishedAt: ISO(4) });
    expect(phases(out.steps)).to.deep.equal(['Skipped', 'Skipped', 'Skipped']);
    const gone = runOutcome(jobOf({ conditions: backoffExceeded(4) }), undefined, SEED_STEPS);
    expect(gone).to.deep.include({ phase: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
    // The pod vanished while a step ran: that step did not finish, it was interrupted.
    const previous = [
      { name: 'hello', phase: 'Succeeded' as const, exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
      { name: 'where', phase: 'Running' as const, exitCode: null, startedAt: ISO(1), finishedAt: null },
      { name: 'os', phase: 'Pending' as const, exitCode: null, startedAt: null, finishedAt: null },
    ];
    const vanished = runOutcome(jobOf({ conditions: backoffExceeded(4) }), undefined, SEED_STEPS, { previous });
    expect(vanished).to.deep.include({ phase: 'Failed', reason: 'BackoffLimitExceeded', currentStep: 'where', finishedAt: ISO(4) });
    expect(phases(vanished.steps)).to.deep.equal(['Succeeded', 'Cancelled', 'Skipped']);
  });

  it('succeeds when the Job is Complete, each step with its own times', () => {
    const pod = podOf({ phase: 'Succeeded', states: [terminated(0, 0, 1), terminated(0, 1, 2), terminated(0, 3, 4)] });
    const out = runOutcome(jobOf({ conditions: complete(5), completionTime: T(5) }), pod, SEED_STEPS);
    expect(out).to.deep.equal({
      phase: 'Succeeded',
      reason: 'Succeeded',
      message: 'Pipeline executed successfully',
      currentStep: null,
      startedAt: ISO(0),
      finishedAt: ISO(4),
      steps: [
        { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
        { name: 'where', phase: 'Succeeded', exitCode: 0, startedAt: ISO(1), finishedAt: ISO(2) },
        { name: 'os', phase: 'Succeeded', exitCode: 0, startedAt: ISO(3), finishedAt: ISO(4) },
      ],
    });
    // The interim condition decides it too, and so does the pod alone: a Succeeded pod
    // means a Complete Job.
    expect(runOutcome(jobOf({ conditions: complete(5).slice(0, 1) }), pod, SEED_STEPS).phase).to.equal('Succeeded');
    expect(runOutcome(jobOf(), pod, SEED_STEPS).phase).to.equal('Succeeded');
  });

  it('keeps the recorded steps when the pod is gone, completing them if the Job is Complete', () => {
    const previous = [
      { name: 'hello', phase: 'Succeeded' as const, exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
      { name: 'where', phase: 'Succeeded' as const, exitCode: 0, startedAt: ISO(1), finishedAt: ISO(2) },
      { name: 'os', phase: 'Running' as const, exitCode: null, startedAt: ISO(3), finishedAt: null },
    ];
    const out = runOutcome(jobOf({ conditions: complete(5), completionTime: T(5) }), undefined, SEED_STEPS, { previous });
    expect(out).to.deep.include({ phase: 'Succeeded', startedAt: ISO(0), finishedAt: ISO(2) });
    expect(out.steps[2]).to.deep.equal({ name: 'os', phase: 'Succeeded', exitCode: 0, startedAt: ISO(3), finishedAt: null });
    expect(previous[2]!.phase, 'previous is not modified').to.equal('Running');
    // Still running, pod not (yet) observed: the recorded steps, not all Pending again.
    expect(phases(runOutcome(jobOf(), undefined, SEED_STEPS, { previous }).steps)).to.deep.equal(['Succeeded', 'Succeeded', 'Running']);
  });

  it('fails with DeadlineExceeded when the Job ran past timeoutSeconds, the killed step Cancelled', () => {
    const pod = podOf({ phase: 'Failed', deleted: true, states: [terminated(0, 0, 1), terminated(137, 1, 11), waiting()] });
    const out = runOutcome(jobOf({ activeDeadlineSeconds: 5, conditions: deadlineExceeded(5) }), pod, SEED_STEPS);
    expect(out).to.deep.equal({
      phase: 'Failed',
      reason: 'DeadlineExceeded',
      message: 'Run timed out after 5s',
      currentStep: 'where',
      startedAt: ISO(0),
      finishedAt: ISO(11),
      steps: [
        { name: 'hello', phase: 'Succeeded', exitCode: 0, startedAt: ISO(0), finishedAt: ISO(1) },
        { name: 'where', phase: 'Cancelled', exitCode: 137, startedAt: ISO(1), finishedAt: ISO(11) },
        { name: 'os', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
      ],
    });
  });

  it('stays Running with reason Stopping until the step the deadline stops has ended', () => {
    const pod = podOf({ phase: 'Running', deleted: true, states: [terminated(0, 0, 1), running(1), waiting()] });
    const out = runOutcome(jobOf({ activeDeadlineSeconds: 5, conditions: deadlineTarget(5) }), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Running', reason: 'Stopping', message: 'Run timed out after 5s; stopping step where', currentStep: 'where', startedAt: ISO(0), finishedAt: null });
    expect(phases(out.steps)).to.deep.equal(['Succeeded', 'Running', 'Pending']);
    // The pod is gone before its end was seen: the run ends when the Job decided the stop.
    const gone = runOutcome(jobOf({ activeDeadlineSeconds: 5, conditions: deadlineTarget(5) }), undefined, SEED_STEPS, { previous: out.steps });
    expect(gone).to.deep.include({ phase: 'Failed', reason: 'DeadlineExceeded', currentStep: 'where', finishedAt: ISO(5) });
    expect(gone.steps[1]).to.deep.equal({ name: 'where', phase: 'Cancelled', exitCode: null, startedAt: ISO(1), finishedAt: null });
  });

  it('times out before any step started: every step Skipped, the Job condition time as the end', () => {
    const deleting = podOf({ phase: 'Pending', deleted: true, states: [waiting('ImagePullBackOff', 'Back-off pulling image "x"'), waiting(), waiting()] });
    // Until its kubelet has failed the pod, the pull could still finish and the step start.
    expect(runOutcome(jobOf({ activeDeadlineSeconds: 30, conditions: deadlineTarget(30) }), deleting, SEED_STEPS)).to.deep.include({ phase: 'Pending', reason: 'Stopping' });
    const pod = podOf({ phase: 'Failed', deleted: true, states: [waiting('ImagePullBackOff', 'Back-off pulling image "x"'), waiting(), waiting()] });
    const out = runOutcome(jobOf({ activeDeadlineSeconds: 30, conditions: deadlineTarget(30) }), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Run timed out after 30s', currentStep: null, startedAt: null, finishedAt: ISO(30) });
    expect(phases(out.steps)).to.deep.equal(['Skipped', 'Skipped', 'Skipped']);
  });

  it('is Cancelled once the step the cancel stopped has ended, that step Cancelled', () => {
    const pod = podOf({ phase: 'Failed', deleted: true, states: [terminated(0, 0, 1), terminated(0, 1, 2), terminated(143, 3, 7)] });
    const out = runOutcome(jobOf({ conditions: backoffExceeded(8) }), pod, SEED_STEPS, { stopped: 'Cancelled' });
    expect(out).to.deep.include({ phase: 'Cancelled', reason: 'Cancelled', message: 'Run cancelled', currentStep: 'os', startedAt: ISO(0), finishedAt: ISO(7) });
    expect(phases(out.steps)).to.deep.equal(['Succeeded', 'Succeeded', 'Cancelled']);
    // A cancel that also ran the Job past a deadline is still a cancel.
    expect(runOutcome(jobOf({ conditions: deadlineExceeded(5) }), pod, SEED_STEPS, { stopped: 'Cancelled' }).phase).to.equal('Cancelled');
  });

  it('stops a running step by the pod deadline: Stopping, then Cancelled at the container end', () => {
    // The controller cancels by setting the pod's activeDeadlineSeconds: the kubelet kills
    // the containers and fails the pod with reason DeadlineExceeded; the pod stays.
    const live = podOf({ phase: 'Running', states: [running(0), waiting(), waiting()] });
    const early = runOutcome(jobOf(), live, SEED_STEPS, { stopped: 'Cancelled' });
    expect(early).to.deep.include({ phase: 'Running', reason: 'Stopping', message: 'Run cancelled; stopping step hello', currentStep: 'hello', finishedAt: null });
    const killed = podOf({
      phase: 'Failed',
      reason: 'DeadlineExceeded',
      message: 'Pod was active on the node longer than the specified deadline',
      states: [terminated(137, 0, 6), waiting(), waiting()],
    });
    for (const job of [jobOf(), jobOf({ conditions: backoffExceeded(7), failed: 1 })]) {
      const out = runOutcome(job, killed, SEED_STEPS, { stopped: 'Cancelled' });
      expect(out).to.deep.include({ phase: 'Cancelled', reason: 'Cancelled', currentStep: 'hello', startedAt: ISO(0), finishedAt: ISO(6) });
      expect(out.steps).to.deep.equal([
        { name: 'hello', phase: 'Cancelled', exitCode: 137, startedAt: ISO(0), finishedAt: ISO(6) },
        { name: 'where', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
        { name: 'os', phase: 'Skipped', exitCode: null, startedAt: null, finishedAt: null },
      ]);
    }
  });

  it("ends a run cancelled before any step ran once its pod has failed, at the caller's clock", () => {
    // The pod is on a node: its kubelet could still start the first step until it fails it.
    const pod = podOf({ phase: 'Pending', states: [waiting('ImagePullBackOff', 'Back-off pulling image "x"'), waiting(), waiting()] });
    const stopping = runOutcome(jobOf(), pod, SEED_STEPS, { stopped: 'Cancelled', now: ISO(42) });
    expect(stopping).to.deep.include({ phase: 'Pending', reason: 'Stopping', message: 'Run cancelled; waiting for the pod to stop', currentStep: null, finishedAt: null });
    const failed = podOf({ phase: 'Failed', reason: 'DeadlineExceeded', states: [waiting('ImagePullBackOff'), waiting(), waiting()] });
    const out = runOutcome(jobOf(), failed, SEED_STEPS, { stopped: 'Cancelled', now: ISO(42) });
    expect(out).to.deep.include({ phase: 'Cancelled', reason: 'Cancelled', currentStep: null, startedAt: null, finishedAt: ISO(42) });
    expect(phases(out.steps)).to.deep.equal(['Skipped', 'Skipped', 'Skipped']);
    expect(runOutcome(jobOf(), failed, SEED_STEPS, { stopped: 'Cancelled' }).finishedAt).to.equal(null);
    // Deleted before any node took it: no kubelet will ever start a step.
    const unbound = podOf({ phase: 'Pending', deleted: true, scheduled: false, states: [] });
    expect(runOutcome(jobOf(), unbound, SEED_STEPS, { stopped: 'Cancelled', now: ISO(42) })).to.deep.include({ phase: 'Cancelled', finishedAt: ISO(42) });
  });

  it('is not Cancelled between two steps while the pod may still start the next one (issue 14)', () => {
    // The first step was killed... or rather ended, and the kubelet has not seen the stop:
    // no container runs, but the pod is not over, so the next step may still start.
    const between = podOf({ phase: 'Pending', states: [terminated(0, 0, 2), waiting(), waiting()] });
    const out = runOutcome(jobOf(), between, SEED_STEPS, { stopped: 'Cancelled', now: ISO(42) });
    expect(out).to.deep.include({ phase: 'Running', reason: 'Stopping', message: 'Run cancelled; waiting for the pod to stop', finishedAt: null });
    expect(phases(out.steps)).to.deep.equal(['Succeeded', 'Pending', 'Pending']);
    // The kubelet started and finished the next steps anyway: the record says they ran.
    const ranAnyway = podOf({ phase: 'Succeeded', states: [terminated(0, 0, 2), terminated(0, 3, 5), terminated(0, 6, 7)] });
    const end = runOutcome(jobOf({ conditions: complete(8) }), ranAnyway, SEED_STEPS, { stopped: 'Cancelled', now: ISO(42) });
    expect(end).to.deep.include({ phase: 'Succeeded', finishedAt: ISO(7) });
    expect(phases(end.steps)).to.deep.equal(['Succeeded', 'Succeeded', 'Succeeded']);
    // Or the kubelet killed the second: it ran, and was Cancelled; only the third Skipped.
    const killedSecond = podOf({ phase: 'Failed', reason: 'DeadlineExceeded', states: [terminated(0, 0, 2), terminated(137, 3, 5), waiting()] });
    const cancelled = runOutcome(jobOf(), killedSecond, SEED_STEPS, { stopped: 'Cancelled' });
    expect(cancelled).to.deep.include({ phase: 'Cancelled', currentStep: 'where', finishedAt: ISO(5) });
    expect(cancelled.steps[1]).to.deep.equal({ name: 'where', phase: 'Cancelled', exitCode: 137, startedAt: ISO(3), finishedAt: ISO(5) });
    expect(phases(cancelled.steps)).to.deep.equal(['Succeeded', 'Cancelled', 'Skipped']);
  });

  it('succeeds when the run completed before the cancel reached it', () => {
    const pod = podOf({ phase: 'Succeeded', states: [terminated(0, 0, 1), terminated(0, 1, 2), terminated(0, 3, 4)] });
    const out = runOutcome(jobOf({ conditions: complete(5) }), pod, SEED_STEPS, { stopped: 'Cancelled' });
    expect(out).to.deep.include({ phase: 'Succeeded', reason: 'Succeeded' });
    expect(phases(out.steps)).to.deep.equal(['Succeeded', 'Succeeded', 'Succeeded']);
  });

  it("stays Pending on an image pull error, with the kubelet's reason and message", () => {
    const message = 'Back-off pulling image "jimjuniorb/hello-node:9.9.9": ErrImagePull: failed to pull and unpack image "docker.io/jimjuniorb/hello-node:9.9.9": not found';
    const pod = podOf({ phase: 'Pending', states: [waiting('ImagePullBackOff', message), waiting(), waiting()] });
    const out = runOutcome(jobOf(), pod, SEED_STEPS);
    expect(out).to.deep.include({ phase: 'Pending', reason: 'ImagePullBackOff', message, currentStep: 'hello', startedAt: null, finishedAt: null });
    expect(phases(out.steps)).to.deep.equal(['Pending', 'Pending', 'Pending']);
    const pulling = podOf({ phase: 'Pending', states: [waiting('ErrImagePull', 'rpc error: code = NotFound'), waiting(), waiting()] });
    expect(runOutcome(jobOf(), pulling, SEED_STEPS)).to.deep.include({ phase: 'Pending', reason: 'ErrImagePull', message: 'rpc error: code = NotFound' });
    const invalid = podOf({ phase: 'Pending', states: [waiting('InvalidImageName'), waiting(), waiting()] });
    expect(runOutcome(jobOf(), invalid, SEED_STEPS)).to.deep.include({ reason: 'InvalidImageName', message: 'step hello cannot start: InvalidImageName' });
    for (const reason of ['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'CreateContainerConfigError', 'InvalidImageName']) {
      expect(CONTAINER_START_ERRORS.has(reason), reason).to.equal(true);
    }
  });

  it('follows the seed job (3 steps) from start to end', () => {
    const job = jobOf();
    const seen = [
      runOutcome(undefined, undefined, SEED_STEPS),
      runOutcome(job, undefined, SEED_STEPS),
      runOutcome(job, podOf({ phase: 'Pending', states: [waiting(), waiting(), waiting()] }), SEED_STEPS),
      runOutcome(job, podOf({ phase: 'Pending', states: [running(0), waiting(), waiting()] }), SEED_STEPS),
      runOutcome(job, podOf({ phase: 'Pending', states: [terminated(0, 0, 1), running(1), waiting()] }), SEED_STEPS),
      runOutcome(job, podOf({ phase: 'Running', states: [terminated(0, 0, 1), terminated(0, 1, 2), running(3)] }), SEED_STEPS),
      runOutcome(job, podOf({ phase: 'Succeeded', states: [terminated(0, 0, 1), terminated(0, 1, 2), terminated(0, 3, 4)] }), SEED_STEPS),
      runOutcome(
        jobOf({ conditions: complete(5), completionTime: T(5) }),
        podOf({ phase: 'Succeeded', states: [terminated(0, 0, 1), terminated(0, 1, 2), terminated(0, 3, 4)] }),
        SEED_STEPS,
      ),
    ];
    expect(seen.map((o) => [o.phase, o.currentStep])).to.deep.equal([
      ['Pending', null],
      ['Pending', null],
      ['Pending', null],
      ['Running', 'hello'],
      ['Running', 'where'],
      ['Running', 'os'],
      ['Succeeded', null],
      ['Succeeded', null],
    ]);
    expect(seen.map((o) => phases(o.steps).join(' '))).to.deep.equal([
      'Pending Pending Pending',
      'Pending Pending Pending',
      'Pending Pending Pending',
      'Running Pending Pending',
      'Succeeded Running Pending',
      'Succeeded Succeeded Running',
      'Succeeded Succeeded Succeeded',
      'Succeeded Succeeded Succeeded',
    ]);
    expect(seen.at(-1)).to.deep.include({ startedAt: ISO(0), finishedAt: ISO(4), message: 'Pipeline executed successfully' });
  });
});

// The concurrent model: every step container starts at pod start and waits for its turn;
// a step's result and times are the report in its termination message (step-entrypoint.ts).
describe('kubernetes: steps of one pod taking turns', () => {
  // Epoch seconds as the entrypoint writes them: with nanoseconds where `date` has %N.
  const epoch = (s: number, ms = 0) => `${Date.UTC(2026, 0, 15, 10, 0, s) / 1000}.${String(ms).padStart(3, '0')}456789`;
  const reported = (exitCode: number, from: [number, number], to: [number, number], containerFrom = 0): V1ContainerState => {
    const state = terminated(exitCode, containerFrom, to[0]);
    state.terminated!.message = JSON.stringify({ exitCode, startedAt: epoch(...from), finishedAt: epoch(...to) });
    return state;
  };
  const skipped = (at: number): V1ContainerState => {
    const state = terminated(0, 0, at);
    state.terminated!.message = '{"skipped":true}';
    return state;
  };
  const at = (s: number, ms: number) => new Date(Date.UTC(2026, 0, 15, 10, 0, s, ms)).toISOString();
  const concurrent = (phase: PodOptions['phase'], states: V1ContainerState[], extra: Partial<PodOptions> = {}) => podOf({ phase, states, model: 'concurrent', ...extra });

  it('reads a report with nanoseconds, one with whole seconds (busybox), and nothing from other messages', () => {
    expect(stepReport({ message: JSON.stringify({ exitCode: 3, startedAt: epoch(1, 250), finishedAt: epoch(2, 5) }) })).to.deep.equal({ ran: true, exitCode: 3, startedAt: at(1, 250), finishedAt: at(2, 5) });
    expect(stepReport({ message: `{"exitCode":0,"startedAt":"${Date.UTC(2026, 0, 15, 10, 0, 7) / 1000}","finishedAt":"${Date.UTC(2026, 0, 15, 10, 0, 9) / 1000}"}` })).to.deep.equal({ ran: true, exitCode: 0, startedAt: ISO(7), finishedAt: ISO(9) });
    expect(stepReport({ message: '{"skipped":true}' })).to.deep.equal({ ran: false });
    for (const message of [undefined, '', 'Killed', '{"exitCode":"0"}', '[1]', 'null', '{"exitCode":1.5}']) expect(stepReport({ message }), String(message)).to.equal(undefined);
    // Times the entrypoint could not tell are unknown, not a wrong date.
    expect(stepReport({ message: '{"exitCode":0,"startedAt":"%s","finishedAt":""}' })).to.deep.equal({ ran: true, exitCode: 0, startedAt: null, finishedAt: null });
  });

  it('shows only the first step Running while every container has started and the later ones wait', () => {
    const outcome = runOutcome(jobOf(), concurrent('Running', [running(0), running(0), running(0)]), SEED_STEPS);
    expect(phases(outcome.steps)).to.deep.equal(['Running', 'Pending', 'Pending']);
    expect(outcome).to.deep.include({ phase: 'Running', currentStep: 'hello', startedAt: ISO(0) });
  });

  it("starts a step when the one before it ended, at that step's reported end", () => {
    const outcome = runOutcome(jobOf(), concurrent('Running', [reported(0, [0, 100], [1, 200]), running(0), running(0)]), SEED_STEPS);
    expect(outcome.steps.map((s) => [s.phase, s.startedAt, s.finishedAt])).to.deep.equal([
      ['Succeeded', at(0, 100), at(1, 200)],
      ['Running', at(1, 200), null],
      ['Pending', null, null],
    ]);
    expect(outcome.currentStep).to.equal('where');
  });

  it("succeeds with each step's own exit code and reported times, to the millisecond", () => {
    const states = [reported(0, [0, 100], [0, 300]), reported(0, [0, 310], [2, 0]), reported(0, [2, 20], [2, 900])];
    const outcome = runOutcome(jobOf({ conditions: complete(4), completionTime: T(4) }), concurrent('Succeeded', states), SEED_STEPS);
    expect(outcome.steps.map((s) => [s.phase, s.exitCode, s.startedAt, s.finishedAt])).to.deep.equal([
      ['Succeeded', 0, at(0, 100), at(0, 300)],
      ['Succeeded', 0, at(0, 310), at(2, 0)],
      ['Succeeded', 0, at(2, 20), at(2, 900)],
    ]);
    expect(outcome).to.deep.include({ phase: 'Succeeded', startedAt: at(0, 100), finishedAt: at(2, 900) });
  });

  it('fails at the step that exited non-zero and skips the rest, which exited 0 without running', () => {
    const states = [reported(0, [0, 0], [1, 0]), reported(3, [1, 10], [1, 500]), skipped(1)];
    const outcome = runOutcome(jobOf({ conditions: backoffExceeded(3) }), concurrent('Failed', states), SEED_STEPS);
    expect(outcome.steps.map((s) => [s.phase, s.exitCode])).to.deep.equal([
      ['Succeeded', 0],
      ['Failed', 3],
      ['Skipped', null],
    ]);
    expect(outcome).to.deep.include({ phase: 'Failed', reason: 'StepFailed', currentStep: 'where', finishedAt: at(1, 500) });
  });

  it('records a step killed before it could report (OOM) as Failed with the kubelet reason, from the end of the step before', () => {
    const killed = terminated(137, 0, 3, 'OOMKilled');
    const lost = terminated(0, 0, 3);
    lost.terminated!.message = '{"skipped":true,"previousLost":true}';
    const outcome = runOutcome(jobOf({ conditions: backoffExceeded(4) }), concurrent('Failed', [reported(0, [0, 0], [1, 400]), killed, lost]), SEED_STEPS);
    expect(outcome.steps.map((s) => [s.phase, s.exitCode, s.startedAt, s.finishedAt])).to.deep.equal([
      ['Succeeded', 0, at(0, 0), at(1, 400)],
      ['Failed', 137, at(1, 400), ISO(3)],
      ['Skipped', null, null, null],
    ]);
    expect(outcome.message).to.contain('OOMKilled');
  });

  it('under a cancel, the step the stop ended (its report says 143) is Cancelled and the waiting ones, killed, Skipped', () => {
    const waitingKilled = terminated(143, 0, 5);
    const states = [reported(0, [0, 0], [1, 0]), reported(143, [1, 5], [5, 0]), waitingKilled];
    const outcome = runOutcome(jobOf(), concurrent('Failed', states), SEED_STEPS, { stopped: 'Cancelled' });
    expect(phases(outcome.steps)).to.deep.equal(['Succeeded', 'Cancelled', 'Skipped']);
    expect(outcome).to.deep.include({ phase: 'Cancelled', currentStep: 'where', finishedAt: ISO(5) });
    // Until the kubelet has stopped the containers, the run is stopping, not stopped.
    const stopping = runOutcome(jobOf(), concurrent('Running', [reported(0, [0, 0], [1, 0]), running(0), running(0)]), SEED_STEPS, { stopped: 'Cancelled' });
    expect(stopping).to.deep.include({ phase: 'Running', reason: 'Stopping', currentStep: 'where' });
  });

  it("stays Pending on an image pull error of the first step, with the kubelet's reason", () => {
    const pull = waiting('ErrImagePull', 'failed to pull image "nope:1"');
    const outcome = runOutcome(jobOf(), concurrent('Pending', [pull, pull, pull]), SEED_STEPS);
    expect(outcome).to.deep.include({ phase: 'Pending', reason: 'ErrImagePull', currentStep: 'hello' });
  });
});
