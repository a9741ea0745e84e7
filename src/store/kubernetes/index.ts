// The store of Kubernetes mode: Conveyor's state as custom resources in one namespace.
// Given informers (`caches`, as the server runs it), reads are answered from their caches
// plus this store's own writes (cached-objects.ts), so that a client reading right after a
// write sees it and no GET costs an API-server request; reads that feed a compare-and-swap
// write ask the API server (`fresh`). Without caches every read goes to the API server.
import type { KubeConfig } from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import {
  COMMAND_RUNNER,
  BadRequestError,
  ConflictError,
  ConveyorError,
  NotFoundError,
  PIPELINE_TYPE,
  RUN_PHASES,
  assertTransition,
  builtInPipelineDefinition,
  type BroadcastInput,
  type BroadcastMessage,
  type DefinitionInput,
  type DriverPipeline,
  type DriverPipelineInput,
  type JsonObject,
  type PipelineSpec,
  type Resource,
  type ResourceDefinition,
  type ResourceInput,
  type RunPhase,
  type RunRecord,
  toPublicRun,
} from '../../domain/index.ts';
import { CustomResources, Labels, MANAGED_BY, jobNameFor, resourceObjectName } from '../../kube/names.ts';
import type { RunFilter, RunListener, RunPage, Store } from '../index.ts';
import { background, reportBackgroundError, retrying } from '../../observability/background.ts';
import { CachedObjects, type ObjectSource } from './cached-objects.ts';
import { CustomObjects, type CustomObject } from './custom-objects.ts';
import { RunIndex } from './run-index.ts';
import {
  Annotations,
  RunLabels,
  definitionFromObject,
  genericResource,
  pipelineResource,
  runFromObject,
  runMetadata,
  runSpecOf,
  runStatusOf,
  type DefinitionSpec,
  type GenericResourceSpec,
  type PipelineStatus,
  type RunObject,
  type RunSpec,
  type RunStatus,
} from './mapping.ts';

const builtInDefinition: ResourceDefinition = {
  id: 'builtin-pipeline',
  ...builtInPipelineDefinition,
  schema: builtInPipelineDefinition.schema as unknown as JsonObject,
  builtIn: true,
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(0).toISOString(),
};

// The object a resource would be, or none when the type or name could not name one (such a
// resource cannot exist): a lookup answers "not found", as local mode does, not a 500.
function existingObjectName(type: string, name: string): string | undefined {
  try {
    return resourceObjectName(type, name);
  } catch {
    return undefined;
  }
}

export interface KubernetesStoreOptions {
  kc: KubeConfig;
  namespace: string;
  // Driver pipelines and broadcast messages have no custom resource yet; they are kept
  // in the embedded store beside the log archive.
  local: Pick<Store, 'listDriverPipelines' | 'getDriverPipeline' | 'createDriverPipeline' | 'replaceDriverPipeline' | 'deleteDriverPipeline' | 'addBroadcast'>;
  // Informers of the four kinds: when given, every read is answered from them (and this
  // store's own writes), never from the API server; writes still go to the API server.
  caches?: StoreCaches;
}

export interface StoreCaches {
  runs: ObjectSource<CustomObject<RunSpec, RunStatus>>;
  pipelines: ObjectSource<CustomObject<PipelineSpec, PipelineStatus>>;
  resources: ObjectSource<CustomObject<GenericResourceSpec, PipelineStatus>>;
  definitions: ObjectSource<CustomObject<DefinitionSpec, Record<string, unknown>>>;
}

export class KubernetesStore implements Store {
  readonly namespace: string;
  readonly runs: CustomObjects<RunSpec, RunStatus>;
  readonly pipelines: CustomObjects<PipelineSpec, PipelineStatus>;
  private readonly resources: CustomObjects<GenericResourceSpec, PipelineStatus>;
  private readonly definitions: CustomObjects<DefinitionSpec, Record<string, unknown>>;
  private readonly local: KubernetesStoreOptions['local'];
  private readonly listeners = new Set<RunListener>();
  // With caches: the runs, ready for paging and counting.
  private readonly runIndex?: RunIndex;

  constructor(options: KubernetesStoreOptions) {
    const { kc, namespace, caches } = options;
    this.namespace = namespace;
    const { Run, Pipeline, Resource, ResourceDefinition } = CustomResources;
    if (caches) {
      const runs = new CachedObjects(kc, namespace, Run.kind, Run.plural, caches.runs);
      const index = new RunIndex();
      runs.onChange((name) => index.set(name, runs.peek(name)));
      for (const obj of runs.listNow()) index.set(obj.metadata.name, obj);
      this.runIndex = index;
      this.runs = runs;
      this.pipelines = new CachedObjects(kc, namespace, Pipeline.kind, Pipeline.plural, caches.pipelines);
      this.resources = new CachedObjects(kc, namespace, Resource.kind, Resource.plural, caches.resources);
      this.definitions = new CachedObjects(kc, namespace, ResourceDefinition.kind, ResourceDefinition.plural, caches.definitions);
    } else {
      this.runs = new CustomObjects(kc, namespace, Run.kind, Run.plural);
      this.pipelines = new CustomObjects(kc, namespace, Pipeline.kind, Pipeline.plural);
      this.resources = new CustomObjects(kc, namespace, Resource.kind, Resource.plural);
      this.definitions = new CustomObjects(kc, namespace, ResourceDefinition.kind, ResourceDefinition.plural);
    }
    this.local = options.local;
  }

  async listDefinitions(): Promise<ResourceDefinition[]> {
    const defs = (await this.definitions.list()).map(definitionFromObject);
    return [builtInDefinition, ...defs].sort((a, b) => a.name.localeCompare(b.name));
  }

  async getDefinition(name: string): Promise<ResourceDefinition | undefined> {
    if (name === PIPELINE_TYPE) return builtInDefinition;
    const obj = await this.definitions.get(name);
    return obj ? definitionFromObject(obj) : undefined;
  }

  async createDefinition(input: DefinitionInput): Promise<ResourceDefinition> {
    if (input.name === PIPELINE_TYPE || (await this.definitions.get(input.name))) {
      throw new ConflictError(`resource definition "${input.name}" already exists`);
    }
    const obj = await this.definitions.create(
      { name: input.name, labels: { [Labels.managedBy]: MANAGED_BY }, annotations: { [Annotations.createdAt]: new Date().toISOString() } },
      { version: input.version, description: input.description, schema: input.schema },
    );
    return definitionFromObject(obj);
  }

  async applyDefinition(input: DefinitionInput): Promise<{ definition: ResourceDefinition; created: boolean }> {
    if (await this.getDefinition(input.name)) return { definition: await this.replaceDefinition(input), created: false };
    return { definition: await this.createDefinition(input), created: true };
  }

  async replaceDefinition(input: DefinitionInput): Promise<ResourceDefinition> {
    if (input.name === PIPELINE_TYPE) throw new ConflictError(`resource definition "${input.name}" is built in and cannot be changed`);
    const obj = await this.definitions.fresh(input.name);
    if (!obj) throw new NotFoundError(`resource definition "${input.name}" not found`);
    obj.spec = { version: input.version, description: input.description, schema: input.schema };
    obj.metadata.annotations = { ...obj.metadata.annotations, [Annotations.createdAt]: new Date().toISOString() };
    return definitionFromObject(await this.definitions.replace(obj));
  }

  async deleteDefinition(name: string): Promise<void> {
    if (name === PIPELINE_TYPE) throw new ConflictError(`resource definition "${name}" is built in and cannot be deleted`);
    if (!(await this.definitions.get(name))) throw new NotFoundError(`resource definition "${name}" not found`);
    const count = (await this.resources.list(`${Labels.resourceType}=${name}`)).length;
    if (count > 0) throw new ConflictError(`resource definition "${name}" still has ${count} resource(s); delete them first`);
    await this.definitions.delete(name);
  }

  // Writes the Run of a resource version; a Run already created under that name (by the
  // controller, for the same generation) is the same run, not a duplicate.
  async ensureRun(run: RunRecord, ownerUid: string): Promise<void> {
    try {
      await this.runs.create(runMetadata(run, ownerUid), runSpecOf(run));
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const existing = await this.runs.fresh(run.runid);
      if (!existing || existing.metadata.labels?.[RunLabels.ownerUid] !== ownerUid) throw err;
    }
    this.emit(run.runid);
  }

  async createResource(input: ResourceInput, run: RunRecord): Promise<Resource> {
    const stamp = new Date().toISOString();
    if (input.resource === PIPELINE_TYPE) {
      const annotations: Record<string, string> = {
        [Annotations.createdAt]: stamp,
        [Annotations.nextRunId]: run.runid,
        [Annotations.nextRunGeneration]: '1',
      };
      if (input.pipeline) annotations[Annotations.driverPipeline] = input.pipeline;
      if (run.requestedBy) annotations[Annotations.requestedBy] = run.requestedBy;
      let created;
      try {
        created = await this.pipelines.create({ name: input.name, labels: { [Labels.managedBy]: MANAGED_BY }, annotations }, input.spec as unknown as PipelineSpec);
      } catch (err) {
        if (err instanceof ConflictError && (await this.pipelines.get(input.name))) {
          throw new ConflictError(`resource pipeline/${input.name} already exists; PUT /resources/pipeline/${input.name} replaces it`);
        }
        throw err;
      }
      try {
        await this.ensureRun(run, created.metadata.uid!);
      } catch (err) {
        // Both or neither: a Pipeline without its run would be started by the controller
        // under another id than the one the client was never given.
        await this.pipelines.delete(input.name).catch((cleanup: unknown) => reportBackgroundError('undo-pipeline-create', cleanup));
        throw err;
      }
      return pipelineResource(created);
    }
    const name = resourceObjectName(input.resource, input.name);
    const spec: GenericResourceSpec = { type: input.resource, spec: input.spec, version: 1, ...(input.pipeline ? { pipeline: input.pipeline } : {}) };
    let created;
    try {
      created = await this.resources.create(
        { name, labels: { [Labels.managedBy]: MANAGED_BY, [Labels.resourceType]: input.resource, [Labels.resourceName]: input.name }, annotations: { [Annotations.createdAt]: stamp } },
        spec,
      );
    } catch (err) {
      if (err instanceof ConflictError) throw new ConflictError(`resource ${input.resource}/${input.name} already exists; PUT /resources/${input.resource}/${input.name} replaces it`);
      throw err;
    }
    try {
      await this.ensureRun(run, created.metadata.uid!);
    } catch (err) {
      await this.resources.delete(name).catch((cleanup: unknown) => reportBackgroundError('undo-resource-create', cleanup));
      throw err;
    }
    return genericResource(created);
  }

  async replaceResource(input: ResourceInput, makeRun: (version: number) => RunRecord): Promise<{ resource: Resource; run: RunRecord }> {
    if (input.resource === PIPELINE_TYPE) {
      // The compare-and-swap below also loses to the controller's own status writes, which
      // bump resourceVersion: read again and retry those, a few times, before answering 409.
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.replacePipeline(input, makeRun);
        } catch (err) {
          if (!(err instanceof ConflictError) || attempt >= 5) throw err;
        }
      }
    }
    return this.replaceGenericResource(input, makeRun);
  }

  private async replacePipeline(input: ResourceInput, makeRun: (version: number) => RunRecord): Promise<{ resource: Resource; run: RunRecord }> {
    {
      const current = await this.pipelines.fresh(input.name);
      if (!current) throw new NotFoundError(`resource pipeline/${input.name} not found`);
      const generation = current.metadata.generation ?? 1;
      if (isDeepStrictEqual(current.spec, input.spec) && (current.metadata.annotations?.[Annotations.driverPipeline] ?? undefined) === input.pipeline) {
        // A PUT of the spec the Pipeline has is a new version with a new run, as in local mode
        // (the web page's "Run again" is such a PUT). Kubernetes keeps the generation of an
        // unchanged spec, so the write bumps `runRequest`, a field beside `spec`: any change
        // outside metadata and status gives the object a new generation. (Compared as values:
        // the API server hands objects back with their keys sorted.) `kubectl apply` of an
        // unchanged manifest still starts nothing: it does not touch the field.
        const withRequest = current as typeof current & { runRequest?: number };
        withRequest.runRequest = (withRequest.runRequest ?? 0) + 1;
      }
      const run = makeRun(generation + 1);
      current.spec = input.spec as unknown as PipelineSpec;
      current.metadata.annotations = {
        ...current.metadata.annotations,
        [Annotations.createdAt]: new Date().toISOString(),
        [Annotations.nextRunId]: run.runid,
        [Annotations.nextRunGeneration]: String(generation + 1),
      };
      if (input.pipeline) current.metadata.annotations[Annotations.driverPipeline] = input.pipeline;
      else delete current.metadata.annotations[Annotations.driverPipeline];
      if (run.requestedBy) current.metadata.annotations[Annotations.requestedBy] = run.requestedBy;
      else delete current.metadata.annotations[Annotations.requestedBy];
      // resourceVersion makes this a compare-and-swap: the generation we announced is the
      // one the write creates, or the write fails with a conflict.
      const updated = await this.pipelines.replace(current);
      if ((updated.metadata.generation ?? generation + 1) === generation) {
        // Only an installed CRD without `runRequest` (older than this server) prunes the
        // field and keeps the generation: say so rather than give two runs one version.
        throw new ConveyorError(500, 'the installed Pipeline CRD is older than this server (it has no runRequest field); apply manifests/crds/ to run an unchanged pipeline again');
      }
      await this.ensureRun({ ...run, version: updated.metadata.generation ?? generation + 1 }, updated.metadata.uid!);
      return { resource: pipelineResource(updated), run: { ...run, version: updated.metadata.generation ?? generation + 1 } };
    }
  }

  private async replaceGenericResource(input: ResourceInput, makeRun: (version: number) => RunRecord): Promise<{ resource: Resource; run: RunRecord }> {
    const name = existingObjectName(input.resource, input.name);
    const current = name === undefined ? undefined : await this.resources.fresh(name);
    if (!current) throw new NotFoundError(`resource ${input.resource}/${input.name} not found`);
    const version = current.spec.version + 1;
    const run = makeRun(version);
    current.spec = { type: input.resource, spec: input.spec, version, ...(input.pipeline ? { pipeline: input.pipeline } : {}) };
    current.metadata.annotations = { ...current.metadata.annotations, [Annotations.createdAt]: new Date().toISOString() };
    const updated = await this.resources.replace(current);
    await this.ensureRun(run, updated.metadata.uid!);
    return { resource: genericResource(updated), run };
  }

  async getResource(type: string, name: string, version?: number): Promise<Resource | undefined> {
    if (type === PIPELINE_TYPE) {
      const obj = await this.pipelines.get(name);
      if (!obj || version === undefined || version === obj.metadata.generation) return obj ? pipelineResource(obj) : undefined;
      // Earlier versions live on in the runs they started, each with its frozen spec.
      const runs = await this.runs.list(`${RunLabels.ownerUid}=${obj.metadata.uid},${RunLabels.version}=${version}`);
      const run = runs[0];
      return run ? pipelineResource(obj, version, run.spec.pipelineSpec) : undefined;
    }
    const objectName = existingObjectName(type, name);
    const obj = objectName === undefined ? undefined : await this.resources.get(objectName);
    if (!obj) return undefined;
    const resource = genericResource(obj);
    if (version === undefined || version === resource.metadata.version) return resource;
    const runs = await this.runs.list(`${RunLabels.ownerUid}=${obj.metadata.uid},${RunLabels.version}=${version}`);
    const run = runs[0];
    return run ? { ...resource, spec: run.spec.pipelineSpec, metadata: { ...resource.metadata, version } } : undefined;
  }

  async listResources(type: string): Promise<Resource[]> {
    if (type === PIPELINE_TYPE) return (await this.pipelines.list()).map((p) => pipelineResource(p)).sort((a, b) => a.name.localeCompare(b.name));
    return (await this.resources.list(`${Labels.resourceType}=${type}`)).map(genericResource).sort((a, b) => a.name.localeCompare(b.name));
  }

  async deleteResource(type: string, name: string, run?: RunRecord): Promise<void> {
    if (type === PIPELINE_TYPE) await this.pipelines.delete(name);
    else {
      const objectName = existingObjectName(type, name);
      if (objectName === undefined) throw new NotFoundError(`resource ${type}/${name} not found`);
      await this.resources.delete(objectName);
    }
    // The deleted object owns nothing any more: the run of its deletion stands alone.
    if (run) await this.ensureRun(run, '');
  }

  async getRun(runid: string): Promise<RunRecord | undefined> {
    if (this.runIndex) return this.runIndex.get(runid);
    const obj = await this.runs.get(runid);
    return obj ? runFromObject(obj) : undefined;
  }

  async listRuns(filter: RunFilter): Promise<RunPage> {
    if (this.runIndex) return this.runIndex.page(filter);
    const selector = [`${Labels.managedBy}=${MANAGED_BY}`];
    if (filter.resource) selector.push(`${Labels.resourceType}=${filter.resource}`);
    if (filter.name) selector.push(`${Labels.resourceName}=${filter.name}`);
    const all = (await this.runs.list(selector.join(','))).map(runFromObject).filter((r) => !filter.phase || r.phase === filter.phase);
    // Newest first; the run id breaks ties so the order (and the cursor) is total.
    const key = (r: RunRecord) => `${r.createdAt}|${r.runid}`;
    all.sort((a, b) => key(b).localeCompare(key(a)));
    const cursor = filter.continue ? Buffer.from(filter.continue, 'base64url').toString() : undefined;
    if (cursor !== undefined && !/^[^|]+\|[0-9a-f-]{36}$/.test(cursor)) throw new BadRequestError(`continue "${filter.continue}" is not a token this server issued`);
    const start = cursor ? all.findIndex((r) => key(r) < cursor) : 0;
    const rest = start < 0 ? [] : all.slice(start);
    const records = rest.slice(0, filter.limit);
    const page: RunPage = { items: records.map(toPublicRun) };
    if (rest.length > filter.limit) page.continue = Buffer.from(key(records.at(-1)!)).toString('base64url');
    return page;
  }

  // Oldest first (the API server lists by name, i.e. by run id), so that nextPending hands
  // out the oldest runs, as the embedded store does.
  async runsInPhase(...phases: RunPhase[]): Promise<RunRecord[]> {
    if (this.runIndex) return this.runIndex.inPhase(phases);
    const key = (r: RunRecord) => `${r.createdAt}|${r.runid}`;
    const runs = (await this.runs.list(`${Labels.managedBy}=${MANAGED_BY}`)).map(runFromObject).filter((r) => phases.includes(r.phase));
    return runs.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  async nextPending(driver: string, limit: number): Promise<RunRecord[]> {
    return (await this.runsInPhase('Pending')).filter((r) => r.driver === driver).slice(0, limit);
  }

  async countRunsByPhase(): Promise<Record<RunPhase, number>> {
    if (this.runIndex) return this.runIndex.countByPhase();
    const counts = Object.fromEntries(RUN_PHASES.map((p) => [p, 0])) as Record<RunPhase, number>;
    for (const run of await this.runsInPhase(...RUN_PHASES)) counts[run.phase]++;
    return counts;
  }

  // Status writes are compare-and-swap on resourceVersion; a conflict re-reads and retries.
  async updateRun(runid: string, change: (run: RunRecord) => RunRecord): Promise<RunRecord> {
    for (let attempt = 0; ; attempt++) {
      const obj = await this.runs.fresh(runid);
      if (!obj) throw new NotFoundError(`run ${runid} not found`);
      const current = runFromObject(obj);
      const next = change(current);
      assertTransition(current, next.phase);
      obj.status = runStatusOf(next, obj.metadata.generation, obj.status);
      if (next.driver === COMMAND_RUNNER) obj.status.jobName = jobNameFor(runid);
      try {
        await this.runs.replaceStatus(obj);
        this.emit(runid);
        return next;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      }
    }
  }

  // The controller's status write, the only one a Run gets once it exists: from the object
  // the reconcile read (its resourceVersion makes the write a compare-and-swap), never
  // re-read and overwritten. A conflict throws ConflictError, and the reconcile is queued
  // again to start over from the fresh object, as controller-runtime does. A correction
  // (the pod shows a different end than recorded) may change a finished run's phase.
  async writeRunStatus(obj: RunObject, next: RunRecord, options: { correction?: boolean } = {}): Promise<RunObject> {
    if (!options.correction) assertTransition(runFromObject(obj), next.phase);
    const body: RunObject = { ...obj, status: runStatusOf(next, obj.metadata.generation, obj.status) };
    if (next.driver === COMMAND_RUNNER) body.status!.jobName = jobNameFor(next.runid);
    const written = await this.runs.replaceStatus(body);
    this.emit(next.runid);
    return written;
  }

  // Sets status fields the domain record does not carry (jobName, logsArchived).
  async patchRunStatus(runid: string, fields: Partial<RunStatus>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const obj = await this.runs.fresh(runid);
      if (!obj) throw new NotFoundError(`run ${runid} not found`);
      obj.status = { ...obj.status, ...fields };
      try {
        await this.runs.replaceStatus(obj);
        this.emit(runid);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 5) throw err;
      }
    }
  }

  async requestCancel(runid: string): Promise<RunRecord> {
    // The patch answers with the Run as stored: no second read that an outage could fail
    // after the cancel was kept.
    return runFromObject(await this.runs.mergePatch(runid, { spec: { cancelRequested: true } }));
  }

  onRunChange(listener: RunListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Local notifications for writes made through this store; the controller sees every
  // change, whoever made it, through its informers.
  emit(runid: string): void {
    if (this.listeners.size === 0) return;
    // A read that fails (an API server blip) is tried again with backoff: a listener missing
    // a change would show a stale run until the next one.
    background('run-change-listener', retrying('run-change-read', () => this.getRun(runid), { attempts: 4, baseMs: 200 }).then((run) => run && this.listeners.forEach((l) => l(run))));
  }

  listDriverPipelines(): Promise<DriverPipeline[]> {
    return this.local.listDriverPipelines();
  }
  getDriverPipeline(name: string): Promise<DriverPipeline | undefined> {
    return this.local.getDriverPipeline(name);
  }
  createDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline> {
    return this.local.createDriverPipeline(input);
  }
  replaceDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline> {
    return this.local.replaceDriverPipeline(input);
  }
  deleteDriverPipeline(name: string): Promise<void> {
    return this.local.deleteDriverPipeline(name);
  }
  addBroadcast(input: BroadcastInput): Promise<BroadcastMessage> {
    return this.local.addBroadcast(input);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

