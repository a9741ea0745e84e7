// How Conveyor's records map onto its custom resources (manifests/crds/), both ways.
import { createHash } from 'node:crypto';
import {
  PIPELINE_TYPE,
  pendingSteps,
  runIdFromSeed,
  type JsonObject,
  type PipelineSpec,
  type Resource,
  type ResourceDefinition,
  type RunPhase,
  type RunRecord,
  type StepStatus,
} from '../../domain/index.ts';
import { API_VERSION, GROUP, Labels, MANAGED_BY, parseResourceObjectName } from '../../kube/names.ts';
import type { CustomObject, ObjectMeta } from './custom-objects.ts';

export const Annotations = {
  createdAt: `${GROUP}/created-at`,
  driverPipeline: `${GROUP}/driver-pipeline`,
  // Set by the API when it writes a Pipeline: the run id to use for the generation named,
  // so that the Run the API creates and the one the controller would create are one.
  nextRunId: `${GROUP}/next-run-id`,
  nextRunGeneration: `${GROUP}/next-run-generation`,
  // Who wrote the Pipeline's current spec: the API's caller, or for kubectl the requester
  // the chart's admission policy checked it against.
  requestedBy: `${GROUP}/requested-by`,
} as const;

export const RunLabels = {
  version: `${GROUP}/resource-version`,
  ownerUid: `${GROUP}/resource-uid`,
} as const;

export interface RunSpec {
  resource: string;
  name: string;
  version: number;
  driver: string;
  pipeline?: string | null;
  pipelineSpec: JsonObject;
  cancelRequested?: boolean;
  requestedBy?: string;
  // External drivers' runs: the steps planned at creation (status.steps once written).
  driverSteps?: StepStatus[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface RunStatus {
  observedGeneration?: number;
  // External drivers' runs: the driver that took the run (spec.driver is frozen at creation).
  driver?: string;
  phase?: RunPhase;
  reason?: string | null;
  message?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
  currentStep?: string | null;
  jobName?: string;
  logsArchived?: boolean;
  steps?: StepStatus[];
  conditions?: Condition[];
}

export type RunObject = CustomObject<RunSpec, RunStatus>;

export interface PipelineStatus {
  observedGeneration?: number;
  lastRunId?: string;
  lastRunPhase?: RunPhase;
  conditions?: Condition[];
}
export type PipelineObject = CustomObject<PipelineSpec, PipelineStatus>;

export interface GenericResourceSpec {
  type: string;
  spec: JsonObject;
  pipeline?: string;
  version: number;
}
export type GenericResourceObject = CustomObject<GenericResourceSpec, PipelineStatus>;

export interface DefinitionSpec {
  version: string;
  description?: string;
  schema: JsonObject;
}
export type DefinitionObject = CustomObject<DefinitionSpec, Record<string, unknown>>;

const iso = (value: unknown): string => (value instanceof Date ? value.toISOString() : typeof value === 'string' ? value : new Date(0).toISOString());

export function stepNamesOf(resource: string, spec: JsonObject): string[] {
  return resource === PIPELINE_TYPE ? ((spec as unknown as PipelineSpec).steps ?? []).map((s) => s.name) : [];
}

export function runFromObject(obj: RunObject): RunRecord {
  const status = obj.status ?? {};
  const spec = obj.spec;
  const served = spec.driver !== 'none';
  return {
    runid: obj.metadata.name,
    resource: spec.resource,
    name: spec.name,
    version: spec.version,
    driver: status.driver ?? spec.driver,
    phase: status.phase ?? 'Pending',
    reason: status.reason ?? (served ? 'Waiting' : 'NoDriver'),
    message:
      status.message ??
      (served ? 'waiting for the controller to start it' : `no driver serves resources of type "${spec.resource}" yet; the run stays Pending until one does`),
    createdAt: obj.metadata.annotations?.[Annotations.createdAt] ?? iso(obj.metadata.creationTimestamp),
    startedAt: status.startedAt ?? null,
    finishedAt: status.finishedAt ?? null,
    steps: status.steps ?? spec.driverSteps ?? pendingSteps(stepNamesOf(spec.resource, spec.pipelineSpec)),
    spec: spec.pipelineSpec,
    pipeline: spec.pipeline ?? null,
    requestedBy: spec.requestedBy ?? null,
  };
}

export function runMetadata(run: RunRecord, ownerUid: string): ObjectMeta {
  return {
    name: run.runid,
    labels: {
      [Labels.managedBy]: MANAGED_BY,
      [Labels.runId]: run.runid,
      [Labels.driver]: run.driver,
      [Labels.resourceType]: run.resource,
      [Labels.resourceName]: run.name,
      ...(run.resource === PIPELINE_TYPE ? { [Labels.pipeline]: run.name } : {}),
      [RunLabels.version]: String(run.version),
      [RunLabels.ownerUid]: ownerUid,
    },
    annotations: { [Annotations.createdAt]: run.createdAt },
  };
}

export function runSpecOf(run: RunRecord): RunSpec {
  return {
    resource: run.resource,
    name: run.name,
    version: run.version,
    driver: run.driver,
    ...(run.pipeline ? { pipeline: run.pipeline } : {}),
    pipelineSpec: run.spec,
    ...(run.steps.some((s) => s.event !== undefined) ? { driverSteps: run.steps } : {}),
    cancelRequested: false,
    ...(run.requestedBy ? { requestedBy: run.requestedBy } : {}),
  };
}

export function runStatusOf(run: RunRecord, generation: number | undefined, previous: RunStatus | undefined): RunStatus {
  const now = new Date().toISOString();
  const succeeded: Condition['status'] = run.phase === 'Succeeded' ? 'True' : run.phase === 'Failed' || run.phase === 'Cancelled' ? 'False' : 'Unknown';
  const before = previous?.conditions?.find((c) => c.type === 'Succeeded');
  const reason = run.reason ?? run.phase;
  const condition: Condition = {
    type: 'Succeeded',
    status: succeeded,
    observedGeneration: generation,
    // Only a flip of status moves the transition time; a new message alone does not.
    lastTransitionTime: before && before.status === succeeded ? before.lastTransitionTime : now,
    reason,
    message: run.message ?? '',
  };
  const current = run.steps.find((s) => s.phase === 'Running') ?? run.steps.find((s) => s.phase === 'Failed' || s.phase === 'Cancelled');
  return {
    ...previous,
    observedGeneration: generation,
    phase: run.phase,
    reason: run.reason,
    message: run.message,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    currentStep: current?.name ?? null,
    steps: run.steps,
    ...(run.steps.some((s) => s.event !== undefined) ? { driver: run.driver } : {}),
    conditions: [condition],
  };
}

export function definitionFromObject(obj: DefinitionObject): ResourceDefinition {
  return {
    id: obj.metadata.uid ?? obj.metadata.name,
    name: obj.metadata.name,
    version: obj.spec.version,
    description: obj.spec.description ?? '',
    schema: obj.spec.schema,
    builtIn: false,
    createdAt: iso(obj.metadata.creationTimestamp),
    updatedAt: obj.metadata.annotations?.[Annotations.createdAt] ?? iso(obj.metadata.creationTimestamp),
  };
}

export function pipelineResource(obj: PipelineObject, version = obj.metadata.generation ?? 1, spec: JsonObject = obj.spec as unknown as JsonObject): Resource {
  const resource: Resource = {
    name: obj.metadata.name,
    resource: PIPELINE_TYPE,
    spec,
    metadata: { version, createdAt: iso(obj.metadata.creationTimestamp), updatedAt: obj.metadata.annotations?.[Annotations.createdAt] ?? iso(obj.metadata.creationTimestamp) },
  };
  const chain = obj.metadata.annotations?.[Annotations.driverPipeline];
  if (chain) resource.pipeline = chain;
  return resource;
}

export function genericResource(obj: GenericResourceObject): Resource {
  const resource: Resource = {
    name: parseResourceObjectName(obj.metadata.name)?.name ?? obj.metadata.name,
    resource: obj.spec.type,
    spec: obj.spec.spec,
    metadata: { version: obj.spec.version, createdAt: iso(obj.metadata.creationTimestamp), updatedAt: obj.metadata.annotations?.[Annotations.createdAt] ?? iso(obj.metadata.creationTimestamp) },
  };
  if (obj.spec.pipeline) resource.pipeline = obj.spec.pipeline;
  return resource;
}


// The run id of generation `generation` of the object with `uid`, when no writer chose one.
export function runIdForGeneration(uid: string, generation: number): string {
  return runIdFromSeed(createHash('sha256').update(`${uid}/${generation}`).digest());
}

export { API_VERSION };
