// Benchmark 4: the API's hot path against its floor, at several store sizes.
//
// For each size N the bench seeds a database with N finished pipeline runs and N Pending
// runs of a type no driver serves (each with its resource), copies it, and starts on the
// two copies (a) the real server (`conveyor serve`, local mode) and (b) the floor: a bare
// node:http server doing the same SQLite work for the same requests (bench/lib/floor-server.ts).
// 32 keep-alive clients then drive each route, in rounds that alternate floor and server:
//   GET /resources/pipeline/{name}, GET /runs/{id}, GET /runs?limit=50  (random seeded keys)
//   POST /resources/ of the driverless type, then of a pipeline (which the real server also
//   runs; the floor only writes it)
// It prints requests/s, p50/p99 and server CPU per request for both, the ratio server/floor,
// and the server's RSS at that size. With --soak SECONDS, mixed requests keep going on the
// largest size's server while its RSS is sampled, to show it does not grow after warm-up.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DatabaseSync } from 'node:sqlite';
import { load, type LoadRep } from './create.ts';
import { HttpClient } from './lib/http.ts';
import { processCpuSeconds, processMemory, serverRoot, startServer, type BenchServer } from './lib/server.ts';
import { fmt, mb, median, round, sleep } from './lib/stats.ts';

export const DRIVERLESS_TYPE = 'bench-thing';
const MIN_SEED = 64;

export interface Seeded {
  dir: string;
  runids: string[];
  resourceNames: string[];
  finished: number;
  pending: number;
}

// Writes the rows the real server would have written for N finished pipeline runs and N
// Pending driverless runs, in one transaction, straight into the server's own schema.
export async function seed(n: number, withPending = true): Promise<Seeded> {
  const { openDatabase } = (await import(join(serverRoot, 'src/store/embedded/database.ts'))) as { openDatabase: (dir: string) => DatabaseSync };
  const dir = mkdtempSync(join(tmpdir(), 'conveyor-bench-api-'));
  const db = openDatabase(dir);
  const stamp = new Date().toISOString();
  const schema = { type: 'object', properties: { size: { type: 'integer', minimum: 0 } }, required: ['size'], additionalProperties: false };
  // The built-in `pipeline` row too (the server rewrites it at start), so the floor finds it.
  db.prepare('INSERT INTO definitions VALUES (?, ?, ?, ?, ?, 1, ?, ?)').run('pipeline', randomUUID(), '1', 'built in', '{}', stamp, stamp);
  db.prepare('INSERT INTO definitions VALUES (?, ?, ?, ?, ?, 0, ?, ?)').run(DRIVERLESS_TYPE, randomUUID(), '1', 'served by no driver', JSON.stringify(schema), stamp, stamp);
  const resource = db.prepare('INSERT INTO resources VALUES (?, ?, 1, NULL, ?, ?, ?)');
  const version = db.prepare('INSERT INTO resource_versions VALUES (?, ?, 1, NULL, ?, ?)');
  const run = db.prepare(
    `INSERT INTO runs (runid, resource, name, version, driver, phase, reason, message, created_at, started_at, finished_at, steps, spec, pipeline)
     VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
  );
  const count = Math.max(n, MIN_SEED);
  const runids: string[] = [];
  const resourceNames: string[] = [];
  const pipelineSpec = JSON.stringify({ image: 'alpine:3', steps: [{ name: 'noop', command: 'true' }] });
  const doneSteps = JSON.stringify([{ name: 'noop', phase: 'Succeeded', exitCode: 0, startedAt: stamp, finishedAt: stamp }]);
  db.exec('BEGIN');
  for (let i = 0; i < count; i++) {
    const name = `seed-p-${i}`;
    const id = randomUUID();
    resource.run('pipeline', name, pipelineSpec, stamp, stamp);
    version.run('pipeline', name, pipelineSpec, stamp);
    run.run(id, 'pipeline', name, 'command-runner', 'Succeeded', 'Succeeded', 'all steps succeeded', stamp, stamp, stamp, doneSteps, pipelineSpec);
    runids.push(id);
    resourceNames.push(name);
  }
  for (let i = 0; withPending && i < count; i++) {
    const name = `seed-t-${i}`;
    const id = randomUUID();
    const spec = JSON.stringify({ size: i });
    resource.run(DRIVERLESS_TYPE, name, spec, stamp, stamp);
    version.run(DRIVERLESS_TYPE, name, spec, stamp);
    run.run(id, DRIVERLESS_TYPE, name, 'none', 'Pending', 'NoDriver', 'no driver serves it', stamp, null, null, '[]', spec);
    runids.push(id);
  }
  db.exec('COMMIT');
  db.close();
  return { dir, runids, resourceNames, finished: count, pending: withPending ? count : 0 };
}

export function copyData(from: string): string {
  const to = mkdtempSync(join(tmpdir(), 'conveyor-bench-floor-'));
  for (const file of ['conveyor.db', 'conveyor.db-wal', 'conveyor.db-shm']) {
    if (existsSync(join(from, file))) copyFileSync(join(from, file), join(to, file));
  }
  return to;
}

export interface Target {
  url: string;
  pid: number;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

// `framework`: see bench/lib/floor-server.ts (the framework ladder serves the floor's answers through Koa).
export async function startFloor(dataDir: string, framework: 'node' | 'koa' | 'koa-router' = 'node'): Promise<Target> {
  const child: ChildProcess = spawn(process.execPath, ['--max-semi-space-size=8', join(import.meta.dirname, 'lib/floor-server.ts'), dataDir, framework], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  const pid = child.pid!;
  const exited = new Promise((r) => child.once('exit', r));
  return {
    url,
    pid,
    cpuSeconds: () => processCpuSeconds(pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Request = (client: HttpClient, i: number) => Promise<void>;

function expectReply(label: string, status: number, text: string, wanted: number, contains: string): void {
  if (status !== wanted || !text.includes(contains)) throw new Error(`${label}: ${status} ${text.slice(0, 300)}`);
}

export function routes(seeded: Seeded, tag: string): { name: string; kind: 'GET' | 'POST'; request: Request }[] {
  const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;
  return [
    {
      name: 'GET /resources/{type}/{name}',
      kind: 'GET',
      async request(client) {
        const name = pick(seeded.resourceNames);
        const r = await client.send('GET', `/resources/pipeline/${name}`);
        expectReply('GET resource', r.status, r.text, 200, `"${name}"`);
      },
    },
    {
      name: 'GET /runs/{id}',
      kind: 'GET',
      async request(client) {
        const id = pick(seeded.runids);
        const r = await client.send('GET', `/runs/${id}`);
        expectReply('GET run', r.status, r.text, 200, id);
      },
    },
    {
      name: 'GET /runs?limit=50',
      kind: 'GET',
      async request(client) {
        const r = await client.send('GET', '/runs?limit=50');
        expectReply('GET /runs', r.status, r.text, 200, '"continue"');
      },
    },
    {
      name: `POST /resources/ (${DRIVERLESS_TYPE}, no driver)`,
      kind: 'POST',
      async request(client, i) {
        const name = `b-${tag}-${i}`;
        const r = await client.send('POST', '/resources/', { name, resource: DRIVERLESS_TYPE, spec: { size: i } });
        expectReply('POST driverless', r.status, r.text, 201, `"${name}"`);
      },
    },
    {
      name: 'POST /resources/ (pipeline)',
      kind: 'POST',
      async request(client, i) {
        const name = `p-${tag}-${i}`;
        const r = await client.send('POST', '/resources/', {
          name,
          resource: 'pipeline',
          spec: { image: 'alpine:3', steps: [{ name: 'noop', command: 'true' }] },
        });
        expectReply('POST pipeline', r.status, r.text, 201, `"${name}"`);
      },
    },
  ];
}

export interface RouteFigures {
  route: string;
  server: { rps: number; p50Ms: number; p99Ms: number; cpuMsPerRequest: number; reps: LoadRep[] };
  floor: { rps: number; p50Ms: number; p99Ms: number; cpuMsPerRequest: number; reps: LoadRep[] };
  ratio: number;
  // Floor CPU per request over the server's: steadier than requests/s on a busy machine.
  cpuRatio: number;
  target: number;
}

export interface SizeResult {
  runsStored: number;
  pendingStored: number;
  routes: RouteFigures[];
  serverRssBytes: number;
  serverPeakRssBytes: number;
  floorRssBytes: number;
}

export interface SoakSample {
  atSeconds: number;
  rssBytes: number;
  requests: number;
}

export interface SoakResult {
  seconds: number;
  warmupSeconds: number;
  requests: number;
  rps: number;
  samples: SoakSample[];
  rssAfterWarmupBytes: number;
  rssMaxAfterWarmupBytes: number;
  rssEndBytes: number;
  // Least-squares slope of RSS over the samples after warm-up.
  slopeMbPerMinute: number;
}

export interface ApiResult {
  concurrency: number;
  sizes: SizeResult[];
  soak?: SoakResult;
}

export interface ApiOptions {
  sizes: number[];
  concurrency: number;
  getRequests: number;
  postRequests: number;
  rounds: number;
  soakSeconds: number;
  // Only the routes whose name contains one of these (e.g. "GET", "no driver"), for profiling.
  routeFilter?: string[];
  cpuProfDir?: string;
  log: (line: string) => void;
}

const summarize = (reps: LoadRep[]) => ({
  rps: round(median(reps.map((r) => r.rps)), 1),
  p50Ms: round(median(reps.map((r) => r.p50Ms)), 2),
  p99Ms: round(median(reps.map((r) => r.p99Ms)), 2),
  cpuMsPerRequest: round(median(reps.map((r) => r.serverCpuMsPerRequest)), 3),
  reps,
});

async function soak(server: BenchServer, seeded: Seeded, options: ApiOptions): Promise<SoakResult> {
  const { log, concurrency } = options;
  const client = new HttpClient(server.url, concurrency);
  const all = routes(seeded, `soak${Date.now().toString(36)}`);
  // Mostly reads, as a CI server sees: 30% run, 20% resource, 20% run list, 25% driverless
  // writes, 5% pipelines (each one also runs).
  const weighted = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4].map((i) => all[i]!);
  const started = performance.now();
  const end = started + options.soakSeconds * 1000;
  let requests = 0;
  let stop = false;
  const samples: SoakSample[] = [];
  const sampler = (async () => {
    while (!stop) {
      samples.push({ atSeconds: round((performance.now() - started) / 1000, 1), rssBytes: server.memory().rss, requests });
      await sleep(5000);
    }
  })();
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const i = n++;
        await weighted[i % weighted.length]!.request(client, i);
        requests++;
      }
    }),
  );
  stop = true;
  await sampler;
  samples.push({ atSeconds: round((performance.now() - started) / 1000, 1), rssBytes: server.memory().rss, requests });
  client.close();
  const seconds = (performance.now() - started) / 1000;
  const warmupSeconds = Math.min(60, options.soakSeconds / 4);
  const after = samples.filter((s) => s.atSeconds >= warmupSeconds);
  const xs = after.map((s) => s.atSeconds / 60);
  const ys = after.map((s) => s.rssBytes / 2 ** 20);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i]! - my), 0) / Math.max(1e-9, xs.reduce((a, x) => a + (x - mx) ** 2, 0));
  for (const s of samples) log(`    soak ${fmt(s.atSeconds, 0).padStart(4)} s: RSS ${mb(s.rssBytes)}, ${fmt(s.requests, 0)} requests`);
  return {
    seconds: round(seconds, 1),
    warmupSeconds,
    requests,
    rps: round(requests / seconds, 1),
    samples,
    rssAfterWarmupBytes: after[0]?.rssBytes ?? NaN,
    rssMaxAfterWarmupBytes: Math.max(...after.map((s) => s.rssBytes)),
    rssEndBytes: samples.at(-1)!.rssBytes,
    slopeMbPerMinute: round(slope, 2),
  };
}

export async function benchApi(options: ApiOptions): Promise<ApiResult> {
  const { log, concurrency } = options;
  const result: ApiResult = { concurrency, sizes: [] };
  for (const [sizeIndex, size] of options.sizes.entries()) {
    const t0 = performance.now();
    const seeded = await seed(size);
    const floorDir = copyData(seeded.dir);
    log(`  -- ${fmt(seeded.finished, 0)} finished runs + ${fmt(seeded.pending, 0)} Pending runs stored (seeded in ${fmt((performance.now() - t0) / 1000, 1)} s)`);
    const server = await startServer({ dataDir: seeded.dir, cpuProfDir: options.cpuProfDir, label: `api-${size}` });
    const floor = await startFloor(floorDir);
    const targets = { server: server as Target, floor };
    const clients = { server: new HttpClient(server.url, concurrency), floor: new HttpClient(floor.url, concurrency) };
    const sizeResult: SizeResult = { runsStored: seeded.finished + seeded.pending, pendingStored: seeded.pending, routes: [], serverRssBytes: 0, serverPeakRssBytes: 0, floorRssBytes: 0 };
    try {
      const filter = options.routeFilter;
      const list = routes(seeded, `${size}-${Date.now().toString(36)}`).filter((r) => !filter || filter.some((f) => r.name.includes(f)));
      let counter = 0;
      // Warm-up of both: JIT, connections, the pages SQLite touches.
      for (const which of ['floor', 'server'] as const) {
        for (const route of list.filter((r) => r.kind === 'GET')) {
          await load(targets[which], concurrency, 1000, 60_000, (i) => route.request(clients[which], i));
        }
      }
      for (const route of list) {
        // A POST route is warmed up right before it is measured: the pipelines a warm-up
        // creates are executed by the server, and would load the routes measured before.
        if (route.kind === 'POST') {
          for (const which of ['floor', 'server'] as const) {
            await load(targets[which], concurrency, 200, 60_000, () => route.request(clients[which], counter++));
          }
        }
        const count = route.kind === 'GET' ? options.getRequests : options.postRequests;
        const reps = { server: [] as LoadRep[], floor: [] as LoadRep[] };
        for (let round_ = 0; round_ < options.rounds; round_++) {
          const order = round_ % 2 === 0 ? (['floor', 'server'] as const) : (['server', 'floor'] as const);
          for (const which of order) {
            reps[which].push(await load(targets[which], concurrency, count, 60_000, () => route.request(clients[which], counter++)));
          }
        }
        const s = summarize(reps.server);
        const f = summarize(reps.floor);
        const figures: RouteFigures = { route: route.name, server: s, floor: f, ratio: round(s.rps / f.rps, 3), cpuRatio: round(f.cpuMsPerRequest / s.cpuMsPerRequest, 3), target: route.kind === 'GET' ? 0.8 : 0.6 };
        sizeResult.routes.push(figures);
        log(
          `  ${route.name.padEnd(40)} server ${fmt(s.rps, 0).padStart(6)} req/s p50 ${fmt(s.p50Ms, 1)} p99 ${fmt(s.p99Ms, 1)} ms ${fmt(s.cpuMsPerRequest, 3)} ms CPU` +
            ` | floor ${fmt(f.rps, 0).padStart(6)} req/s p50 ${fmt(f.p50Ms, 1)} p99 ${fmt(f.p99Ms, 1)} ms ${fmt(f.cpuMsPerRequest, 3)} ms CPU | ratio ${fmt(figures.ratio, 2)}, CPU ratio ${fmt(figures.cpuRatio, 2)}`,
        );
      }
      const memory = server.memory();
      sizeResult.serverRssBytes = memory.rss;
      sizeResult.serverPeakRssBytes = memory.peakRss;
      sizeResult.floorRssBytes = processMemory(floor.pid).rss;
      log(`  server RSS ${mb(memory.rss)} (peak ${mb(memory.peakRss)}), floor RSS ${mb(sizeResult.floorRssBytes)}`);
      result.sizes.push(sizeResult);
      if (options.soakSeconds > 0 && sizeIndex === options.sizes.length - 1) {
        clients.floor.close();
        await floor.stop();
        log(`  -- soak: ${options.soakSeconds} s of mixed requests at ${concurrency} clients on this server, RSS every 5 s`);
        result.soak = await soak(server, seeded, options);
        const k = result.soak;
        log(
          `  soak: ${fmt(k.requests, 0)} requests (${fmt(k.rps, 0)}/s); RSS after ${k.warmupSeconds} s warm-up ${mb(k.rssAfterWarmupBytes)}, ` +
            `max after ${mb(k.rssMaxAfterWarmupBytes)}, end ${mb(k.rssEndBytes)}, trend ${fmt(k.slopeMbPerMinute, 2)} MB/min`,
        );
      }
    } finally {
      clients.server.close();
      clients.floor.close();
      await server.stop();
      await floor.stop().catch(() => undefined);
    }
  }
  return result;
}
