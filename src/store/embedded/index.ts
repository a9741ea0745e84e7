// The embedded store of local mode, on node:sqlite. Every method is synchronous underneath,
// so a read-modify-write inside one call cannot interleave with another request.
import { EventEmitter } from 'node:events';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { v4 as uuidv4 } from 'uuid';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  RUN_PHASES,
  assertTransition,
  builtInPipelineDefinition,
  type BroadcastInput,
  type BroadcastMessage,
  type DefinitionInput,
  type DriverPipeline,
  type DriverPipelineInput,
  type JsonObject,
  type Resource,
  type ResourceDefinition,
  type ResourceInput,
  type Run,
  type RunPhase,
} from '../../domain/index.ts';
import type { RunFilter, RunListener, RunPage, RunRecord, Store } from '../index.ts';
import { transaction } from './database.ts';
import { background } from '../../observability/background.ts';

type Row = Record<string, string | number | null>;

const now = () => new Date().toISOString();

function definitionFromRow(row: Row): ResourceDefinition {
  return {
    id: String(row.id),
    name: String(row.name),
    version: String(row.version),
    description: String(row.description),
    schema: JSON.parse(String(row.schema)) as JsonObject,
    builtIn: row.built_in === 1,
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}

function resourceFromRow(row: Row, createdAt = String(row.created_at), updatedAt = String(row.updated_at ?? row.created_at)): Resource {
  const resource: Resource = {
    name: String(row.name),
    resource: String(row.type),
    spec: JSON.parse(String(row.spec)) as JsonObject,
    metadata: { version: Number(row.version), createdAt, updatedAt },
  };
  if (row.pipeline !== null && row.pipeline !== undefined) resource.pipeline = String(row.pipeline);
  return resource;
}

function publicRunFromRow(row: Row): Run {
  return {
    runid: String(row.runid),
    resource: String(row.resource),
    name: String(row.name),
    version: Number(row.version),
    driver: String(row.driver),
    phase: row.phase as RunPhase,
    reason: row.reason as string | null,
    message: row.message as string | null,
    createdAt: String(row.created_at),
    startedAt: row.started_at as string | null,
    finishedAt: row.finished_at as string | null,
    steps: JSON.parse(String(row.steps)),
    requestedBy: (row.requested_by as string | null | undefined) ?? null,
  };
}

function runFromRow(row: Row): RunRecord {
  // The spec is parsed eagerly: a lazy accessor (tried) costs more per row than parsing it.
  return Object.assign(publicRunFromRow(row), { spec: JSON.parse(String(row.spec)) as JsonObject, pipeline: row.pipeline as string | null });
}

function pipelineFromRow(row: Row): DriverPipeline {
  return {
    name: String(row.name),
    resource: String(row.resource),
    description: String(row.description),
    steps: JSON.parse(String(row.steps)),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}

// What publicRunFromRow reads: a page of runs selects these and not the spec.
const PUBLIC_RUN_COLUMNS =
  'runid, resource, name, version, driver, phase, reason, message, created_at, started_at, finished_at, steps, requested_by';

// The literal `phase = 'Pending'` lets SQLite use the partial index runs_pending_by_driver
// (database.ts), which holds only Pending runs, by driver and age: the query reads `limit`
// rows however many Pending runs other drivers (or none) have queued.
export const NEXT_PENDING_SQL = "SELECT * FROM runs WHERE phase = 'Pending' AND driver = ? ORDER BY ord LIMIT ?";

export class EmbeddedStore implements Store {
  private readonly db: DatabaseSync;
  private readonly events = new EventEmitter();
  // Each statement is prepared once and reused: preparing one costs more than running it.
  private readonly statements = new Map<string, StatementSync>();
  // Definitions are read on every resource write (to validate it) and change rarely: kept
  // parsed here, dropped on any definition write. This store is the database's only writer.
  private readonly definitionCache = new Map<string, ResourceDefinition | null>();
  private phaseCounts?: Record<RunPhase, number>;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.events.setMaxListeners(0);
    this.seedBuiltIns();
  }

  private sql(text: string): StatementSync {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  private seedBuiltIns(): void {
    const def = builtInPipelineDefinition;
    const stamp = now();
    this.sql(
        `INSERT INTO definitions (name, id, version, description, schema, built_in, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 1, ?, ?)
         ON CONFLICT(name) DO UPDATE SET version = excluded.version, description = excluded.description,
           schema = excluded.schema, built_in = 1`,
      )
      .run(def.name, uuidv4(), def.version, def.description, JSON.stringify(def.schema), stamp, stamp);
  }

  async listDefinitions(): Promise<ResourceDefinition[]> {
    return (this.sql('SELECT * FROM definitions ORDER BY name').all() as Row[]).map(definitionFromRow);
  }

  async getDefinition(name: string): Promise<ResourceDefinition | undefined> {
    let def = this.definitionCache.get(name);
    if (def === undefined) {
      const row = this.sql('SELECT * FROM definitions WHERE name = ?').get(name) as Row | undefined;
      def = row ? Object.freeze(definitionFromRow(row)) : null;
      // Only names that exist, so that requests for random names cannot grow the map.
      if (def) this.definitionCache.set(name, def);
    }
    return def ?? undefined;
  }

  async createDefinition(input: DefinitionInput): Promise<ResourceDefinition> {
    this.definitionCache.delete(input.name);
    if (await this.getDefinition(input.name)) throw new ConflictError(`resource definition "${input.name}" already exists`);
    const stamp = now();
    this.sql('INSERT INTO definitions VALUES (?, ?, ?, ?, ?, 0, ?, ?)')
      .run(input.name, uuidv4(), input.version, input.description, JSON.stringify(input.schema), stamp, stamp);
    return (await this.getDefinition(input.name))!;
  }

  async applyDefinition(input: DefinitionInput): Promise<{ definition: ResourceDefinition; created: boolean }> {
    const existing = await this.getDefinition(input.name);
    if (!existing) return { definition: await this.createDefinition(input), created: true };
    return { definition: await this.replaceDefinition(input), created: false };
  }

  async replaceDefinition(input: DefinitionInput): Promise<ResourceDefinition> {
    this.definitionCache.delete(input.name);
    const existing = await this.getDefinition(input.name);
    if (!existing) throw new NotFoundError(`resource definition "${input.name}" not found`);
    if (existing.builtIn) throw new ConflictError(`resource definition "${input.name}" is built in and cannot be changed`);
    this.sql('UPDATE definitions SET version = ?, description = ?, schema = ?, updated_at = ? WHERE name = ?')
      .run(input.version, input.description, JSON.stringify(input.schema), now(), input.name);
    this.definitionCache.delete(input.name);
    return (await this.getDefinition(input.name))!;
  }

  async deleteDefinition(name: string): Promise<void> {
    this.definitionCache.delete(name);
    const existing = await this.getDefinition(name);
    if (!existing) throw new NotFoundError(`resource definition "${name}" not found`);
    if (existing.builtIn) throw new ConflictError(`resource definition "${name}" is built in and cannot be deleted`);
    const { count } = this.sql('SELECT count(*) AS count FROM resources WHERE type = ?').get(name) as { count: number };
    if (count > 0) throw new ConflictError(`resource definition "${name}" still has ${count} resource(s); delete them first`);
    this.sql('DELETE FROM definitions WHERE name = ?').run(name);
    this.definitionCache.delete(name);
  }

  async createResource(input: ResourceInput, run: RunRecord): Promise<Resource> {
    const stamp = now();
    transaction(this.db, () => {
      const exists = this.sql('SELECT 1 FROM resources WHERE type = ? AND name = ?').get(input.resource, input.name);
      if (exists) throw new ConflictError(`resource ${input.resource}/${input.name} already exists; PUT /resources/${input.resource}/${input.name} replaces it`);
      const spec = JSON.stringify(input.spec);
      this.sql('INSERT INTO resources VALUES (?, ?, 1, ?, ?, ?, ?)')
        .run(input.resource, input.name, input.pipeline ?? null, spec, stamp, stamp);
      this.sql('INSERT INTO resource_versions VALUES (?, ?, 1, ?, ?, ?)')
        .run(input.resource, input.name, input.pipeline ?? null, spec, stamp);
      this.insertRun(run);
    });
    this.countRun(null, run.phase);
    this.emitRun(run);
    // What was just written, without reading it back.
    const resource: Resource = { name: input.name, resource: input.resource, spec: input.spec, metadata: { version: 1, createdAt: stamp, updatedAt: stamp } };
    if (input.pipeline !== undefined) resource.pipeline = input.pipeline;
    return resource;
  }

  async replaceResource(input: ResourceInput, makeRun: (version: number) => RunRecord): Promise<{ resource: Resource; run: RunRecord }> {
    const stamp = now();
    const run = transaction(this.db, () => {
      // Every replace is a new version with its run, the same spec too (the web page's "Run
      // again"); Kubernetes mode does the same.
      const row = this.sql('SELECT version FROM resources WHERE type = ? AND name = ?').get(input.resource, input.name) as Row | undefined;
      if (!row) throw new NotFoundError(`resource ${input.resource}/${input.name} not found`);
      const version = Number(row.version) + 1;
      const spec = JSON.stringify(input.spec);
      this.sql('UPDATE resources SET version = ?, pipeline = ?, spec = ?, updated_at = ? WHERE type = ? AND name = ?')
        .run(version, input.pipeline ?? null, spec, stamp, input.resource, input.name);
      this.sql('INSERT INTO resource_versions VALUES (?, ?, ?, ?, ?, ?)')
        .run(input.resource, input.name, version, input.pipeline ?? null, spec, stamp);
      const next = makeRun(version);
      this.insertRun(next);
      return next;
    });
    this.countRun(null, run.phase);
    this.emitRun(run);
    return { resource: (await this.getResource(input.resource, input.name))!, run };
  }

  async getResource(type: string, name: string, version?: number): Promise<Resource | undefined> {
    const current = this.sql('SELECT * FROM resources WHERE type = ? AND name = ?').get(type, name) as Row | undefined;
    if (!current || version === undefined) return current ? resourceFromRow(current) : undefined;
    const row = this.sql('SELECT * FROM resource_versions WHERE type = ? AND name = ? AND version = ?')
      .get(type, name, version) as Row | undefined;
    return row ? resourceFromRow(row, String(current.created_at), String(row.created_at)) : undefined;
  }

  async listResources(type: string): Promise<Resource[]> {
    return (this.sql('SELECT * FROM resources WHERE type = ? ORDER BY name').all(type) as Row[]).map((r) => resourceFromRow(r));
  }

  async deleteResource(type: string, name: string, run?: RunRecord): Promise<void> {
    transaction(this.db, () => {
      const { changes } = this.sql('DELETE FROM resources WHERE type = ? AND name = ?').run(type, name);
      if (changes === 0) throw new NotFoundError(`resource ${type}/${name} not found`);
      this.sql('DELETE FROM resource_versions WHERE type = ? AND name = ?').run(type, name);
      if (run) this.insertRun(run);
    });
    if (run) {
      this.countRun(null, run.phase);
      this.emitRun(run);
    }
  }

  private insertRun(run: RunRecord): void {
    this.sql(
        `INSERT INTO runs (runid, resource, name, version, driver, phase, reason, message, created_at,
           started_at, finished_at, steps, spec, pipeline, requested_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        run.runid, run.resource, run.name, run.version, run.driver, run.phase, run.reason, run.message,
        run.createdAt, run.startedAt, run.finishedAt, JSON.stringify(run.steps), JSON.stringify(run.spec), run.pipeline,
        run.requestedBy,
      );
  }

  async getRun(runid: string): Promise<RunRecord | undefined> {
    const row = this.sql('SELECT * FROM runs WHERE runid = ?').get(runid) as Row | undefined;
    return row ? runFromRow(row) : undefined;
  }

  async listRuns(filter: RunFilter): Promise<RunPage> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.resource) {
      where.push('resource = ?');
      params.push(filter.resource);
    }
    if (filter.name) {
      where.push('name = ?');
      params.push(filter.name);
    }
    if (filter.phase) {
      where.push('phase = ?');
      params.push(filter.phase);
    }
    if (filter.continue) {
      if (!/^\d+$/.test(filter.continue)) throw new BadRequestError(`continue "${filter.continue}" is not a token this server issued`);
      where.push('ord < ?');
      params.push(Number(filter.continue));
    }
    // The public columns only: a page never carries the spec, the largest column.
    const sql = `SELECT ${PUBLIC_RUN_COLUMNS}, ord FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ord DESC LIMIT ?`;
    const rows = this.sql(sql).all(...params, filter.limit + 1) as Row[];
    const page: RunPage = { items: rows.slice(0, filter.limit).map(publicRunFromRow) };
    if (rows.length > filter.limit) page.continue = String(rows[filter.limit - 1]!.ord);
    return page;
  }

  async runsInPhase(...phases: RunPhase[]): Promise<RunRecord[]> {
    const marks = phases.map(() => '?').join(', ');
    return (this.sql(`SELECT * FROM runs WHERE phase IN (${marks}) ORDER BY ord`).all(...phases) as Row[]).map(runFromRow);
  }

  async nextPending(driver: string, limit: number): Promise<RunRecord[]> {
    const rows = this.sql(NEXT_PENDING_SQL).all(driver, limit) as Row[];
    return rows.map(runFromRow);
  }

  // Counted once from the table, then kept up to date by every run write (this store is the
  // database's only writer): a /metrics scrape costs the same with 100 or 100,000 runs.
  async countRunsByPhase(): Promise<Record<RunPhase, number>> {
    if (!this.phaseCounts) {
      const counts = Object.fromEntries(RUN_PHASES.map((p) => [p, 0])) as Record<RunPhase, number>;
      for (const row of this.sql('SELECT phase, count(*) AS n FROM runs GROUP BY phase').all() as Row[]) {
        counts[row.phase as RunPhase] = Number(row.n);
      }
      this.phaseCounts = counts;
    }
    return { ...this.phaseCounts };
  }

  private countRun(from: RunPhase | null, to: RunPhase): void {
    if (!this.phaseCounts || from === to) return;
    if (from !== null) this.phaseCounts[from]--;
    this.phaseCounts[to]++;
  }

  async updateRun(runid: string, change: (run: RunRecord) => RunRecord): Promise<RunRecord> {
    let before: RunPhase = 'Pending';
    const next = transaction(this.db, () => {
      const row = this.sql('SELECT * FROM runs WHERE runid = ?').get(runid) as Row | undefined;
      if (!row) throw new NotFoundError(`run ${runid} not found`);
      const current = runFromRow(row);
      before = current.phase;
      const updated = change(current);
      assertTransition(current, updated.phase);
      this.sql(
          `UPDATE runs SET driver = ?, phase = ?, reason = ?, message = ?, started_at = ?, finished_at = ?, steps = ?
           WHERE runid = ?`,
        )
        .run(updated.driver, updated.phase, updated.reason, updated.message, updated.startedAt, updated.finishedAt, JSON.stringify(updated.steps), runid);
      return updated;
    });
    this.countRun(before, next.phase);
    this.emitRun(next);
    return next;
  }

  // Listeners get the record as written, after the writer's call returns (as before, when
  // each listener read it back: one read per listener per write, now none).
  onRunChange(listener: RunListener): () => void {
    // A listener that throws is reported, not an uncaught exception in a microtask.
    const handler = (run: RunRecord) => queueMicrotask(() => background('run-change-listener', () => listener(run)));
    this.events.on('run', handler);
    return () => this.events.off('run', handler);
  }

  private emitRun(run: RunRecord): void {
    if (this.events.listenerCount('run') > 0) this.events.emit('run', run);
  }

  async listDriverPipelines(): Promise<DriverPipeline[]> {
    return (this.sql('SELECT * FROM driver_pipelines ORDER BY name').all() as Row[]).map(pipelineFromRow);
  }

  async getDriverPipeline(name: string): Promise<DriverPipeline | undefined> {
    const row = this.sql('SELECT * FROM driver_pipelines WHERE name = ?').get(name) as Row | undefined;
    return row ? pipelineFromRow(row) : undefined;
  }

  async createDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline> {
    if (await this.getDriverPipeline(input.name)) throw new ConflictError(`pipeline "${input.name}" already exists`);
    const stamp = now();
    this.sql('INSERT INTO driver_pipelines VALUES (?, ?, ?, ?, ?, ?)')
      .run(input.name, input.resource, input.description, JSON.stringify(input.steps), stamp, stamp);
    return (await this.getDriverPipeline(input.name))!;
  }

  async replaceDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline> {
    const { changes } = this.sql('UPDATE driver_pipelines SET resource = ?, description = ?, steps = ?, updated_at = ? WHERE name = ?')
      .run(input.resource, input.description, JSON.stringify(input.steps), now(), input.name);
    if (changes === 0) throw new NotFoundError(`pipeline "${input.name}" not found`);
    return (await this.getDriverPipeline(input.name))!;
  }

  async deleteDriverPipeline(name: string): Promise<void> {
    const { changes } = this.sql('DELETE FROM driver_pipelines WHERE name = ?').run(name);
    if (changes === 0) throw new NotFoundError(`pipeline "${name}" not found`);
  }

  async addBroadcast(input: BroadcastInput): Promise<BroadcastMessage> {
    const message: BroadcastMessage = {
      id: input.id ?? uuidv4(),
      event: input.event,
      payload: input.payload,
      runId: input.runId,
      createdAt: now(),
    };
    try {
      this.sql('INSERT INTO broadcasts VALUES (?, ?, ?, ?, ?)')
        .run(message.id, message.event, JSON.stringify(message.payload), message.runId, message.createdAt);
    } catch (err) {
      if (String((err as Error).message).includes('UNIQUE')) throw new ConflictError(`message id "${message.id}" was already published`);
      throw err;
    }
    return message;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export { openDatabase } from './database.ts';
