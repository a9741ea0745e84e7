// JSON Schema validation with ajv, and error messages that name the offending field the way
// a user wrote it (`spec.steps[1].command`), not ajv's JSON pointers.
import { Ajv, type CodeOptions, type ErrorObject, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { BadRequestError } from './errors.ts';

// Built-in schemas are ours, so ajv's strict mode guards them against typos.
const strictAjv = new Ajv({ allErrors: false, strict: true });

export type Validator = ValidateFunction;

export function compileBuiltIn(schema: object): Validator {
  return strictAjv.compile(schema);
}

// A pattern RE2 cannot run (a backreference, a lookaround): the user is told which one.
class UnsupportedPattern extends Error {
  readonly pattern: string;
  constructor(pattern: string, reason: string) {
    super(reason);
    this.pattern = pattern;
  }
}

// User patterns run on RE2 (through re2js), whose matching time is linear in the input:
// a pattern like `^(a+)+$` cannot freeze the event loop the way it does JavaScript's
// backtracking RegExp. ajv calls the engine once per pattern at compile time; `toString`
// is ajv's key for sharing one compiled pattern among equal ones.
const re2Engine: NonNullable<CodeOptions['regExp']> = Object.assign(
  (pattern: string) => {
    let re: RE2JS;
    try {
      re = RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch (err) {
      throw new UnsupportedPattern(pattern, (err as Error).message);
    }
    return { test: (input: string) => re.test(input), toString: () => `re2:${pattern}` };
  },
  { code: 're2' },
);

// Only checks user schemas against the JSON Schema meta-schema; it compiles none, so it
// holds nothing of theirs.
const metaAjv = new Ajv({ strict: false });

// User schemas may carry annotations ajv does not know (`example`, `x-...`), so they
// compile without strict mode. Each compiles in an Ajv of its own: a shared one keeps every
// schema it ever compiled (and refuses a second schema with the same `$id`), so memory
// grew with each definition write and a schema with `$id` could never be replaced. A
// validator and its Ajv are freed together once nothing holds the validator.
export function compileUserSchema(schema: unknown, field = 'schema'): Validator {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new BadRequestError(`${field} must be a JSON Schema object`);
  }
  try {
    if (!metaAjv.validateSchema(schema)) throw new Error(metaAjv.errorsText(metaAjv.errors, { dataVar: field }));
    const ajv = new Ajv({ allErrors: false, strict: false, validateSchema: false, code: { regExp: re2Engine } });
    return ajv.compile(schema);
  } catch (err) {
    if (err instanceof UnsupportedPattern) {
      throw new BadRequestError(`${field} has a pattern "${err.pattern}" that RE2 cannot run (${err.message}); patterns must be RE2 syntax, which matches in linear time`);
    }
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
