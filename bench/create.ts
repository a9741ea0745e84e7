// Benchmark 1: POST /resources/ at 32 concurrent keep-alive clients. Each request creates a
// new, uniquely named pipeline resource (one step, `true`), so each one also writes a run;
// the runs queue as Pending behind the default concurrency and that is part of the load.
// Baseline in the same run: GET /ping on the same server, clients and connections.
import { HttpClient, UUID_V4, pipelineResource } from './lib/http.ts';
import type { BenchServer } from './lib/server.ts';
import { median, percentile, round } from './lib/stats.ts';

export interface LoadRep {
  requests: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  // Server CPU (user + system) per request, ms: steadier than wall time on a busy machine.
  serverCpuMsPerRequest: number;
  timedOut: boolean;
}

export interface LoadSummary {
  reps: LoadRep[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuMsPerRequest: number;
}

export interface CreateResult {
  concurrency: number;
  requestsPerRep: number;
  create: LoadSummary;
  ping: LoadSummary;
  createVsPingRps: number;
  // Requests/s of the last repetition over the first: below 1 when the server slows down
  // as the runs the earlier repetitions created pile up as Pending.
  createDrift: number;
  runsCreated: number;
  serverPeakRssBytes?: number;
  pendingAfter: number;
}

// Fires `count` requests from `concurrency` loops; stops issuing new ones at `deadline`.
export async function load(server: Pick<BenchServer, 'cpuSeconds'>, concurrency: number, count: number, timeLimitMs: number, one: (i: number) => Promise<void>): Promise<LoadRep> {
  const cpu0 = server.cpuSeconds();
  const latencies: number[] = [];
  let next = 0;
  let timedOut = false;
  const start = performance.now();
  const deadline = start + timeLimitMs;
  const worker = async () => {
    for (;;) {
      if (next >= count) return;
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const i = next++;
      const t0 = performance.now();
      await one(i);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  return {
    requests: latencies.length,
    seconds: round(seconds, 3),
    rps: round(latencies.length / seconds, 1),
    p50Ms: round(percentile(latencies, 50), 2),
    p99Ms: round(percentile(latencies, 99), 2),
    serverCpuMsPerRequest: round(((server.cpuSeconds() - cpu0) * 1000) / latencies.length, 3),
    timedOut,
  };
}

function summarize(reps: LoadRep[]): LoadSummary {
  return {
    reps,
    rps: round(median(reps.map((r) => r.rps)), 1),
    p50Ms: round(median(reps.map((r) => r.p50Ms)), 2),
    p99Ms: round(median(reps.map((r) => r.p99Ms)), 2),
    serverCpuMsPerRequest: round(median(reps.map((r) => r.serverCpuMsPerRequest)), 3),
  };
}

export interface CreateOptions {
  concurrency: number;
  requests: number;
  reps: number;
  timeLimitMs: number;
  log: (line: string) => void;
}

export async function benchCreate(server: BenchServer, options: CreateOptions): Promise<CreateResult> {
  const { concurrency, requests, reps, timeLimitMs, log } = options;
  const client = new HttpClient(server.url, concurrency);
  const runids = new Set<string>();
  const tag = Date.now().toString(36);
  const create = (rep: string) => async (i: number) => {
    const name = `bench-${tag}-${rep}-${i}`;
    const reply = await client.send('POST', '/resources/', pipelineResource(name, [['noop', 'true']]));
    if (reply.status !== 201) throw new Error(`POST /resources/ ${name}: ${reply.status} ${reply.text}`);
    const body = JSON.parse(reply.text) as { runid?: string; name?: string; version?: string };
    if (body.name !== name || body.version !== '1' || !UUID_V4.test(body.runid ?? '') || runids.has(body.runid!)) {
      throw new Error(`POST /resources/ ${name}: unexpected body ${reply.text}`);
    }
    runids.add(body.runid!);
  };
  const ping = async () => {
    const reply = await client.send('GET', '/ping');
    if (reply.status !== 200 || reply.text !== 'pong') throw new Error(`GET /ping: ${reply.status} ${reply.text}`);
  };

  // Warm-up: JIT, connections, SQLite pages.
  await load(server, concurrency, Math.min(500, requests), timeLimitMs, ping);
  await load(server, concurrency, Math.min(200, requests), timeLimitMs, create('warm'));

  const pingReps: LoadRep[] = [];
  const createReps: LoadRep[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const p = await load(server, concurrency, requests, timeLimitMs, ping);
    pingReps.push(p);
    const c = await load(server, concurrency, requests, timeLimitMs, create(String(rep)));
    createReps.push(c);
    log(
      `  rep ${rep + 1}/${reps}: POST ${c.rps} req/s p50 ${c.p50Ms} ms p99 ${c.p99Ms} ms, server CPU ${c.serverCpuMsPerRequest} ms/req${c.timedOut ? ' (time limit hit)' : ''}` +
        ` | ping ${p.rps} req/s p50 ${p.p50Ms} ms p99 ${p.p99Ms} ms, ${p.serverCpuMsPerRequest} ms/req`,
    );
  }
  client.close();

  const phases = await new HttpClient(server.url, 1).send('GET', '/metrics');
  const pending = /^conveyor_runs\{phase="Pending"\} (\d+)/m.exec(phases.text)?.[1];
  const createSummary = summarize(createReps);
  const pingSummary = summarize(pingReps);
  return {
    concurrency,
    requestsPerRep: requests,
    create: createSummary,
    ping: pingSummary,
    createVsPingRps: round(createSummary.rps / pingSummary.rps, 3),
    createDrift: round(createReps.at(-1)!.rps / createReps[0]!.rps, 3),
    runsCreated: runids.size,
    pendingAfter: pending === undefined ? NaN : Number(pending),
  };
}
