// Turns a resource write into the run it starts: validates the spec against its type's
// schema, resolves which driver serves it, and freezes what the run will execute.
import { v4 as uuidv4 } from 'uuid';
import {
  BadRequestError,
  NotFoundError,
  PIPELINE_TYPE,
  assertPipelineSpec,
  assertValid,
  driverSteps,
  newRun,
  type DriverPipeline,
  type ResourceEvent,
  type PipelineSpec,
  type ResourceInput,
  type RunRecord,
} from '../domain/index.ts';
import type { ApiDeps } from './context.ts';
import { SchemaValidators } from './schema-validators.ts';

// One per process: entries are keyed by definition name and schema content, so servers
// sharing it (tests, benchmarks) still each get the validator of the schema they read.
export const schemaValidators = new SchemaValidators();

// Returns the driver pipeline the resource names, if any.
export async function validateResource(deps: ApiDeps, input: ResourceInput): Promise<DriverPipeline | undefined> {
  const def = await deps.store.getDefinition(input.resource);
  if (!def) throw new NotFoundError(`resource type "${input.resource}" is not defined; POST /resource-definitions/ defines it`);
  if (def.name === PIPELINE_TYPE) {
    assertPipelineSpec(input.spec);
    if (deps.requiresImage && !(input.spec as unknown as PipelineSpec).image) {
      throw new BadRequestError('Resource validation failed: spec.image is required: on Kubernetes the steps run in this image');
    }
  }
  else assertValid(schemaValidators.validatorFor(def), input.spec, 'spec', 'Resource validation failed: ');
  if (input.pipeline !== undefined) {
    const chain = await deps.store.getDriverPipeline(input.pipeline);
    if (!chain) throw new NotFoundError(`pipeline "${input.pipeline}" not found`);
    if (chain.resource !== input.resource) {
      throw new BadRequestError(`pipeline "${input.pipeline}" is for resources of type "${chain.resource}", not "${input.resource}"`);
    }
    return chain;
  }
  return undefined;
}

export function planRun(
  deps: ApiDeps,
  input: ResourceInput,
  version: number,
  requestedBy: string | null = null,
  event: ResourceEvent = version === 1 ? 'create' : 'update',
  chain?: DriverPipeline,
): RunRecord {
  const builtIn = input.pipeline === undefined && deps.driverFor(input.resource) !== null;
  const stepNames = builtIn && input.resource === PIPELINE_TYPE ? (input.spec as unknown as PipelineSpec).steps.map((s) => s.name) : [];
  const run = newRun({
    runid: uuidv4(),
    resource: input.resource,
    name: input.name,
    version,
    spec: input.spec,
    pipeline: input.pipeline ?? null,
    // A resource that names a chain of external drivers is theirs, not the built-in one's.
    driver: input.pipeline === undefined ? deps.driverFor(input.resource) : null,
    stepNames,
    now: new Date().toISOString(),
    requestedBy,
  });
  // External drivers' runs carry one step per driver, with the event each is handed.
  if (!builtIn) run.steps = driverSteps(event, chain?.steps ?? null, input.resource);
  return run;
}
