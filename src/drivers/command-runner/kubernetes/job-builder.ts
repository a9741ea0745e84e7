// The Job that executes one run: a pure function of the run, so it can be unit tested and
// a second reconcile builds exactly the same object.
//
// Every step is a container of one pod, in the pipeline's image, in /workspace (an emptyDir
// all steps share), running `/bin/sh -c "<command>"`. The containers start together and
// take their turns through step-entrypoint.ts: in order, the first failure skipping the
// rest, each reporting its exit code and times in its termination message. This replaced
// init containers (one per step), which the kubelet starts one per 1 s sync loop: ten
// trivial steps took 11 s. A pipeline that asks for a device (an extended resource such as
// nvidia.com/gpu) keeps that sequential model: a device cannot be shared by containers
// that exist at the same time, and each step may need it.
import type { V1Container, V1EnvVar, V1Job, V1ResourceRequirements, V1SecurityContext } from '@kubernetes/client-node';
import { COMMAND_RUNNER, type PipelineSpec, type RunRecord } from '../../../domain/index.ts';
import { LOGS_FINALIZER, Labels, MANAGED_BY, WORKSPACE_PATH, WORKSPACE_VOLUME, jobNameFor } from '../../../kube/names.ts';
import { literal } from '../../../kube/literal.ts';
import { STEPS_PATH, STEPS_VOLUME, sequentialStepCommand, stepCommand } from './step-entrypoint.ts';

export { jobNameFor } from '../../../kube/names.ts';

export interface OwnerObject {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export interface BuildJobInput {
  run: RunRecord;
  namespace: string;
  // The `Run` custom resource that owns the Job (garbage collection, `kubectl tree`).
  runObject: OwnerObject;
}

// Same grace as local mode's killGraceMs: a cancelled or timed-out step gets SIGTERM, then
// SIGKILL this many seconds later; Kubernetes' default of 30 s would only slow cancel down.
export const TERMINATION_GRACE_SECONDS = 5;

export function runLabels(run: Pick<RunRecord, 'runid' | 'name'>): Record<string, string> {
  return {
    [Labels.managedBy]: MANAGED_BY,
    [Labels.runId]: run.runid,
    [Labels.pipeline]: run.name,
    [Labels.driver]: COMMAND_RUNNER,
  };
}

function containerSecurityContext(): V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

// The same variables local mode sets, so a step behaves alike in both modes: the pipeline's
// env may override CONVEYOR_RUN_ID and CONVEYOR_WORKSPACE, never CONVEYOR_STEP. Each name
// appears once (the API server warns about duplicates).
function envFor(run: RunRecord, spec: PipelineSpec, step: string): V1EnvVar[] {
  const values = new Map<string, string>([
    ['CONVEYOR_RUN_ID', run.runid],
    ['CONVEYOR_WORKSPACE', WORKSPACE_PATH],
  ]);
  for (const { name, value } of spec.env ?? []) values.set(name, value);
  values.delete('CONVEYOR_STEP');
  values.set('CONVEYOR_STEP', step);
  // Values reach the step as written, as in local mode: no `$(NAME)` expansion.
  return [...values].map(([name, value]) => ({ name, value: literal(value) }));
}

// Resources the kubelet divides among containers that run at once (CPU, memory, local
// storage, huge pages). Anything else is a device, which one container holds at a time.
function isShareable(resource: string): boolean {
  return resource === 'cpu' || resource === 'memory' || resource === 'ephemeral-storage' || resource.startsWith('hugepages-');
}

/** The pipeline asks for a device, so its steps run as sequential init containers. */
export function needsSequentialSteps(spec: PipelineSpec): boolean {
  const { requests = {}, limits = {} } = spec.resources ?? {};
  return [...Object.keys(requests), ...Object.keys(limits)].some((name) => !isShareable(name));
}

// The pod requests what the pipeline asked for, once: the scheduler adds up the requests
// of containers that exist together, so the first step container carries the requests and
// the others request zero of each named resource (without an explicit zero, a limit alone
// would default the request to the limit in every container). Every step container gets
// the limits, since each step may use all of them while it runs. CPU weight is shared
// within the pod's cgroup, so the running step gets the whole pod's share whichever
// container asked for it. Init containers run one at a time and each gets everything.
function resourcesFor(spec: PipelineSpec, carriesRequests: boolean): V1ResourceRequirements | undefined {
  const { requests, limits } = spec.resources ?? {};
  if (!requests && !limits) return undefined;
  const out: V1ResourceRequirements = {};
  if (carriesRequests) {
    if (requests) out.requests = { ...requests };
  } else {
    out.requests = Object.fromEntries([...new Set([...Object.keys(requests ?? {}), ...Object.keys(limits ?? {})])].map((name) => [name, '0']));
  }
  if (limits) out.limits = { ...limits };
  return out;
}

export function buildJob(input: BuildJobInput): V1Job {
  const { run, namespace, runObject } = input;
  const spec = run.spec as unknown as PipelineSpec;
  if (typeof spec?.image !== 'string' || spec.image.length === 0) {
    throw new Error(`run ${run.runid} (${run.resource} "${run.name}") has no image: a pipeline needs spec.image to run on Kubernetes`);
  }
  if (!Array.isArray(spec.steps) || spec.steps.length === 0) {
    throw new Error(`run ${run.runid} (${run.resource} "${run.name}") has no steps`);
  }
  const image = spec.image;
  const sequential = needsSequentialSteps(spec);
  const containers: V1Container[] = spec.steps.map((step, index) => {
    const container: V1Container = {
      name: step.name,
      image,
      imagePullPolicy: 'IfNotPresent',
      command: sequential ? sequentialStepCommand(step.command) : stepCommand(index + 1, step.command),
      workingDir: WORKSPACE_PATH,
      env: envFor(run, spec, step.name),
      volumeMounts: [
        { name: WORKSPACE_VOLUME, mountPath: WORKSPACE_PATH },
        ...(sequential ? [] : [{ name: STEPS_VOLUME, mountPath: STEPS_PATH }]),
      ],
      securityContext: containerSecurityContext(),
    };
    const resources = resourcesFor(spec, sequential || index === 0);
    if (resources) container.resources = resources;
    return container;
  });
  const initContainers = sequential ? containers.slice(0, -1) : [];
  const mainContainers = sequential ? containers.slice(-1) : containers;
  const labels = runLabels(run);
  const serviceAccountName = spec.serviceAccountName;

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobNameFor(run.runid),
      namespace,
      labels: { ...labels },
      ownerReferences: [
        {
          apiVersion: runObject.apiVersion,
          kind: runObject.kind,
          name: runObject.name,
          uid: runObject.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      backoffLimit: spec.retries ?? 0,
      ...(spec.timeoutSeconds !== undefined ? { activeDeadlineSeconds: spec.timeoutSeconds } : {}),
      // A retry's pod starts only once the previous one has stopped, so two attempts never
      // write to the log at the same time.
      podReplacementPolicy: 'Failed',
      template: {
        metadata: {
          labels: { ...labels },
          // Kubernetes copies the template's finalizers to the pod: it stays until its logs
          // are archived, whether it ends, is cancelled, times out or is deleted.
          finalizers: [LOGS_FINALIZER],
        },
        spec: {
          restartPolicy: 'Never',
          ...(serviceAccountName !== undefined
            ? { serviceAccountName, automountServiceAccountToken: true }
            : { automountServiceAccountToken: false }),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          // A step sees the processes of the others (same pipeline, same image): the step
          // entrypoint tells a dead step from a slow one by its pid.
          ...(sequential ? {} : { shareProcessNamespace: true }),
          ...(initContainers.length > 0 ? { initContainers } : {}),
          containers: mainContainers,
          volumes: [
            { name: WORKSPACE_VOLUME, emptyDir: {} },
            ...(sequential ? [] : [{ name: STEPS_VOLUME, emptyDir: {} }]),
          ],
        },
      },
    },
  };
}
