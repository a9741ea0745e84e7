// Benchmark 5: the framework ladder. Issue 13 asks the GETs for 0.8 of the floor (a bare
// node:http server doing the same SQLite work). This measures how much of that budget the
// stack we build on takes by itself, before any of our middleware: the floor's own answers
// served (a) by node:http, (b) by a bare Koa app, (c) by Koa and @koa/router, next to
// (d) the real server, on copies of one seeded database, at 32 clients, in rounds that
// rotate the order. Printed per GET route: requests/s and server CPU per request of each
// rung, and each rung's ratio to the floor by both.
import { load, type LoadRep } from './create.ts';
import { copyData, routes, seed, startFloor, type Target } from './api.ts';
import { HttpClient } from './lib/http.ts';
import { startServer } from './lib/server.ts';
import { fmt, median, round } from './lib/stats.ts';

export const RUNGS = ['node:http (floor)', 'Koa', 'Koa + @koa/router', 'conveyor serve'] as const;
type Rung = (typeof RUNGS)[number];

export interface LadderRoute {
  route: string;
  rungs: { rung: Rung; rps: number; cpuMsPerRequest: number; ratio: number; cpuRatio: number; reps: LoadRep[] }[];
}

export interface LadderResult {
  runsStored: number;
  concurrency: number;
  routes: LadderRoute[];
}

export interface LadderOptions {
  size: number;
  concurrency: number;
  requests: number;
  rounds: number;
  log: (line: string) => void;
}

export async function benchLadder(options: LadderOptions): Promise<LadderResult> {
  const { log, concurrency } = options;
  const seeded = await seed(options.size);
  const targets = new Map<Rung, Target>();
  const clients = new Map<Rung, HttpClient>();
  try {
    targets.set('node:http (floor)', await startFloor(copyData(seeded.dir), 'node'));
    targets.set('Koa', await startFloor(copyData(seeded.dir), 'koa'));
    targets.set('Koa + @koa/router', await startFloor(copyData(seeded.dir), 'koa-router'));
    targets.set('conveyor serve', await startServer({ dataDir: seeded.dir, label: 'ladder' }));
    for (const [rung, target] of targets) clients.set(rung, new HttpClient(target.url, concurrency));
    const result: LadderResult = { runsStored: seeded.finished + seeded.pending, concurrency, routes: [] };
    for (const route of routes(seeded, 'ladder').filter((r) => r.kind === 'GET')) {
      const reps = new Map<Rung, LoadRep[]>(RUNGS.map((r) => [r, []]));
      for (const rung of RUNGS) await load(targets.get(rung)!, concurrency, 1000, 60_000, (i) => route.request(clients.get(rung)!, i));
      for (let round_ = 0; round_ < options.rounds; round_++) {
        // Each round starts with another rung, so that no rung always runs first or last.
        const order = RUNGS.map((_, i) => RUNGS[(i + round_) % RUNGS.length]!);
        for (const rung of order) {
          reps.get(rung)!.push(await load(targets.get(rung)!, concurrency, options.requests, 60_000, (i) => route.request(clients.get(rung)!, i)));
        }
      }
      const floorReps = reps.get('node:http (floor)')!;
      const floorRps = median(floorReps.map((r) => r.rps));
      const floorCpu = median(floorReps.map((r) => r.serverCpuMsPerRequest));
      const figures: LadderRoute = {
        route: route.name,
        rungs: RUNGS.map((rung) => {
          const rs = reps.get(rung)!;
          const rps = median(rs.map((r) => r.rps));
          const cpu = median(rs.map((r) => r.serverCpuMsPerRequest));
          return { rung, rps: round(rps, 1), cpuMsPerRequest: round(cpu, 4), ratio: round(rps / floorRps, 3), cpuRatio: round(floorCpu / cpu, 3), reps: rs };
        }),
      };
      result.routes.push(figures);
      log(`  ${route.name}`);
      for (const r of figures.rungs) {
        log(`    ${r.rung.padEnd(20)} ${fmt(r.rps, 0).padStart(6)} req/s ${fmt(r.cpuMsPerRequest * 1000, 1).padStart(6)} µs CPU/request | ratio to the floor ${fmt(r.ratio, 2)}, CPU ratio ${fmt(r.cpuRatio, 2)}`);
      }
    }
    return result;
  } finally {
    for (const client of clients.values()) client.close();
    for (const target of targets.values()) await target.stop().catch(() => undefined);
  }
}
