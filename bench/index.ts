// `npm run bench`: the local-mode benchmarks of issue 3, point 12. Each starts the real
// server (`conveyor serve`, local mode, default flags) as a child process on a free port
// with a fresh data directory, prints medians with a baseline measured in the same run,
// ends with a summary table and writes the figures to bench/results/latest.json.
//
// Flags: --only create,first-line,fanout,api,ladder   run a subset (ladder: only when named)
//        --sizes 0,10000,100000            api: runs stored (and as many Pending) per size
//        --routes GET,driver               api: only the routes whose name contains one of these
//        --soak SECONDS                    api: mixed requests on the largest size, RSS sampled
//        --quick                           fewer repetitions and lines (a smoke run)
//        --replay                          fan-out: also 50 clients replaying the ended run
//        --profile                         CPU-profile the servers; prints their hottest functions
// No figure fails the run; a correctness failure (a lost, repeated or reordered line, an
// unexpected answer) does, with exit code 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchApi, type ApiResult } from './api.ts';
import { benchCreate, type CreateResult } from './create.ts';
import { benchFanout, type FanoutResult } from './fanout.ts';
import { benchFirstLine, type FirstLineResult } from './first-line.ts';
import { benchLadder, type LadderResult } from './ladder.ts';
import { profileTop } from './profile-top.ts';
import { repoRoot, serverRoot, startServer } from './lib/server.ts';
import { fmt, mb } from './lib/stats.ts';

const { values: flags } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    replay: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    soak: { type: 'string', default: '0' },
    routes: { type: 'string' },
  },
});
const ALL = ['create', 'first-line', 'fanout', 'api', 'ladder'] as const;
// The ladder explains a figure of `api` rather than adding one: it runs when named.
const DEFAULT = ['create', 'first-line', 'fanout', 'api'] as const;
const selected = new Set<string>(flags.only ? flags.only.split(',').map((s) => s.trim()) : DEFAULT);
for (const name of selected) {
  if (!(ALL as readonly string[]).includes(name)) {
    process.stderr.write(`bench: unknown benchmark "${name}"; choose from ${ALL.join(', ')}\n`);
    process.exit(2);
  }
}
const quick = flags.quick;
const resultsDir = join(import.meta.dirname, 'results');
const profileDir = flags.profile ? join(resultsDir, 'profiles', new Date().toISOString().replace(/[:.]/g, '-')) : undefined;
const log = (line: string) => console.log(line);

function gitCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: serverRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: serverRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${sha} (src/ modified)` : sha;
  } catch {
    return 'unknown';
  }
}

const machine = {
  node: process.version,
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryBytes: totalmem(),
  loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  loadAverageAtEnd: [] as number[],
};
log(`Conveyor local-mode benchmarks — commit ${gitCommit()}, node ${machine.node}, ${machine.cpus} CPUs (${machine.cpuModel})`);
if (serverRoot !== repoRoot) log(`server from ${serverRoot} (BENCH_SERVER_ROOT)`);
if (machine.loadAverageAtStart[0]! > machine.cpus * 0.5) {
  log(`note: load average ${machine.loadAverageAtStart.join(' ')} on ${machine.cpus} CPUs — other work on this machine will show in the wall-clock figures`);
}

let failed = false;
const results: { create?: CreateResult; firstLine?: FirstLineResult; fanout?: FanoutResult; api?: ApiResult; ladder?: LadderResult } = {};
const errors: string[] = [];

async function section(title: string, work: () => Promise<void>): Promise<void> {
  log(`\n== ${title}`);
  const t0 = performance.now();
  try {
    await work();
  } catch (err) {
    failed = true;
    const message = err instanceof Error ? err.message : String(err);
    errors.push(`${title}: ${message}`);
    log(`  FAILED: ${message}`);
  }
  log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

if (selected.has('create')) {
  await section('1. POST /resources/ at 32 concurrent keep-alive clients (baseline: GET /ping, same server and clients)', async () => {
    const server = await startServer({ cpuProfDir: profileDir, label: 'create' });
    try {
      results.create = await benchCreate(server, { concurrency: 32, requests: quick ? 500 : 2000, reps: quick ? 3 : 5, timeLimitMs: 60_000, log });
      results.create.serverPeakRssBytes = server.memory().peakRss;
      log(`  server peak RSS ${mb(results.create.serverPeakRssBytes)}, ${results.create.pendingAfter} runs still Pending at the end`);
    } finally {
      await server.stop();
    }
  });
}

if (selected.has('first-line')) {
  await section('2. POST to first log line of a one-step `echo hello` run (baseline: spawn /bin/sh -c "echo hello" directly)', async () => {
    const server = await startServer({ cpuProfDir: profileDir, label: 'first-line' });
    try {
      results.firstLine = await benchFirstLine(server, { reps: quick ? 5 : 20, log });
      const b = results.firstLine.breakdown;
      log(
        `  where the time goes (medians, ms after the POST was sent): answer ${b.postAnswered}, socket open ${b.socketOpen}, ` +
          `server stamps "Executing step" ${fmt(b.executingStamped, 1)} and "hello" ${fmt(b.helloStamped, 1)} (1 ms resolution), hello received ${b.helloReceived}`,
      );
    } finally {
      await server.stop();
    }
  });
}

if (selected.has('fanout')) {
  const lines = quick ? 20_000 : 100_000;
  await section(`3. Fan-out: one run printing ${fmt(lines, 0)} lines, 50 websocket clients (baseline: the same run, 1 client)`, async () => {
    results.fanout = await benchFanout({ lines, clients: 50, reps: 3, replay: flags.replay, cpuProfDir: profileDir, log });
    if (!results.fanout.allComplete) throw new Error('some client did not receive every line exactly once and in order (see the errors above)');
  });
}
if (selected.has('api')) {
  const sizes = (flags.sizes ?? (quick ? '0' : '0,10000')).split(',').map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    process.stderr.write(`bench: --sizes must be whole numbers (got "${flags.sizes}")\n`);
    process.exit(2);
  }
  const soakSeconds = Number(flags.soak);
  await section(`4. API hot path at 32 clients, ${sizes.map((n) => fmt(n, 0)).join(' / ')} runs stored (baseline: a bare node:http server doing the same SQLite work)`, async () => {
    results.api = await benchApi({
      sizes,
      concurrency: 32,
      getRequests: quick ? 1000 : 4000,
      postRequests: quick ? 300 : 1500,
      rounds: quick ? 1 : 3,
      soakSeconds,
      routeFilter: flags.routes?.split(','),
      cpuProfDir: profileDir,
      log,
    });
  });
}
if (selected.has('ladder')) {
  const size = Number((flags.sizes ?? '10000').split(',')[0]);
  await section(`5. Framework ladder: the floor's GET answers through node:http, Koa, Koa + @koa/router, and the real server (${fmt(size, 0)} runs stored, 32 clients)`, async () => {
    results.ladder = await benchLadder({ size, concurrency: 32, requests: quick ? 2000 : 8000, rounds: quick ? 2 : 4, log });
  });
}
machine.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));

// The summary table.
type Row = [string, string, string, string, string, string];
const rows: Row[] = [];
const c = results.create;
if (c) {
  rows.push(['POST /resources/, 32 clients', 'requests/s', fmt(c.create.rps, 0), `ping ${fmt(c.ping.rps, 0)}`, `${fmt(c.createVsPingRps, 2)}x`, '']);
  rows.push(['', 'latency p50 / p99', `${fmt(c.create.p50Ms, 1)} / ${fmt(c.create.p99Ms, 1)} ms`, `ping ${fmt(c.ping.p50Ms, 1)} / ${fmt(c.ping.p99Ms, 1)} ms`, '', '']);
  rows.push(['', 'server CPU per request', `${fmt(c.create.serverCpuMsPerRequest, 3)} ms`, `ping ${fmt(c.ping.serverCpuMsPerRequest, 3)} ms`, `${fmt(c.create.serverCpuMsPerRequest / c.ping.serverCpuMsPerRequest, 1)}x`, '']);
  rows.push(['', 'requests/s, last rep vs first', `${fmt(c.create.reps.at(-1)!.rps, 0)} vs ${fmt(c.create.reps[0]!.rps, 0)}`, '', `${fmt(c.createDrift, 2)}x`, '']);
}
const f = results.firstLine;
if (f) {
  rows.push(['POST -> first log line', 'first frame (Executing step)', `${fmt(f.firstFrameMs, 2)} ms`, `spawn ${fmt(f.baselineSpawnMs, 2)} ms`, `+${fmt(f.firstFrameMinusBaselineMs, 2)} ms`, '']);
  rows.push(['', '`hello` frame', `${fmt(f.helloMs, 2)} ms`, `spawn ${fmt(f.baselineSpawnMs, 2)} ms`, `+${fmt(f.helloMinusBaselineMs, 2)} ms`, `<= +10 ms: ${f.helloMinusBaselineMs <= 10 ? 'met' : 'MISSED'}`]);
}
const o = results.fanout;
if (o) {
  const meets = (ok: boolean) => (ok ? 'met' : 'MISSED');
  rows.push([`fan-out ${fmt(o.lines / 1000, 0)}k lines x ${o.clients}`, 'lines/s delivered, live', fmt(o.liveLinesPerSecond, 0), `1 client ${fmt(o.singleLinesPerSecond, 0)}`, `${fmt(o.liveVsSingle, 2)}x`, `>= 500,000: ${meets(o.liveLinesPerSecond >= 500_000)}`]);
  rows.push(['', 'server peak RSS (VmHWM)', mb(o.peakRssBytes), `idle ${mb(o.idleRssBytes)}`, `${fmt(o.peakRssBytes / o.idleRssBytes, 2)}x`, `< 200 MB: ${meets(o.peakRssBytes < 200 * 2 ** 20)}`]);
  rows.push(['', 'server CPU per fan-out', `${fmt(o.liveServerCpuSeconds, 2)} s`, `1 client ${fmt(o.singleServerCpuSeconds, 2)} s`, `${fmt(o.liveServerCpuSeconds / o.singleServerCpuSeconds, 1)}x`, '']);
  if (o.replayLinesPerSecond !== undefined) {
    rows.push(['', 'lines/s, replay after end', fmt(o.replayLinesPerSecond, 0), '', '', '']);
    rows.push(['', 'server peak RSS after replay', mb(o.peakRssAfterReplayBytes!), '', '', '']);
  }
  rows.push(['', 'every line once, in order', o.allComplete ? `yes (${o.reps.length} reps)` : 'NO', '', '', '']);
}
const a = results.api;
if (a) {
  for (const size of a.sizes) {
    const label = `API, ${fmt(size.runsStored - size.pendingStored, 0)} + ${fmt(size.pendingStored, 0)} Pending runs`;
    size.routes.forEach((r, i) => {
      const p99 = r.server.p99Ms;
      rows.push([
        i === 0 ? label : '',
        `${r.route} req/s, p50/p99`,
        `${fmt(r.server.rps, 0)}, ${fmt(r.server.p50Ms, 1)}/${fmt(r.server.p99Ms, 1)} ms`,
        `floor ${fmt(r.floor.rps, 0)}, ${fmt(r.floor.p50Ms, 1)}/${fmt(r.floor.p99Ms, 1)} ms`,
        `${fmt(r.ratio, 2)}x`,
        `>= ${r.target}: ${r.ratio >= r.target ? 'met' : 'MISSED'}; p99 <= 20 ms: ${p99 <= 20 ? 'met' : 'MISSED'}`,
      ]);
    });
    rows.push(['', 'CPU ms per request, server / floor', size.routes.map((r) => fmt(r.server.cpuMsPerRequest, 3)).join(' '), size.routes.map((r) => fmt(r.floor.cpuMsPerRequest, 3)).join(' '), size.routes.map((r) => fmt(r.cpuRatio, 2)).join(' '), '']);
    rows.push(['', 'server RSS', mb(size.serverRssBytes), `floor ${mb(size.floorRssBytes)}`, '', '']);
  }
  if (a.soak) {
    const k = a.soak;
    rows.push([`soak ${fmt(k.seconds, 0)} s, mixed`, 'server RSS after warm-up / max / end', `${mb(k.rssAfterWarmupBytes)} / ${mb(k.rssMaxAfterWarmupBytes)} / ${mb(k.rssEndBytes)}`, `${fmt(k.rps, 0)} req/s`, `${fmt(k.slopeMbPerMinute, 2)} MB/min`, '']);
  }
}
const l = results.ladder;
if (l) {
  l.routes.forEach((route, i) => {
    for (const [j, rung] of route.rungs.entries()) {
      rows.push([
        i === 0 && j === 0 ? `ladder, ${fmt(l.runsStored, 0)} runs` : '',
        j === 0 ? `${route.route} req/s` : '',
        `${rung.rung}: ${fmt(rung.rps, 0)}`,
        j === 0 ? '' : `floor ${fmt(route.rungs[0]!.rps, 0)}`,
        j === 0 ? '' : `${fmt(rung.ratio, 2)}x (CPU ${fmt(rung.cpuRatio, 2)}x)`,
        '',
      ]);
    }
  });
}
if (rows.length > 0) {
  const header: Row = ['benchmark', 'figure (median)', 'value', 'baseline (same run)', 'ratio / diff', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: Row) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  log(`\n== Summary\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}`);
}

if (profileDir) {
  for (const file of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    log(`\n== CPU profile ${join(profileDir, file)}\n${profileTop(join(profileDir, file), 15)}`);
  }
}

mkdirSync(resultsDir, { recursive: true });
const out = join(resultsDir, 'latest.json');
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), commit: gitCommit(), serverRoot, quick, machine, results, errors, summary: rows.map((r) => r.join(' | ')) }, null, 2)}\n`,
);
log(`\nfigures written to ${out}`);
process.exitCode = failed ? 1 : 0;
