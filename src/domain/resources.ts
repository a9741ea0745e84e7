// Resources, resource definitions and driver pipelines: the shapes users send, and the
// ajv schemas that check request bodies before anything is stored.
import type { JsonObject } from './json.ts';
import { compileBuiltIn, assertValid } from './validation.ts';
import { assertName } from './names.ts';
import { BadRequestError } from './errors.ts';

export interface ResourceDefinition {
  id: string;
  name: string;
  version: string;
  description: string;
  schema: JsonObject;
  builtIn: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface ResourceMetadata {
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Resource {
  name: string;
  resource: string;
  spec: JsonObject;
  pipeline?: string;
  metadata: ResourceMetadata;
}

export interface DriverPipelineStep {
  id: string;
  name: string;
  driver: string;
}

export interface DriverPipeline {
  name: string;
  resource: string;
  description: string;
  steps: DriverPipelineStep[];
  createdAt: string;
  updatedAt: string;
}

export interface BroadcastMessage {
  id: string;
  event: string;
  payload: JsonObject;
  runId: string;
  createdAt: string;
}

const nameField = { type: 'string', minLength: 1 } as const;

// Upstream's clients send their whole `types.Resource`: `"id": ""`, `"metadata": null` and,
// for a resource outside any driver pipeline, `"pipeline": ""`. The server owns all three, so
// they are accepted and ignored; an empty pipeline means none.
const resourceFields = {
  id: { type: 'string' },
  name: nameField,
  resource: nameField,
  spec: { type: 'object' },
  pipeline: { type: 'string' },
  metadata: { anyOf: [{ type: 'object' }, { type: 'null' }] },
} as const;

// A create names everything; a replace takes its type and name from the path.
const resourceBody = compileBuiltIn({ type: 'object', required: ['name', 'resource', 'spec'], additionalProperties: false, properties: resourceFields });
const resourceReplaceBody = compileBuiltIn({ type: 'object', required: ['spec'], additionalProperties: false, properties: resourceFields });

const definitionBody = compileBuiltIn({
  type: 'object',
  required: ['name', 'schema'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    name: nameField,
    version: { type: 'string' },
    description: { type: 'string' },
    schema: { type: 'object' },
  },
});

const driverPipelineBody = compileBuiltIn({
  type: 'object',
  required: ['name', 'resource', 'steps'],
  additionalProperties: false,
  properties: {
    name: nameField,
    resource: nameField,
    description: { type: 'string' },
    steps: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['id', 'name', 'driver'],
        additionalProperties: false,
        properties: { id: nameField, name: nameField, driver: nameField },
      },
    },
  },
});

const broadcastBody = compileBuiltIn({
  type: 'object',
  required: ['event', 'payload', 'run_id'],
  additionalProperties: false,
  properties: {
    event: { type: 'string', minLength: 1 },
    payload: { type: 'object' },
    id: { type: 'string' },
    run_id: { type: 'string', minLength: 1 },
  },
});

export interface ResourceInput {
  name: string;
  resource: string;
  spec: JsonObject;
  pipeline?: string;
}

function pipelineField(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  assertName('pipeline', value);
  return value;
}

export function parseResourceInput(body: unknown): ResourceInput {
  assertValid(resourceBody, body, '');
  const input = body as ResourceInput;
  assertName('name', input.name);
  assertName('resource', input.resource);
  const pipeline = pipelineField(input.pipeline);
  return pipeline === undefined ? { name: input.name, resource: input.resource, spec: input.spec } : { name: input.name, resource: input.resource, spec: input.spec, pipeline };
}

// PUT names the resource in the path; a body that also names it must agree, so a
// copy-pasted body for another resource cannot silently overwrite this one.
export function parseResourceReplacement(body: unknown, type: string, name: string): ResourceInput {
  assertValid(resourceReplaceBody, body, '');
  const input = body as Partial<ResourceInput> & { spec: JsonObject };
  if (input.name !== undefined && input.name !== name) {
    throw new BadRequestMismatch('name', input.name, name);
  }
  if (input.resource !== undefined && input.resource !== type) {
    throw new BadRequestMismatch('resource', input.resource, type);
  }
  const pipeline = pipelineField(input.pipeline);
  return pipeline === undefined ? { name, resource: type, spec: input.spec } : { name, resource: type, spec: input.spec, pipeline };
}

class BadRequestMismatch extends BadRequestError {
  constructor(field: string, given: string, path: string) {
    super(`${field} "${given}" in the body does not match "${path}" in the path`);
  }
}

export interface DefinitionInput {
  name: string;
  version: string;
  description: string;
  schema: JsonObject;
}

export function parseDefinitionInput(body: unknown, pathName?: string): DefinitionInput {
  assertValid(definitionBody, body, '');
  const input = body as Partial<DefinitionInput> & { name: string; schema: JsonObject };
  if (pathName !== undefined && input.name !== pathName) throw new BadRequestMismatch('name', input.name, pathName);
  assertName('name', input.name);
  return { name: input.name, version: input.version || '1.0.0', description: input.description ?? '', schema: input.schema };
}

// What the API answers for a resource: upstream's `types.Resource` has `metadata` as a map
// of strings, so its clients cannot decode a number there: every metadata value is a string.
export interface PresentedResource {
  name: string;
  resource: string;
  spec: JsonObject;
  pipeline?: string;
  metadata: Record<string, string>;
}

export function presentResource(resource: Resource): PresentedResource {
  const { metadata } = resource;
  return {
    ...resource,
    metadata: { version: String(metadata.version), createdAt: metadata.createdAt, updatedAt: metadata.updatedAt },
  };
}

export interface DriverPipelineInput {
  name: string;
  resource: string;
  description: string;
  steps: DriverPipelineStep[];
}

export function parseDriverPipelineInput(body: unknown, pathName?: string): DriverPipelineInput {
  assertValid(driverPipelineBody, body, '');
  const input = body as Omit<DriverPipelineInput, 'description'> & { description?: string };
  if (pathName !== undefined && input.name !== pathName) throw new BadRequestMismatch('name', input.name, pathName);
  assertName('name', input.name);
  assertName('resource', input.resource);
  const ids = new Set<string>();
  input.steps.forEach((step, i) => {
    assertName(`steps[${i}].driver`, step.driver);
    if (ids.has(step.id)) throw new BadRequestError(`steps[${i}].id "${step.id}" is used by an earlier step`);
    ids.add(step.id);
  });
  return { name: input.name, resource: input.resource, description: input.description ?? '', steps: input.steps };
}

export interface BroadcastInput {
  id?: string;
  event: string;
  payload: JsonObject;
  runId: string;
}

export function parseBroadcastInput(body: unknown): BroadcastInput {
  assertValid(broadcastBody, body, '');
  const input = body as { id?: string; event: string; payload: JsonObject; run_id: string };
  return { id: input.id, event: input.event, payload: input.payload, runId: input.run_id };
}
