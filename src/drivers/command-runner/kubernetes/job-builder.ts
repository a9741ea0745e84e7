// The Job that executes one run: a pure function of the run, so it can be unit tested and
// a second reconcile builds exactly the same object.
//
// Steps 1..n-1 are init containers and step n the main container, all in the pipeline's
// image: Kubernetes runs them in order, stops at the first failure, and records each
// container's own start and finish time, which become the step's times. Every step runs
// `/bin/sh -c "<command>"` in /workspace, an emptyDir all steps share.
import type { V1Container, V1EnvVar, V1Job, V1ResourceRequirements, V1SecurityContext } from '@kubernetes/client-node';
import { COMMAND_RUNNER, type PipelineSpec, type RunRecord } from '../../../domain/index.ts';
import { LOGS_FINALIZER, Labels, MANAGED_BY, WORKSPACE_PATH, WORKSPACE_VOLUME, jobNameFor } from '../../../kube/names.ts';

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
// SIGKILL this many seconds later. The shell is PID 1 in its container and ignores SIGTERM
// unless the command traps it, so Kubernetes' default of 30 s would only slow cancel down.
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
  return [...values].map(([name, value]) => ({ name, value }));
}

function resourcesFor(spec: PipelineSpec): V1ResourceRequirements | undefined {
  const { requests, limits } = spec.resources ?? {};
  if (!requests && !limits) return undefined;
  const out: V1ResourceRequirements = {};
  if (requests) out.requests = { ...requests };
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
  const resources = resourcesFor(spec);
  const containers: V1Container[] = spec.steps.map((step) => {
    const container: V1Container = {
      name: step.name,
      image,
      imagePullPolicy: 'IfNotPresent',
      command: ['/bin/sh', '-c', step.command],
      workingDir: WORKSPACE_PATH,
      env: envFor(run, spec, step.name),
      volumeMounts: [{ name: WORKSPACE_VOLUME, mountPath: WORKSPACE_PATH }],
      securityContext: containerSecurityContext(),
    };
    if (resources) container.resources = structuredClone(resources);
    return container;
  });
  const main = containers.pop() as V1Container;
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
          ...(containers.length > 0 ? { initContainers: containers } : {}),
          containers: [main],
          volumes: [{ name: WORKSPACE_VOLUME, emptyDir: {} }],
        },
      },
    },
  };
}
