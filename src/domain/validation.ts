// JSON Schema validation with ajv, and error messages that name the offending field the way
// a user wrote it (`spec.steps[1].command`), not ajv's JSON pointers.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BadRequestError } from './errors.ts';

// Built-in schemas are ours, so ajv's strict mode guards them against typos; schemas that
// users register may carry annotations ajv does not know (`example`, `x-...`), so those
// compile without strict mode.
const strictAjv = new Ajv({ allErrors: false, strict: true });
const lenientAjv = new Ajv({ allErrors: false, strict: false });

export type Validator = ValidateFunction;

export function compileBuiltIn(schema: object): Validator {
  return strictAjv.compile(schema);
}

export function compileUserSchema(schema: unknown, field = 'schema'): Validator {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new BadRequestError(`${field} must be a JSON Schema object`);
  }
  try {
    return lenientAjv.compile(schema);
  } catch (err) {
    throw new BadRequestError(`${field} is not a valid JSON Schema: ${(err as Error).message}`);
  }
}

function pointerToPath(base: string, pointer: string): string {
  let path = base;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) path += `[${part}]`;
    else path += path ? `.${part}` : part;
  }
  return path;
}

export function describeError(error: ErrorObject, base: string): string {
  const at = pointerToPath(base, error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${at ? `${at}.` : ''}${String(params.missingProperty)} is required`;
    case 'additionalProperties':
      return `${at ? `${at}.` : ''}${String(params.additionalProperty)} is not a known field`;
    case 'type':
      return `${at || 'body'} must be ${aOrAn(String(params.type))}`;
    default:
      return `${at || 'body'} ${error.message ?? 'is invalid'}`;
  }
}

function aOrAn(type: string): string {
  if (type === 'array' || type === 'object' || type === 'integer') return `an ${type}`;
  return `a ${type}`;
}

// Validates and throws a 400 naming the first offending field; `prefix` lets callers keep
// upstream's wording (`Resource validation failed: ...`).
export function assertValid(validate: Validator, value: unknown, base: string, prefix = ''): void {
  if (validate(value)) return;
  const first = validate.errors?.[0];
  const detail = first ? describeError(first, base) : `${base || 'body'} is invalid`;
  throw new BadRequestError(prefix + detail);
}
