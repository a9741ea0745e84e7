// The built-in `pipeline` resource type: the command-runner's spec. Step names become
// container names on Kubernetes, so they follow the DNS-1123 label rule and must be unique.
import { BadRequestError } from './errors.ts';
import { compileBuiltIn, assertValid } from './validation.ts';

export const PIPELINE_TYPE = 'pipeline';
export const COMMAND_RUNNER = 'command-runner';

export interface PipelineStep {
  name: string;
  command: string;
}

export interface PipelineSpec {
  image?: string;
  steps: PipelineStep[];
  timeoutSeconds?: number;
  retries?: number;
  serviceAccountName?: string;
  env?: { name: string; value: string }[];
  resources?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  };
}

// Limits of what the runtime can honour (documented in docs/limits.md):
// - a timer fires at most 2^31-1 ms ahead (Node's setTimeout fires at once beyond that);
export const MAX_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
// - Linux takes one argument of at most 128 KiB (MAX_ARG_STRLEN); a character may take 4
//   bytes in UTF-8, so 32,768 characters always fit. Commands and env values alike.
export const MAX_COMMAND_LENGTH = 32_768;
export const MAX_STEPS = 100;
export const MAX_ENV = 256;

const quantityMap = {
  type: 'object',
  description: 'Kubernetes resource quantities by resource name (cpu, memory, ...).',
  additionalProperties: { type: 'string', minLength: 1 },
} as const;

export const pipelineSpecSchema = {
  type: 'object',
  description: 'Runs each step in order in one container image; the first failing step ends the run.',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    image: { type: 'string', minLength: 1, description: 'Container image the steps run in (ignored in local mode).' },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_STEPS,
      description: 'Steps run one after another with /bin/sh -c in a shared workspace.',
      items: {
        type: 'object',
        required: ['name', 'command'],
        additionalProperties: false,
        properties: {
          name: {
            type: 'string',
            minLength: 1,
            maxLength: 63,
            pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
            description: 'Step name: a lowercase DNS-1123 label, unique within the pipeline.',
          },
          command: { type: 'string', minLength: 1, maxLength: MAX_COMMAND_LENGTH, description: 'Shell command, run as /bin/sh -c "<command>".' },
        },
      },
    },
    timeoutSeconds: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_SECONDS, description: 'The whole run fails with DeadlineExceeded after this many seconds.' },
    retries: { type: 'integer', minimum: 0, maximum: 10, description: 'How many times a failed run is retried on Kubernetes.' },
    serviceAccountName: { type: 'string', minLength: 1, maxLength: 253, description: 'Service account for the run pod; no token is mounted unless one is named.' },
    env: {
      type: 'array',
      maxItems: MAX_ENV,
      description: 'Environment variables for every step.',
      items: {
        type: 'object',
        required: ['name', 'value'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          value: { type: 'string', maxLength: MAX_COMMAND_LENGTH },
        },
      },
    },
    resources: {
      type: 'object',
      additionalProperties: false,
      description: 'Requests and limits for the step containers.',
      properties: { requests: quantityMap, limits: quantityMap },
    },
  },
} as const;

const validatePipelineSpec = compileBuiltIn(pipelineSpecSchema);

// JSON Schema cannot say "unique by name", so that rule is checked here after ajv.
export function assertPipelineSpec(spec: unknown, prefix = 'Resource validation failed: '): asserts spec is PipelineSpec {
  assertValid(validatePipelineSpec, spec, 'spec', prefix);
  const seen = new Set<string>();
  const { steps, env = [] } = spec as PipelineSpec;
  // No process can be given a NUL byte (C strings end there): refused here, not left to
  // fail at spawn time with the run half started.
  steps.forEach((step, i) => {
    if (step.command.includes('\0')) throw new BadRequestError(`${prefix}spec.steps[${i}].command contains a NUL character, which no process can be given`);
  });
  env.forEach((entry, i) => {
    if (entry.value.includes('\0')) throw new BadRequestError(`${prefix}spec.env[${i}].value contains a NUL character, which no process can be given`);
  });
  steps.forEach((step, i) => {
    if (seen.has(step.name)) throw new BadRequestError(`${prefix}spec.steps[${i}].name "${step.name}" is used by an earlier step`);
    seen.add(step.name);
  });
}

export const builtInPipelineDefinition = {
  name: PIPELINE_TYPE,
  version: '1.0.0',
  description: "The command-runner's pipeline: an image and steps run in order, stopping at the first failure.",
  schema: pipelineSpecSchema,
};

// Upstream's command-runner applies its own `pipeline` definition at start-up and stops if
// that fails. Such an apply is accepted when the schema it brings accepts what the built-in
// one does (the seed's pipeline, image and steps), and the built-in definition is kept, so
// nothing the built-in driver relies on changes.
const compatibilitySamples = [
  { image: 'jimjuniorb/hello-node:1.2.3', steps: [{ name: 'print-working-directory', command: 'pwd' }, { name: 'list-files', command: 'ls -l' }] },
  { image: 'alpine', steps: [{ name: 'one', command: 'true' }] },
];

export function acceptsBuiltInPipelines(validate: (value: unknown) => boolean): boolean {
  return compatibilitySamples.every((sample) => validate(sample));
}
