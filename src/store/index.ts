// The Store: everything Conveyor keeps about resources and runs. Two implementations pass
// one contract suite: `embedded/` (node:sqlite, local mode) and `kubernetes/` (custom
// resources). Log lines are not here: they live in the log archive (`logs/`), which is
// always on the server's own disk.
import type {
  BroadcastInput,
  BroadcastMessage,
  DefinitionInput,
  DriverPipeline,
  DriverPipelineInput,
  Resource,
  ResourceDefinition,
  ResourceInput,
  Run,
  RunPhase,
  RunRecord,
} from '../domain/index.ts';

export type { RunRecord } from '../domain/index.ts';

// A list answers with public runs: no `spec` or `pipeline`, which only the controllers read
// (through getRun and friends), so a store need not read or parse them for a page.
export interface RunPage {
  items: Run[];
  continue?: string;
}

export interface RunFilter {
  resource?: string;
  name?: string;
  phase?: RunPhase;
  limit: number;
  continue?: string;
}

export type RunListener = (run: RunRecord) => void;

export interface Store {
  listDefinitions(): Promise<ResourceDefinition[]>;
  getDefinition(name: string): Promise<ResourceDefinition | undefined>;
  createDefinition(input: DefinitionInput): Promise<ResourceDefinition>;
  applyDefinition(input: DefinitionInput): Promise<{ definition: ResourceDefinition; created: boolean }>;
  replaceDefinition(input: DefinitionInput): Promise<ResourceDefinition>;
  deleteDefinition(name: string): Promise<void>;

  // A resource is written together with the run it starts: both or neither.
  createResource(input: ResourceInput, run: RunRecord): Promise<Resource>;
  replaceResource(input: ResourceInput, run: (version: number) => RunRecord): Promise<{ resource: Resource; run: RunRecord }>;
  getResource(type: string, name: string, version?: number): Promise<Resource | undefined>;
  listResources(type: string): Promise<Resource[]>;
  // `run`, when given, is the run the deletion starts (external drivers are told), written
  // with the deletion.
  deleteResource(type: string, name: string, run?: RunRecord): Promise<void>;

  getRun(runid: string): Promise<RunRecord | undefined>;
  listRuns(filter: RunFilter): Promise<RunPage>;
  runsInPhase(...phases: RunPhase[]): Promise<RunRecord[]>;
  // The oldest Pending runs of one driver, at most `limit` of them.
  nextPending(driver: string, limit: number): Promise<RunRecord[]>;
  countRunsByPhase(): Promise<Record<RunPhase, number>>;
  // Read-modify-write of one run; `change` sees the current record and returns the next.
  updateRun(runid: string, change: (run: RunRecord) => RunRecord): Promise<RunRecord>;
  onRunChange(listener: RunListener): () => void;

  listDriverPipelines(): Promise<DriverPipeline[]>;
  getDriverPipeline(name: string): Promise<DriverPipeline | undefined>;
  createDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline>;
  replaceDriverPipeline(input: DriverPipelineInput): Promise<DriverPipeline>;
  deleteDriverPipeline(name: string): Promise<void>;

  addBroadcast(input: BroadcastInput): Promise<BroadcastMessage>;

  close(): Promise<void>;
}
