// The Store contract (issue 5): one suite that both implementations of `Store` must pass,
// the embedded store (test/integration/store-contract.test.ts) and the Kubernetes store
// (test/cluster/store-contract.test.ts). A library, not a tier: scripts/test.ts only loads
// `*.test.ts` files, and those call `describeStoreContract` with their own store.
//
// One store serves the whole suite (a fresh Kubernetes namespace per suite keeps the cluster
// run fast), so every test works under names of its own; the first test checks that the
// store starts empty, and tests that count compare counts before and after.
//
// Runs are planned the way the API plans them (`planRun`), with one change: their createdAt
// comes from a clock that never repeats a millisecond, so "newest first" is one order in
// both stores (the embedded store orders by insertion, the Kubernetes store by createdAt).
//
// Where the stores legitimately differ, the contract states what both guarantee:
// - A new run's `message` is the store's prose for "waiting" (a Run's status is written by
//   its controller on Kubernetes); the contract checks every other field of the record.
// - Replacing a pipeline with an identical spec: the embedded store makes a new version,
//   the Kubernetes store keeps the generation (and its run). Both return a run of the
//   resource's current version, and no version ever has two runs. Replace tests elsewhere
//   use changed specs.
// - createdAt of resources and definitions has second precision on Kubernetes
//   (creationTimestamp); updatedAt has milliseconds in both.
import { expect } from 'chai';
import { v4 as uuidv4 } from 'uuid';
import { planRun } from '../../src/api/resource-runs.ts';
import type { ApiDeps } from '../../src/api/context.ts';
import {
  BadRequestError,
  COMMAND_RUNNER,
  ConflictError,
  NotFoundError,
  PIPELINE_TYPE,
  RUN_PHASES,
  toPublicRun,
  type DefinitionInput,
  type JsonObject,
  type Resource,
  type ResourceInput,
  type Run,
  type RunPhase,
  type RunRecord,
} from '../../src/domain/index.ts';
import type { RunFilter, Store } from '../../src/store/index.ts';

export interface StoreUnderTest {
  store: Store;
  cleanup(): Promise<void>;
}

// ---- helpers -----------------------------------------------------------------------------

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to be rejected, but it succeeded');
}

async function expectConflict(promise: Promise<unknown>, what: string): Promise<Error> {
  const err = await rejection(promise);
  expect(err, `${what}: ${err.message}`).to.be.instanceOf(ConflictError);
  return err;
}

async function expectNotFound(promise: Promise<unknown>, what: string): Promise<Error> {
  const err = await rejection(promise);
  expect(err, `${what}: ${err.message}`).to.be.instanceOf(NotFoundError);
  return err;
}

// createdAt of planned runs: strictly increasing, never behind the wall clock.
let lastStamp = 0;
function clock(): string {
  lastStamp = Math.max(Date.now(), lastStamp + 1);
  return new Date(lastStamp).toISOString();
}

// The API's deps as far as planRun uses them: the command-runner serves pipelines, no
// driver serves user types (their runs stay Pending with NoDriver).
const apiDeps = { driverFor: (type: string) => (type === PIPELINE_TYPE ? COMMAND_RUNNER : null) } as unknown as ApiDeps;

function plan(input: ResourceInput, version: number, driver?: string): RunRecord {
  const run = { ...planRun(apiDeps, input, version), createdAt: clock() };
  return driver === undefined ? run : { ...run, driver };
}

function pipelineSpec(marker: string, steps = ['build', 'test']): JsonObject {
  return {
    image: 'busybox:1.36',
    steps: steps.map((name) => ({ name, command: `echo ${marker} ${name}` })),
    timeoutSeconds: 600,
    env: [{ name: 'MARKER', value: marker }],
  };
}

const sitesSchema: JsonObject = {
  type: 'object',
  required: ['url'],
  properties: { url: { type: 'string' }, replicas: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
};

function siteSpec(marker: string): JsonObject {
  return { url: `https://${marker}.example.com`, replicas: 2, tags: ['a', marker], nested: { deep: { value: marker } } };
}

// A deep copy with every object's keys in reverse order.
function reordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reordered);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reordered(v)]));
  return value;
}

// A run as the store gives it back, minus `message` (see the header).
function comparable<R extends Run>(run: R): Omit<R, 'message'> {
  const { message: _message, ...rest } = run;
  return rest;
}

function expectSameRun(actual: RunRecord | undefined, expected: RunRecord, what: string): void {
  expect(actual, `${what}: run ${expected.runid} exists`).to.not.equal(undefined);
  expect(comparable(actual!), what).to.deep.equal(comparable(expected));
  expect(actual!.message, `${what}: message`).to.be.a('string').and.not.equal('');
}

function expectIso(value: string, what: string): void {
  expect(value, what).to.be.a('string');
  expect(Number.isNaN(Date.parse(value)), `${what} "${value}" is a date`).to.equal(false);
}

function expectResource(actual: Resource | undefined, input: ResourceInput, version: number, what: string): Resource {
  expect(actual, `${what}: exists`).to.not.equal(undefined);
  const resource = actual!;
  expect(resource.name, `${what}: name`).to.equal(input.name);
  expect(resource.resource, `${what}: type`).to.equal(input.resource);
  expect(resource.spec, `${what}: spec`).to.deep.equal(input.spec);
  expect(resource.pipeline, `${what}: driver pipeline`).to.equal(input.pipeline);
  expect(resource.metadata.version, `${what}: version`).to.equal(version);
  expectIso(resource.metadata.createdAt, `${what}: createdAt`);
  expectIso(resource.metadata.updatedAt, `${what}: updatedAt`);
  // creationTimestamp (Kubernetes) is cut to the second: allow that much.
  expect(Date.parse(resource.metadata.updatedAt), `${what}: updatedAt is not before createdAt`).to.be.at.least(Date.parse(resource.metadata.createdAt) - 1000);
  return resource;
}

async function allRuns(store: Store, filter: Omit<RunFilter, 'limit' | 'continue'>, limit: number): Promise<{ items: Run[]; pages: number }> {
  const items: Run[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.listRuns({ ...filter, limit, ...(cursor ? { continue: cursor } : {}) });
    pages++;
    expect(page.items.length, `page ${pages} holds at most limit=${limit}`).to.be.at.most(limit);
    if (page.continue !== undefined) {
      expect(page.items.length, `page ${pages} is full when another follows`).to.equal(limit);
      expect(page.continue).to.be.a('string').and.not.equal('');
    }
    for (const run of page.items) expect(run, `listed run ${run.runid} is public: no spec, no pipeline`).to.not.have.any.keys('spec', 'pipeline');
    items.push(...page.items);
    cursor = page.continue;
    if (pages > 1000) throw new Error('listRuns never stops handing out a continue token');
  } while (cursor);
  return { items, pages };
}

// ---- the suite ---------------------------------------------------------------------------

export function describeStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, function () {
    let sut: StoreUnderTest | undefined;
    let store: Store;
    let seq = 0;
    // A name of this test's own (DNS-1123, unique in the suite's store).
    const unique = (prefix: string) => `${prefix}-${++seq}`;

    before(async function () {
      this.timeout(120_000);
      sut = await makeStore();
      store = sut.store;
    });

    after(async function () {
      this.timeout(120_000);
      if (sut) await sut.cleanup();
    });

    async function defineType(prefix = 'site', description = 'a web site'): Promise<DefinitionInput> {
      const input: DefinitionInput = { name: unique(prefix), version: '1.0.0', description, schema: sitesSchema };
      await store.createDefinition(input);
      return input;
    }

    async function createWithRun(input: ResourceInput, driver?: string): Promise<{ resource: Resource; run: RunRecord }> {
      const run = plan(input, 1, driver);
      const resource = await store.createResource(input, run);
      return { resource, run };
    }

    async function replaceWithRun(input: ResourceInput, driver?: string): Promise<{ resource: Resource; run: RunRecord; versions: number[] }> {
      const versions: number[] = [];
      const result = await store.replaceResource(input, (version) => {
        versions.push(version);
        return plan(input, version, driver);
      });
      return { ...result, versions };
    }

    it('starts empty: only the built-in definition, no resources, no runs', async () => {
      const defs = await store.listDefinitions();
      expect(defs.map((d) => d.name)).to.deep.equal([PIPELINE_TYPE]);
      expect(await store.listResources(PIPELINE_TYPE)).to.deep.equal([]);
      expect(await store.listRuns({ limit: 10 })).to.deep.equal({ items: [] });
      expect(await store.runsInPhase(...RUN_PHASES)).to.deep.equal([]);
      expect(await store.countRunsByPhase()).to.deep.equal(Object.fromEntries(RUN_PHASES.map((p) => [p, 0])));
    });

    describe('definitions', () => {
      it('has the built-in pipeline definition, listed and gettable', async () => {
        const builtIn = await store.getDefinition(PIPELINE_TYPE);
        expect(builtIn, 'pipeline definition').to.not.equal(undefined);
        expect(builtIn!.name).to.equal(PIPELINE_TYPE);
        expect(builtIn!.builtIn).to.equal(true);
        expect(builtIn!.version).to.be.a('string').and.not.equal('');
        expect(builtIn!.schema).to.be.an('object');
        expect(builtIn!.schema).to.have.nested.property('properties.steps');
        const listed = (await store.listDefinitions()).filter((d) => d.name === PIPELINE_TYPE);
        expect(listed, 'pipeline is listed once').to.have.length(1);
        expect(listed[0]!.builtIn).to.equal(true);
      });

      it('creates a definition, refuses a duplicate and lists definitions sorted by name', async () => {
        const stamp = Date.now();
        const input: DefinitionInput = { name: unique('zz-site'), version: '2.1.0', description: 'sites', schema: sitesSchema };
        const created = await store.createDefinition(input);
        expect(created).to.include({ name: input.name, version: '2.1.0', description: 'sites', builtIn: false });
        expect(created.schema).to.deep.equal(sitesSchema);
        expect(created.id).to.be.a('string').and.not.equal('');
        expectIso(created.createdAt, 'createdAt');
        expect(Date.parse(created.updatedAt), 'updatedAt is this write').to.be.at.least(stamp - 1000);

        const got = await store.getDefinition(input.name);
        expect(got).to.deep.equal(created);

        await expectConflict(store.createDefinition({ ...input, version: '9.9.9', description: 'other' }), 'duplicate definition');
        expect(await store.getDefinition(input.name), 'the duplicate changed nothing').to.deep.equal(created);
        await expectConflict(store.createDefinition({ ...input, name: PIPELINE_TYPE }), 'a definition named pipeline');

        const other = await store.createDefinition({ ...input, name: unique('aa-site') });
        const names = (await store.listDefinitions()).map((d) => d.name);
        expect(names).to.include.members([PIPELINE_TYPE, input.name, other.name]);
        expect(names, 'sorted by name').to.deep.equal([...names].sort());
        expect(new Set(names).size, 'no duplicates').to.equal(names.length);
      });

      it('apply creates when absent and updates when present; replace updates', async () => {
        const input: DefinitionInput = { name: unique('applied'), version: '1.0.0', description: 'first', schema: sitesSchema };
        const first = await store.applyDefinition(input);
        expect(first.created).to.equal(true);
        expect(first.definition).to.include({ name: input.name, version: '1.0.0', description: 'first', builtIn: false });

        const schema2: JsonObject = { type: 'object', properties: { url: { type: 'string' } } };
        const second = await store.applyDefinition({ ...input, version: '1.1.0', description: 'second', schema: schema2 });
        expect(second.created).to.equal(false);
        expect(second.definition).to.include({ name: input.name, version: '1.1.0', description: 'second', builtIn: false, id: first.definition.id });
        expect(second.definition.schema).to.deep.equal(schema2);
        expect(second.definition.createdAt, 'createdAt is kept').to.equal(first.definition.createdAt);
        expect(Date.parse(second.definition.updatedAt)).to.be.at.least(Date.parse(first.definition.updatedAt));
        expect(await store.getDefinition(input.name)).to.deep.equal(second.definition);

        const replaced = await store.replaceDefinition({ ...input, version: '2.0.0', description: 'third' });
        expect(replaced).to.include({ name: input.name, version: '2.0.0', description: 'third', id: first.definition.id, builtIn: false });
        expect(replaced.schema).to.deep.equal(sitesSchema);
        expect(await store.getDefinition(input.name)).to.deep.equal(replaced);
        expect((await store.listDefinitions()).filter((d) => d.name === input.name)).to.deep.equal([replaced]);
      });

      it('deletes a definition; unknown definitions are not found', async () => {
        const input = await defineType('doomed');
        await store.deleteDefinition(input.name);
        expect(await store.getDefinition(input.name)).to.equal(undefined);
        expect((await store.listDefinitions()).map((d) => d.name)).to.not.include(input.name);
        await expectNotFound(store.deleteDefinition(input.name), 'deleting it again');

        const ghost = unique('ghost');
        expect(await store.getDefinition(ghost)).to.equal(undefined);
        await expectNotFound(store.replaceDefinition({ name: ghost, version: '1.0.0', description: '', schema: sitesSchema }), 'replacing an unknown definition');
        await expectNotFound(store.deleteDefinition(ghost), 'deleting an unknown definition');
        expect(await store.getDefinition(ghost), 'replace did not create it').to.equal(undefined);
      });

      it('the built-in definition can be neither changed nor deleted', async () => {
        const before = await store.getDefinition(PIPELINE_TYPE);
        const change: DefinitionInput = { name: PIPELINE_TYPE, version: '9.9.9', description: 'hijacked', schema: { type: 'object' } };
        await expectConflict(store.replaceDefinition(change), 'replacing pipeline');
        await expectConflict(store.applyDefinition(change), 'applying pipeline');
        await expectConflict(store.deleteDefinition(PIPELINE_TYPE), 'deleting pipeline');
        expect(await store.getDefinition(PIPELINE_TYPE)).to.deep.equal(before);
      });

      it('refuses to delete a definition that still has resources', async () => {
        const type = await defineType('busy');
        const input: ResourceInput = { name: 'docs', resource: type.name, spec: siteSpec('docs') };
        await createWithRun(input);
        await expectConflict(store.deleteDefinition(type.name), 'deleting a definition in use');
        expect(await store.getDefinition(type.name), 'still there').to.include({ name: type.name });
        await store.deleteResource(type.name, input.name);
        await store.deleteDefinition(type.name);
        expect(await store.getDefinition(type.name)).to.equal(undefined);
      });
    });

    // The same tests for the built-in type (Pipeline objects on Kubernetes) and a user type
    // (Resource objects): the store must not care which.
    for (const kind of ['pipeline', 'user-defined'] as const) {
      describe(`resources of ${kind === 'pipeline' ? 'the built-in pipeline type' : 'a user-defined type'}`, () => {
        let type: string;
        const specOf = (marker: string) => (kind === 'pipeline' ? pipelineSpec(marker) : siteSpec(marker));

        before(async () => {
          type = kind === 'pipeline' ? PIPELINE_TYPE : (await defineType('web')).name;
        });

        it('creates a resource together with its run, and gets both back', async () => {
          const input: ResourceInput = { name: unique('alpha'), resource: type, spec: specOf('v1') };
          const { resource, run } = await createWithRun(input);
          expectResource(resource, input, 1, 'returned by create');
          expect(await store.getResource(type, input.name), 'get').to.deep.equal(resource);
          expect(await store.getResource(type, input.name, 1), 'get version 1').to.deep.include({ name: input.name, spec: input.spec });

          expect(run.version).to.equal(1);
          expect(run.driver).to.equal(kind === 'pipeline' ? COMMAND_RUNNER : 'none');
          // A user-defined type's run has one step for the external driver that will serve it.
          expect(run.steps.map((s) => s.name)).to.deep.equal(kind === 'pipeline' ? ['build', 'test'] : [type]);
          const stored = await store.getRun(run.runid);
          expectSameRun(stored, run, 'getRun');
          expect(stored!.spec, 'the run keeps the spec it was created with').to.deep.equal(input.spec);
          expect(stored!).to.include({ phase: 'Pending', resource: type, name: input.name, version: 1, pipeline: null });
        });

        it('refuses a duplicate: ConflictError, and neither the resource nor a run is written', async () => {
          const input: ResourceInput = { name: unique('dup'), resource: type, spec: specOf('original') };
          const { resource, run } = await createWithRun(input);
          const dupInput = { ...input, spec: specOf('impostor') };
          const dupRun = plan(dupInput, 1);
          await expectConflict(store.createResource(dupInput, dupRun), 'duplicate resource');
          expect(await store.getResource(type, input.name), 'resource unchanged').to.deep.equal(resource);
          expect(await store.getRun(dupRun.runid), 'no run for the refused write').to.equal(undefined);
          const runs = await store.listRuns({ resource: type, name: input.name, limit: 10 });
          expect(runs.items.map((r) => r.runid)).to.deep.equal([run.runid]);
        });

        it('writes both or neither: a run that cannot be written leaves no resource behind', async () => {
          const taken = await createWithRun({ name: unique('owner'), resource: type, spec: specOf('owner') });
          const input: ResourceInput = { name: unique('orphan'), resource: type, spec: specOf('orphan') };
          // A run id that is already taken: the run write fails after the resource's.
          const run = { ...plan(input, 1), runid: taken.run.runid };
          await rejection(store.createResource(input, run));
          expect(await store.getResource(type, input.name), 'no resource without its run').to.equal(undefined);
          expect((await store.listResources(type)).map((r) => r.name)).to.not.include(input.name);
          expectSameRun(await store.getRun(taken.run.runid), taken.run, 'the run that held the id is untouched');
          // The name is free: creating it properly works.
          await createWithRun(input);
          expect(await store.getResource(type, input.name)).to.deep.include({ name: input.name });
        });

        it('lists the resources of a type sorted by name', async () => {
          const prefix = unique('list');
          const names = ['zeta', 'alpha-2', 'alpha', 'alpha1', 'beta'].map((n) => `${prefix}-${n}`);
          for (const n of names) await createWithRun({ name: n, resource: type, spec: specOf(n) });
          const listed = await store.listResources(type);
          const all = listed.map((r) => r.name);
          expect(all, 'sorted by name').to.deep.equal([...all].sort());
          expect(new Set(all).size, 'each once').to.equal(all.length);
          expect(all.filter((n) => n.startsWith(`${prefix}-`))).to.deep.equal([...names].sort());
          for (const r of listed.filter((r) => r.name.startsWith(`${prefix}-`))) {
            expect(r.resource).to.equal(type);
            expect(r.metadata.version).to.equal(1);
            expect(r.spec).to.deep.equal(specOf(r.name));
          }
          expect(await store.listResources(unique('no-such-type'))).to.deep.equal([]);
        });

        it('replaces a resource: version + 1, a new run of that version, the old run and version kept', async () => {
          const v1: ResourceInput = { name: unique('evolve'), resource: type, spec: specOf('v1') };
          const created = await createWithRun(v1);
          const v2: ResourceInput = { ...v1, spec: specOf('v2') };
          const replaced = await replaceWithRun(v2);
          expect(replaced.versions, 'the run is planned once, for version 2').to.deep.equal([2]);
          const resource = expectResource(replaced.resource, v2, 2, 'returned by replace');
          expect(resource.metadata.createdAt, 'createdAt is kept').to.equal(created.resource.metadata.createdAt);
          expect(Date.parse(resource.metadata.updatedAt)).to.be.at.least(Date.parse(created.resource.metadata.updatedAt));
          expect(await store.getResource(type, v1.name)).to.deep.equal(resource);

          expect(replaced.run.version).to.equal(2);
          expect(replaced.run.runid).to.not.equal(created.run.runid);
          expectSameRun(await store.getRun(replaced.run.runid), replaced.run, 'the new run');
          expect((await store.getRun(replaced.run.runid))!.spec).to.deep.equal(v2.spec);
          const old = await store.getRun(created.run.runid);
          expectSameRun(old, created.run, 'the first run');
          expect(old!.spec, 'the first run keeps its frozen spec').to.deep.equal(v1.spec);

          const third = await replaceWithRun({ ...v1, spec: specOf('v3') });
          expect(third.versions).to.deep.equal([3]);
          expect(third.resource.metadata.version).to.equal(3);
          expect(third.run.version).to.equal(3);

          const at1 = await store.getResource(type, v1.name, 1);
          expect(at1, 'version 1').to.not.equal(undefined);
          expect(at1!.spec).to.deep.equal(v1.spec);
          expect(at1!.metadata.version).to.equal(1);
          expect(at1!.name).to.equal(v1.name);
          expect(at1!.resource).to.equal(type);
          const at2 = await store.getResource(type, v1.name, 2);
          expect(at2!.spec).to.deep.equal(v2.spec);
          expect(at2!.metadata.version).to.equal(2);
          expect(await store.getResource(type, v1.name, 3)).to.deep.equal(third.resource);
          expect(await store.getResource(type, v1.name, 4), 'a version that never was').to.equal(undefined);

          const runs = await store.listRuns({ resource: type, name: v1.name, limit: 10 });
          expect(runs.items.map((r) => [r.runid, r.version])).to.deep.equal([
            [third.run.runid, 3],
            [replaced.run.runid, 2],
            [created.run.runid, 1],
          ]);
        });

        it('replaces the driver pipeline a resource is handed to, and drops it', async () => {
          const chain = unique('chain');
          await store.createDriverPipeline({ name: chain, resource: type, description: '', steps: [{ id: 's1', name: 'scan', driver: 'scanner' }] });
          const v1: ResourceInput = { name: unique('chained'), resource: type, spec: specOf('v1'), pipeline: chain };
          const created = await createWithRun(v1);
          expectResource(created.resource, v1, 1, 'created with a driver pipeline');
          expect(created.run).to.include({ driver: 'none', pipeline: chain });
          expectSameRun(await store.getRun(created.run.runid), created.run, 'run of a chained resource');

          const v2: ResourceInput = { name: v1.name, resource: type, spec: specOf('v2') };
          const replaced = await replaceWithRun(v2);
          expectResource(replaced.resource, v2, 2, 'replaced without a driver pipeline');
          expect(await store.getResource(type, v1.name)).to.not.have.property('pipeline');
          expect((await store.getRun(replaced.run.runid))!.pipeline).to.equal(null);
          expect((await store.getRun(created.run.runid))!.pipeline, 'the first run keeps its chain').to.equal(chain);
        });

        it('a replace with an identical spec returns a run of the current version, and no version has two runs', async () => {
          const input: ResourceInput = { name: unique('same'), resource: type, spec: specOf('same') };
          const created = await createWithRun(input);
          // The same spec again, as a fresh copy whose keys come in another order: JSON
          // objects are unordered, and a client (or the API server) need not keep the order.
          const result = await replaceWithRun({ ...input, spec: reordered(input.spec) as JsonObject });
          expect(result.resource.spec).to.deep.equal(input.spec);
          expect(result.run.version, 'the run is of the version the resource is at').to.equal(result.resource.metadata.version);
          expect(result.resource.metadata.version).to.be.oneOf([1, 2]);
          expect(await store.getRun(result.run.runid), 'the run returned exists').to.not.equal(undefined);
          if (result.resource.metadata.version === 1) expect(result.run.runid, 'unchanged version, same run').to.equal(created.run.runid);
          const runs = (await store.listRuns({ resource: type, name: input.name, limit: 10 })).items;
          const versions = runs.map((r) => r.version);
          expect(new Set(versions).size, `one run per version (runs of versions ${versions.join(', ')})`).to.equal(versions.length);
          expect(Math.max(...versions)).to.equal(result.resource.metadata.version);
        });

        it('refuses to replace an unknown resource, planning no run', async () => {
          const input: ResourceInput = { name: unique('nobody'), resource: type, spec: specOf('x') };
          const planned: number[] = [];
          await expectNotFound(
            store.replaceResource(input, (v) => {
              planned.push(v);
              return plan(input, v);
            }),
            'replacing an unknown resource',
          );
          expect(await store.getResource(type, input.name), 'replace did not create it').to.equal(undefined);
          expect((await store.listRuns({ resource: type, name: input.name, limit: 10 })).items).to.deep.equal([]);
        });

        it('deletes a resource: gone afterwards, its runs stay, and a new one of that name starts over', async () => {
          const v1: ResourceInput = { name: unique('gone'), resource: type, spec: specOf('v1') };
          const created = await createWithRun(v1);
          const replaced = await replaceWithRun({ ...v1, spec: specOf('v2') });
          await store.deleteResource(type, v1.name);
          expect(await store.getResource(type, v1.name)).to.equal(undefined);
          expect(await store.getResource(type, v1.name, 1)).to.equal(undefined);
          expect((await store.listResources(type)).map((r) => r.name)).to.not.include(v1.name);
          await expectNotFound(store.deleteResource(type, v1.name), 'deleting it again');
          await expectNotFound(store.replaceResource(v1, (v) => plan(v1, v)), 'replacing a deleted resource');

          expectSameRun(await store.getRun(created.run.runid), created.run, 'run 1 after the delete');
          expectSameRun(await store.getRun(replaced.run.runid), replaced.run, 'run 2 after the delete');
          const runs = await store.listRuns({ resource: type, name: v1.name, limit: 10 });
          expect(runs.items.map((r) => r.runid)).to.deep.equal([replaced.run.runid, created.run.runid]);

          // The name is free again, and the old history is not the new resource's.
          const reborn: ResourceInput = { ...v1, spec: specOf('reborn') };
          const again = await createWithRun(reborn);
          expectResource(again.resource, reborn, 1, 'created again');
          expect((await store.getResource(type, v1.name, 1))!.spec).to.deep.equal(reborn.spec);
          expect(await store.getResource(type, v1.name, 2), 'the deleted resource\'s version 2').to.equal(undefined);
        });

        it('unknown resources are not found', async () => {
          const ghost = unique('ghost');
          expect(await store.getResource(type, ghost)).to.equal(undefined);
          expect(await store.getResource(type, ghost, 1)).to.equal(undefined);
          await expectNotFound(store.deleteResource(type, ghost), 'deleting an unknown resource');
        });
      });
    }

    describe('runs', () => {
      it('getRun returns the whole record, frozen spec included; an unknown run is undefined', async () => {
        const type = await defineType('frozen');
        const input: ResourceInput = { name: 'app', resource: type.name, spec: siteSpec('frozen') };
        const { run } = await createWithRun(input);
        const got = await store.getRun(run.runid);
        expectSameRun(got, run, 'getRun');
        expect(got).to.include({ runid: run.runid, resource: type.name, name: 'app', version: 1, driver: 'none', phase: 'Pending', reason: 'NoDriver' });
        expect(got!.spec).to.deep.equal(siteSpec('frozen'));
        expect(got!.createdAt, 'createdAt with milliseconds, as written').to.equal(run.createdAt);
        expect(got).to.include({ startedAt: null, finishedAt: null, pipeline: null });
        expect(await store.getRun(uuidv4())).to.equal(undefined);
      });

      it('listRuns: newest first, filtered by resource and name, paged with continue until exhausted', async () => {
        const type = (await defineType('paged')).name;
        const created: RunRecord[] = [];
        const spec = (n: number) => siteSpec(`s${n}`);
        // Runs of `one` (7), `two` (3), and a pipeline also named `one` (2): 12 in all.
        const one: ResourceInput = { name: unique('one'), resource: type, spec: spec(0) };
        const two: ResourceInput = { name: unique('two'), resource: type, spec: spec(0) };
        const pipe: ResourceInput = { name: one.name, resource: PIPELINE_TYPE, spec: pipelineSpec('p0') };
        created.push((await createWithRun(one)).run);
        created.push((await createWithRun(two)).run);
        created.push((await createWithRun(pipe)).run);
        for (let i = 1; i <= 6; i++) created.push((await replaceWithRun({ ...one, spec: spec(i) })).run);
        for (let i = 1; i <= 2; i++) created.push((await replaceWithRun({ ...two, spec: spec(i) })).run);
        created.push((await replaceWithRun({ ...pipe, spec: pipelineSpec('p1') })).run);
        const newestFirst = (runs: RunRecord[]) => [...runs].reverse().map((r) => r.runid);

        const ofType = created.filter((r) => r.resource === type);
        const ofOne = ofType.filter((r) => r.name === one.name);
        const named = created.filter((r) => r.name === one.name);
        expect([ofType.length, ofOne.length, named.length]).to.deep.equal([10, 7, 9]);

        const byType = await store.listRuns({ resource: type, limit: 100 });
        expect(byType.items.map((r) => r.runid), 'by type, newest first').to.deep.equal(newestFirst(ofType));
        expect(byType.continue, 'one page holds them all').to.equal(undefined);
        for (const r of byType.items) {
          expect(r, 'a listed run is public: no spec, no pipeline').to.not.have.any.keys('spec', 'pipeline');
          expect(comparable(r), 'listed run').to.deep.equal(comparable(toPublicRun(created.find((c) => c.runid === r.runid)!)));
        }

        const byBoth = await store.listRuns({ resource: type, name: one.name, limit: 100 });
        expect(byBoth.items.map((r) => r.runid), 'by type and name').to.deep.equal(newestFirst(ofOne));
        expect(byBoth.items.map((r) => r.version)).to.deep.equal([7, 6, 5, 4, 3, 2, 1]);

        const byName = await store.listRuns({ name: one.name, limit: 100 });
        expect(byName.items.map((r) => r.runid), 'by name, across types').to.deep.equal(newestFirst(named));

        const unfiltered = await allRuns(store, {}, 100);
        const ours = new Set(created.map((r) => r.runid));
        expect(unfiltered.items.filter((r) => ours.has(r.runid)).map((r) => r.runid), 'unfiltered: ours in order').to.deep.equal(newestFirst(created));
        const stamps = unfiltered.items.map((r) => r.createdAt);
        expect(stamps, 'unfiltered: newest first').to.deep.equal([...stamps].sort().reverse());

        for (const limit of [1, 3, 4, 5, 10, 11]) {
          const paged = await allRuns(store, { resource: type }, limit);
          const ids = paged.items.map((r) => r.runid);
          expect(ids, `limit ${limit}: no gaps, no duplicates, same order`).to.deep.equal(newestFirst(ofType));
          expect(paged.pages, `limit ${limit}: pages`).to.equal(Math.max(1, Math.ceil(10 / limit)));
        }
        const pagedBoth = await allRuns(store, { resource: type, name: one.name }, 2);
        expect(pagedBoth.items.map((r) => r.runid)).to.deep.equal(newestFirst(ofOne));
        expect(pagedBoth.pages).to.equal(4);

        const first = await store.listRuns({ resource: type, limit: 4 });
        const again = await store.listRuns({ resource: type, limit: 4 });
        expect(again, 'the same request, the same page').to.deep.equal(first);
        // A token the store did not issue is the client's mistake (400), never an empty page.
        for (const forged of ['not-a-token', 'MTIz']) {
          const refused = await store.listRuns({ resource: type, limit: 4, continue: forged }).then(() => undefined, (err: unknown) => err);
          expect(refused, `continue "${forged}"`).to.be.instanceOf(BadRequestError);
        }

        expect(await store.listRuns({ resource: type, name: unique('nobody'), limit: 5 })).to.deep.equal({ items: [] });
        expect(await store.listRuns({ resource: unique('no-such-type'), limit: 5 })).to.deep.equal({ items: [] });
      });

      it('updateRun applies a change, moves forward only, and never changes what the run executes', async () => {
        const input: ResourceInput = { name: unique('lifecycle'), resource: PIPELINE_TYPE, spec: pipelineSpec('life') };
        const { run } = await createWithRun(input);
        const started = new Date().toISOString();
        const running = await store.updateRun(run.runid, (r) => ({
          ...r,
          phase: 'Running',
          reason: 'Started',
          message: 'step build is running',
          startedAt: started,
          steps: r.steps.map((s, i) => (i === 0 ? { ...s, phase: 'Running', startedAt: started } : s)),
        }));
        expect(running).to.include({ phase: 'Running', reason: 'Started', message: 'step build is running', startedAt: started });
        const afterStart = await store.getRun(run.runid);
        expect(afterStart).to.deep.equal(running);
        expect(afterStart!.steps).to.deep.equal([
          { name: 'build', phase: 'Running', exitCode: null, startedAt: started, finishedAt: null },
          { name: 'test', phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null },
        ]);

        const finished = new Date(Date.now() + 5).toISOString();
        let seen: RunRecord | undefined;
        const done = await store.updateRun(run.runid, (r) => {
          seen = r;
          return {
            ...r,
            phase: 'Succeeded',
            reason: 'Succeeded',
            message: 'Pipeline executed successfully',
            finishedAt: finished,
            steps: r.steps.map((s) => ({ ...s, phase: 'Succeeded', exitCode: 0, startedAt: s.startedAt ?? started, finishedAt: finished })),
            // Not the store's to change: a run executes what it was created with.
            spec: { tampered: true },
            version: 99,
            name: 'someone-else',
          };
        });
        expect(seen, 'change sees the current record').to.deep.equal(afterStart);
        expect(done.phase).to.equal('Succeeded');
        const afterFinish = await store.getRun(run.runid);
        expect(afterFinish).to.include({ phase: 'Succeeded', reason: 'Succeeded', message: 'Pipeline executed successfully', startedAt: started, finishedAt: finished });
        expect(afterFinish!.steps.map((s) => [s.name, s.phase, s.exitCode])).to.deep.equal([['build', 'Succeeded', 0], ['test', 'Succeeded', 0]]);
        expect(afterFinish, 'frozen fields unchanged').to.include({ runid: run.runid, version: 1, name: input.name, resource: PIPELINE_TYPE, createdAt: run.createdAt });
        expect(afterFinish!.spec).to.deep.equal(input.spec);

        await expectConflict(store.updateRun(run.runid, (r) => ({ ...r, phase: 'Running', reason: 'Started' })), 'Succeeded → Running');
        await expectConflict(store.updateRun(run.runid, (r) => ({ ...r, phase: 'Failed', reason: 'StepFailed' })), 'Succeeded → Failed');
        expect(await store.getRun(run.runid), 'a refused change writes nothing').to.deep.equal(afterFinish);

        await expectNotFound(store.updateRun(uuidv4(), (r) => r), 'updating an unknown run');
      });

      it('updateRun: a Pending run may end without being seen Running', async () => {
        const { run } = await createWithRun({ name: unique('quick'), resource: PIPELINE_TYPE, spec: pipelineSpec('quick') });
        const at = new Date().toISOString();
        await store.updateRun(run.runid, (r) => ({ ...r, phase: 'Failed', reason: 'StepFailed', message: 'step build failed with exit code 2', startedAt: at, finishedAt: at }));
        expect(await store.getRun(run.runid)).to.include({ phase: 'Failed', reason: 'StepFailed', message: 'step build failed with exit code 2' });
        await expectConflict(store.updateRun(run.runid, (r) => ({ ...r, phase: 'Pending' })), 'Failed → Pending');
      });

      it('runsInPhase and countRunsByPhase agree with the runs written', async () => {
        const countsBefore = await store.countRunsByPhase();
        expect(Object.keys(countsBefore).sort()).to.deep.equal([...RUN_PHASES].sort());
        const type = (await defineType('phased')).name;
        const runs: RunRecord[] = [];
        for (let i = 0; i < 5; i++) runs.push((await createWithRun({ name: `r${i}`, resource: type, spec: siteSpec(`r${i}`) })).run);
        const at = new Date().toISOString();
        const move = (runid: string, phase: RunPhase) => store.updateRun(runid, (r) => ({ ...r, phase, reason: phase === 'Running' ? 'Started' : phase, startedAt: at, finishedAt: phase === 'Running' ? null : at }));
        await move(runs[1]!.runid, 'Running');
        await move(runs[2]!.runid, 'Running');
        await move(runs[2]!.runid, 'Succeeded');
        await move(runs[3]!.runid, 'Failed');
        await move(runs[4]!.runid, 'Cancelled');
        const expected: Record<string, RunPhase> = { r0: 'Pending', r1: 'Running', r2: 'Succeeded', r3: 'Failed', r4: 'Cancelled' };

        const countsAfter = await store.countRunsByPhase();
        const delta = Object.fromEntries(RUN_PHASES.map((p) => [p, countsAfter[p] - countsBefore[p]]));
        expect(delta).to.deep.equal({ Pending: 1, Running: 1, Succeeded: 1, Failed: 1, Cancelled: 1 });
        const total = (await allRuns(store, {}, 50)).items.length;
        expect(Object.values(countsAfter).reduce((a, b) => a + b, 0), 'counts add up to every run').to.equal(total);

        const mine = new Set(runs.map((r) => r.runid));
        for (const phases of [['Pending'], ['Running'], ['Succeeded', 'Failed'], ['Cancelled'], [...RUN_PHASES]] as RunPhase[][]) {
          const found = await store.runsInPhase(...phases);
          for (const r of found) expect(phases, `run ${r.runid} is ${r.phase}`).to.include(r.phase);
          const ids = found.map((r) => r.runid);
          expect(new Set(ids).size, 'each run once').to.equal(ids.length);
          const ours = found.filter((r) => mine.has(r.runid)).map((r) => r.name).sort();
          expect(ours, `ours in ${phases.join('/')}`).to.deep.equal(Object.keys(expected).filter((n) => phases.includes(expected[n]!)).sort());
          expect(found.length, `every ${phases.join('/')} run`).to.equal(phases.reduce((n, p) => n + countsAfter[p], 0));
        }
        const running = (await store.runsInPhase('Running')).find((r) => r.runid === runs[1]!.runid);
        expect(running).to.include({ phase: 'Running', reason: 'Started', startedAt: at, name: 'r1', resource: type });
      });

      it('nextPending gives the oldest Pending runs of one driver, at most limit', async () => {
        const driver = unique('contract-driver');
        const type = (await defineType('queued')).name;
        const runs: RunRecord[] = [];
        for (let i = 0; i < 5; i++) runs.push((await createWithRun({ name: `q${i}`, resource: type, spec: siteSpec(`q${i}`) }, driver)).run);
        // Another driver's run, and a run of ours that has started, are not in the queue.
        await createWithRun({ name: 'other', resource: type, spec: siteSpec('other') }, `${driver}-other`);
        await store.updateRun(runs[0]!.runid, (r) => ({ ...r, phase: 'Running', reason: 'Started', startedAt: new Date().toISOString() }));

        const ids = (rs: RunRecord[]) => rs.map((r) => r.runid);
        expect(ids(await store.nextPending(driver, 2)), 'two oldest, oldest first').to.deep.equal(ids(runs.slice(1, 3)));
        expect(ids(await store.nextPending(driver, 10)), 'all of them').to.deep.equal(ids(runs.slice(1)));
        for (const r of await store.nextPending(driver, 10)) expect(r).to.include({ driver, phase: 'Pending' });
        expect(await store.nextPending(unique('idle-driver'), 5)).to.deep.equal([]);
      });

      it('onRunChange tells listeners about run writes until they unsubscribe', async () => {
        const seen: RunRecord[] = [];
        const off = store.onRunChange((r) => seen.push(r));
        try {
          const { run } = await createWithRun({ name: unique('watched'), resource: PIPELINE_TYPE, spec: pipelineSpec('watched') });
          await store.updateRun(run.runid, (r) => ({ ...r, phase: 'Running', reason: 'Started', startedAt: new Date().toISOString() }));
          const deadline = Date.now() + 10_000;
          while (!seen.some((r) => r.runid === run.runid && r.phase === 'Running')) {
            if (Date.now() > deadline) throw new Error(`no Running notification for ${run.runid}; saw ${JSON.stringify(seen.map((r) => [r.runid, r.phase]))}`);
            await new Promise((done) => setTimeout(done, 20));
          }
          off();
          await new Promise((done) => setTimeout(done, 200));
          const count = seen.length;
          await store.updateRun(run.runid, (r) => ({ ...r, phase: 'Succeeded', reason: 'Succeeded', finishedAt: new Date().toISOString() }));
          await new Promise((done) => setTimeout(done, 300));
          expect(seen.length, 'nothing after unsubscribing').to.equal(count);
        } finally {
          off();
        }
      });
    });
  });
}
