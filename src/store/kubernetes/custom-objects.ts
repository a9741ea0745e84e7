// Thin typed access to Conveyor's custom resources in one namespace, with Kubernetes'
// errors turned into Conveyor's (404 → NotFound, 409 → Conflict, 422 → BadRequest) so
// callers speak one language and both modes answer a mistake with the same status.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { BadRequestError, ConflictError, NotFoundError } from '../../domain/index.ts';
import { GROUP, VERSION } from '../../kube/names.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  // A string when read through CustomObjectsApi (which does not deserialize), a Date
  // through typed clients; typed as client-node does.
  creationTimestamp?: Date;
  deletionTimestamp?: Date;
  finalizers?: string[];
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface CustomObject<Spec = Record<string, unknown>, Status = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

function translate(err: unknown, what: string): never {
  if (isStatus(err, 404)) throw new NotFoundError(`${what} not found`);
  if (isStatus(err, 409)) throw new ConflictError(`${what} already exists or was changed concurrently`);
  if (err instanceof ApiException && err.code === 422) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      // keep the raw body
    }
    // 422 is the API server refusing the object as invalid: the client's mistake, a 400
    // like local mode's validation answers (409 would tell it to retry).
    throw new BadRequestError(`Kubernetes refused ${what}: ${message}`);
  }
  throw err;
}

export class CustomObjects<Spec, Status> {
  private readonly api: CustomObjectsApi;
  readonly namespace: string;
  readonly plural: string;
  readonly kind: string;

  constructor(kc: KubeConfig, namespace: string, kind: string, plural: string) {
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.namespace = namespace;
    this.kind = kind;
    this.plural = plural;
  }

  private target(name?: string) {
    return { group: GROUP, version: VERSION, namespace: this.namespace, plural: this.plural, ...(name ? { name } : {}) };
  }

  async get(name: string): Promise<CustomObject<Spec, Status> | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...this.target(name), name })) as CustomObject<Spec, Status>;
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  // The object as the API server has it now (a cached subclass answers `get` from its cache).
  fresh(name: string): Promise<CustomObject<Spec, Status> | undefined> {
    return this.get(name);
  }

  async list(labelSelector?: string): Promise<CustomObject<Spec, Status>[]> {
    const items: CustomObject<Spec, Status>[] = [];
    let next: string | undefined;
    do {
      const page = (await this.api.listNamespacedCustomObject({ ...this.target(), labelSelector, limit: 500, _continue: next })) as {
        items: CustomObject<Spec, Status>[];
        metadata?: { _continue?: string; continue?: string };
      };
      items.push(...page.items);
      next = page.metadata?.continue ?? page.metadata?._continue;
    } while (next);
    return items;
  }

  async create(metadata: ObjectMeta, spec: Spec): Promise<CustomObject<Spec, Status>> {
    try {
      return (await this.api.createNamespacedCustomObject({
        ...this.target(),
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: this.kind, metadata, spec },
      })) as CustomObject<Spec, Status>;
    } catch (err) {
      translate(err, `${this.kind} ${metadata.name}`);
    }
  }

  async replace(object: CustomObject<Spec, Status>): Promise<CustomObject<Spec, Status>> {
    try {
      return (await this.api.replaceNamespacedCustomObject({ ...this.target(object.metadata.name), name: object.metadata.name, body: object })) as CustomObject<Spec, Status>;
    } catch (err) {
      translate(err, `${this.kind} ${object.metadata.name}`);
    }
  }

  async replaceStatus(object: CustomObject<Spec, Status>): Promise<CustomObject<Spec, Status>> {
    try {
      return (await this.api.replaceNamespacedCustomObjectStatus({ ...this.target(object.metadata.name), name: object.metadata.name, body: object })) as CustomObject<
        Spec,
        Status
      >;
    } catch (err) {
      translate(err, `${this.kind} ${object.metadata.name} status`);
    }
  }

  async mergePatch(name: string, patch: object): Promise<CustomObject<Spec, Status>> {
    try {
      return (await this.api.patchNamespacedCustomObject(
        { ...this.target(name), name, body: patch },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as CustomObject<Spec, Status>;
    } catch (err) {
      translate(err, `${this.kind} ${name}`);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...this.target(name), name, propagationPolicy: 'Background' });
    } catch (err) {
      translate(err, `${this.kind} ${name}`);
    }
  }
}
