// Compiled validators of user resource definitions, cached by the schema's content. Each
// definition name holds at most one entry, so the cache is bounded by the definitions that
// exist: a definition whose schema changes lets go of its old validator, one that is
// deleted lets go of its own, and equal schemas share one validator.
import { createHash } from 'node:crypto';
import { compileUserSchema, type JsonObject, type ResourceDefinition, type Validator } from '../domain/index.ts';

interface Entry {
  validator: Validator;
  users: Set<string>;
}

export class SchemaValidators {
  readonly #byHash = new Map<string, Entry>();
  readonly #hashOf = new Map<string, string>();

  /** The validator of `schema`, compiled (or reused) without tying it to a definition: a write's check. */
  check(schema: JsonObject, field = 'schema'): Validator {
    return this.#byHash.get(contentHash(schema))?.validator ?? compileUserSchema(schema, field);
  }

  /** The validator of a definition as it is now; a changed schema replaces the old one. */
  validatorFor(def: Pick<ResourceDefinition, 'name' | 'schema'>): Validator {
    const hash = contentHash(def.schema);
    let entry = this.#byHash.get(hash);
    if (!entry) {
      entry = { validator: compileUserSchema(def.schema, `resource definition "${def.name}" schema`), users: new Set() };
      this.#byHash.set(hash, entry);
    }
    if (this.#hashOf.get(def.name) !== hash) {
      this.forget(def.name);
      this.#hashOf.set(def.name, hash);
      entry.users.add(def.name);
    }
    return entry.validator;
  }

  /** Lets go of a definition's validator (changed or deleted), unless another one shares it. */
  forget(name: string): void {
    const hash = this.#hashOf.get(name);
    if (hash === undefined) return;
    this.#hashOf.delete(name);
    const entry = this.#byHash.get(hash);
    entry?.users.delete(name);
    if (entry && entry.users.size === 0) this.#byHash.delete(hash);
  }

  get size(): number {
    return this.#byHash.size;
  }
}

function contentHash(schema: JsonObject): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('base64url');
}
