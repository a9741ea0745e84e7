// `conveyor get TYPE [NAME]`: resources of a type, runs, or resource definitions, as a
// table (one object: a detail view) or, with -o json, the server's JSON as it answered.
import { InvalidArgumentError, type Command } from 'commander';
import { clientFor, exitOnUsageError, terminal, type ConveyorClient, type Terminal } from './client.ts';
import { outputOption, type LogFormat } from './logs.ts';
import {
  formatDefinition,
  formatDefinitionsTable,
  formatDriversTable,
  formatResource,
  formatResourcesTable,
  formatRun,
  formatRunsTable,
  type DefinitionView,
  type DriverView,
  type ResourceView,
  type RunView,
} from './output.ts';

const RUN_TYPES = new Set(['runs', 'run']);
const DEFINITION_TYPES = new Set(['definitions', 'definition', 'resource-definitions', 'resource-definition']);
const DRIVER_TYPES = new Set(['drivers', 'driver']);

interface GetOptions {
  output: LogFormat;
  limit?: string;
}

interface RunPage {
  items: RunView[];
  continue?: string;
}

const seg = encodeURIComponent;

function parseLimit(raw: string): string {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new InvalidArgumentError('must be a whole number of at least 1');
  return raw;
}

async function getRuns(client: ConveyorClient, term: Terminal, name: string | undefined, opts: GetOptions): Promise<void> {
  if (name !== undefined) {
    const run = await client.get<RunView>(`/runs/${seg(name)}`);
    term.print(opts.output === 'json' ? JSON.stringify(run, null, 2) : formatRun(run, term.style));
    return;
  }
  const page = await client.get<RunPage>(`/runs${opts.limit ? `?limit=${opts.limit}` : ''}`);
  if (opts.output === 'json') return term.print(JSON.stringify(page, null, 2));
  if (page.items.length === 0) return term.note('No runs found.');
  term.print(formatRunsTable(page.items));
  if (page.continue) term.note(`(${page.items.length} newest runs shown; --limit shows more, up to 500)`);
}

async function getDefinitions(client: ConveyorClient, term: Terminal, name: string | undefined, opts: GetOptions): Promise<void> {
  if (name !== undefined) {
    const def = await client.get<DefinitionView>(`/resource-definitions/${seg(name)}`);
    term.print(opts.output === 'json' ? JSON.stringify(def, null, 2) : formatDefinition(def));
    return;
  }
  const defs = await client.get<DefinitionView[]>('/resource-definitions');
  if (opts.output === 'json') return term.print(JSON.stringify(defs, null, 2));
  term.print(formatDefinitionsTable(defs));
}

async function getDrivers(client: ConveyorClient, term: Terminal, name: string | undefined, opts: GetOptions): Promise<void> {
  const all = await client.get<DriverView[]>('/drivers');
  const drivers = name === undefined ? all : all.filter((d) => d.name === name);
  if (opts.output === 'json') return term.print(JSON.stringify(name === undefined ? drivers : (drivers[0] ?? null), null, 2));
  if (drivers.length === 0) return term.note(name === undefined ? 'No external drivers (the server needs --nats-url for them).' : `No driver named ${name}.`);
  term.print(formatDriversTable(drivers));
}

async function getResources(client: ConveyorClient, term: Terminal, type: string, name: string | undefined, opts: GetOptions): Promise<void> {
  if (name !== undefined) {
    const resource = await client.get<ResourceView>(`/resources/${seg(type)}/${seg(name)}`);
    if (opts.output === 'json') return term.print(JSON.stringify(resource, null, 2));
    const runs = await client.get<RunPage>(`/runs?resource=${seg(type)}&name=${seg(name)}&limit=5`);
    term.print(formatResource(resource, runs.items, term.style));
    return;
  }
  const resources = await client.get<ResourceView[]>(`/resources/${seg(type)}`);
  if (opts.output === 'json') return term.print(JSON.stringify(resources, null, 2));
  if (resources.length === 0) return term.note(`No ${type} resources found.`);
  term.print(formatResourcesTable(resources));
}

export function registerGet(program: Command): void {
  program
    .command('get')
    .description('show resources of a type, runs (TYPE "runs"), resource definitions (TYPE "definitions") or external drivers (TYPE "drivers")')
    .argument('<type>', 'a resource type such as pipeline, or runs, or definitions')
    .argument('[name]', 'one resource, run id or definition by name')
    .addOption(outputOption())
    .option('--limit <n>', 'runs: how many of the newest to list (server default 50, most 500)', parseLimit)
    .exitOverride(exitOnUsageError)
    .action(async (type: string, name: string | undefined, opts: GetOptions, command: Command) => {
      const client = clientFor(command);
      const term = terminal();
      if (RUN_TYPES.has(type)) await getRuns(client, term, name, opts);
      else if (DEFINITION_TYPES.has(type)) await getDefinitions(client, term, name, opts);
      else if (DRIVER_TYPES.has(type)) await getDrivers(client, term, name, opts);
      else await getResources(client, term, type, name, opts);
    });
}
