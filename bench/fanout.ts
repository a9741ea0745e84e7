// Benchmark 3: fan-out of one run's log to many websocket clients.
//
// The run's steps: `sleep 1` (so every client is connected before output starts), then
// `seq 1 <lines>`. Clients connect right after the POST and check every frame: each
// message exactly once, in order, stamps never going back, and a 1000 close at the end.
// Delivered lines/s = frames received by all clients from the `Executing step: print`
// frame on / time from the first client receiving that frame to the last client's close.
// Baseline in the same run: the same run followed by a single client (fresh server).
// Then, on the fan-out server, `clients` more connect after the run ended: pure replay.
import { HttpClient, createRun } from './lib/http.ts';
import { startServer, type BenchServer } from './lib/server.ts';
import { median, round } from './lib/stats.ts';
import { logUrl, openSocket, parseSeedFrame } from './lib/ws.ts';

const PRINT_HEADER = 'Executing step: print';

function expectedMessages(lines: number): { at(i: number): string; total: number; firstOutput: number; lastOutput: number } {
  const prefix = ['Executing step: wait', 'Step completed successfully', PRINT_HEADER];
  const suffix = ['Step completed successfully'];
  return {
    total: prefix.length + lines + suffix.length,
    firstOutput: prefix.length,
    lastOutput: prefix.length + lines - 1,
    at(i) {
      if (i < prefix.length) return prefix[i]!;
      if (i < prefix.length + lines) return String(i - prefix.length + 1);
      return suffix[i - prefix.length - lines] ?? '<nothing more>';
    },
  };
}

interface FollowerResult {
  frames: number;
  // The server's stamps of the first and last line the step printed.
  firstOutputTs: string;
  lastOutputTs: string;
  // performance.now() values in the bench process.
  connectAt: number;
  printAt: number;
  closedAt: number;
  framesFromPrint: number;
  error?: string;
}

// Follows one run's log and checks each frame against the expected sequence.
function follow(url: string, expected: ReturnType<typeof expectedMessages>, timeoutMs: number): Promise<FollowerResult> {
  return new Promise((resolve) => {
    const connectAt = performance.now();
    const ws = openSocket(url);
    let index = 0;
    let lastTs = '';
    let firstOutputTs = '';
    let lastOutputTs = '';
    let printAt = NaN;
    let printIndex = -1;
    let error: string | undefined;
    let settled = false;
    const finish = (closedAt: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ frames: index, firstOutputTs, lastOutputTs, connectAt, printAt, closedAt, framesFromPrint: printIndex < 0 ? 0 : index - printIndex, error });
    };
    const timer = setTimeout(() => {
      error ??= `no close within ${timeoutMs} ms after ${index} frames`;
      ws.terminate();
      finish(performance.now());
    }, timeoutMs);
    ws.on('message', (data) => {
      if (error) return;
      const frame = parseSeedFrame(data.toString());
      const want = expected.at(index);
      if (frame.message !== want) {
        error = `frame ${index + 1}: got ${JSON.stringify(frame.message)}, expected ${JSON.stringify(want)}`;
        ws.terminate();
        return;
      }
      if (frame.ts.length < lastTs.length || (frame.ts.length === lastTs.length && frame.ts < lastTs)) {
        error = `frame ${index + 1}: stamp ${frame.ts} is before the previous ${lastTs}`;
        ws.terminate();
        return;
      }
      lastTs = frame.ts;
      if (index === expected.firstOutput) firstOutputTs = frame.ts;
      if (index === expected.lastOutput) lastOutputTs = frame.ts;
      if (want === PRINT_HEADER && printIndex < 0) {
        printAt = performance.now();
        printIndex = index;
      }
      index++;
    });
    ws.on('error', (err) => {
      error ??= `socket error: ${err.message}`;
    });
    ws.on('close', (code, reason) => {
      if (!error && code !== 1000) error = `closed with ${code} ${reason.toString()} after ${index} frames`;
      if (!error && index !== expected.total) error = `closed after ${index} of ${expected.total} frames`;
      finish(performance.now());
    });
  });
}

function ingestRate(r: FollowerResult, lines: number): number {
  if (!r.firstOutputTs || !r.lastOutputTs) return NaN;
  const ns = Number(BigInt(r.lastOutputTs) - BigInt(r.firstOutputTs));
  return ns > 0 ? Math.round(((lines - 1) * 1e9) / ns) : NaN;
}

export interface PhaseResult {
  clients: number;
  complete: number;
  seconds: number;
  framesDelivered: number;
  linesPerSecond: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  // Lines per second the server took in from the step (its own stamps, first to last line).
  ingestLinesPerSecond: number;
  errors: string[];
}

async function followAll(server: BenchServer, runid: string, clients: number, lines: number, live: boolean): Promise<PhaseResult> {
  const expected = expectedMessages(lines);
  const cpu0 = server.cpuSeconds();
  const client0 = process.cpuUsage();
  const url = logUrl(server.wsUrl, runid);
  const results = await Promise.all(Array.from({ length: clients }, () => follow(url, expected, 120_000)));
  const clientCpu = process.cpuUsage(client0);
  const start = live ? Math.min(...results.map((r) => r.printAt).filter(Number.isFinite)) : Math.min(...results.map((r) => r.connectAt));
  const end = Math.max(...results.map((r) => r.closedAt));
  const frames = results.reduce((n, r) => n + (live ? r.framesFromPrint : r.frames), 0);
  const seconds = (end - start) / 1000;
  const errors = results.flatMap((r, i) => (r.error ? [`client ${i + 1}: ${r.error}`] : []));
  return {
    clients,
    complete: results.length - errors.length,
    seconds: round(seconds, 3),
    framesDelivered: frames,
    linesPerSecond: Math.round(frames / seconds),
    serverCpuSeconds: round(server.cpuSeconds() - cpu0, 2),
    clientCpuSeconds: round((clientCpu.user + clientCpu.system) / 1e6, 2),
    ingestLinesPerSecond: ingestRate(results[0]!, lines),
    errors: errors.slice(0, 5),
  };
}

export interface FanoutRep {
  single: PhaseResult;
  live: PhaseResult;
  replay?: PhaseResult;
  peakRssLive: number;
  peakRssAfterReplay?: number;
  idleRssBefore: number;
}

export interface FanoutResult {
  lines: number;
  clients: number;
  reps: FanoutRep[];
  singleLinesPerSecond: number;
  liveLinesPerSecond: number;
  liveVsSingle: number;
  liveSeconds: number;
  liveServerCpuSeconds: number;
  singleServerCpuSeconds: number;
  liveIngestLinesPerSecond: number;
  singleIngestLinesPerSecond: number;
  peakRssBytes: number;
  idleRssBytes: number;
  replayLinesPerSecond?: number;
  peakRssAfterReplayBytes?: number;
  allComplete: boolean;
}

async function runAndFollow(server: BenchServer, name: string, clients: number, lines: number): Promise<{ runid: string; phase: PhaseResult }> {
  const http = new HttpClient(server.url, 1);
  const runid = await createRun(http, name, [
    ['wait', 'sleep 1'],
    ['print', `seq 1 ${lines}`],
  ]);
  http.close();
  return { runid, phase: await followAll(server, runid, clients, lines, true) };
}

export interface FanoutOptions {
  lines: number;
  clients: number;
  reps: number;
  replay: boolean;
  cpuProfDir?: string;
  log: (line: string) => void;
}

export async function benchFanout(options: FanoutOptions): Promise<FanoutResult> {
  const { lines, clients, reps, log } = options;
  const all: FanoutRep[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const solo = await startServer();
    let single: PhaseResult;
    try {
      single = (await runAndFollow(solo, 'fanout-single', 1, lines)).phase;
    } finally {
      await solo.stop();
    }

    const server = await startServer({ cpuProfDir: rep === 0 ? options.cpuProfDir : undefined, label: 'fanout' });
    try {
      const idleRssBefore = server.memory().rss;
      const { runid, phase: live } = await runAndFollow(server, 'fanout', clients, lines);
      const peakRssLive = server.memory().peakRss;
      const replay = options.replay ? await followAll(server, runid, clients, lines, false) : undefined;
      const peakRssAfterReplay = options.replay ? server.memory().peakRss : undefined;
      all.push({ single, live, replay, peakRssLive, peakRssAfterReplay, idleRssBefore });
      const n = (x: number) => x.toLocaleString('en-US');
      const mbs = (b: number) => `${round(b / 2 ** 20, 1)} MB`;
      log(
        `  rep ${rep + 1}/${reps}: ${clients} clients ${n(live.linesPerSecond)} lines/s (${live.seconds} s, ${live.complete}/${clients} complete, ` +
          `server CPU ${live.serverCpuSeconds} s, clients CPU ${live.clientCpuSeconds} s, ingest ${n(live.ingestLinesPerSecond)} lines/s), peak RSS ${mbs(peakRssLive)}` +
          ` | 1 client ${n(single.linesPerSecond)} lines/s (server CPU ${single.serverCpuSeconds} s, ingest ${n(single.ingestLinesPerSecond)} lines/s)`,
      );
      if (replay) {
        log(
          `           replay after the end: ${n(replay.linesPerSecond)} lines/s (${replay.seconds} s, ${replay.complete}/${clients} complete, ` +
            `server CPU ${replay.serverCpuSeconds} s), peak RSS ${mbs(peakRssAfterReplay!)}`,
        );
      }
      for (const e of [...single.errors, ...live.errors, ...(replay?.errors ?? [])]) log(`    error: ${e}`);
    } finally {
      await server.stop();
    }
  }
  const med = (f: (r: FanoutRep) => number) => median(all.map(f));
  const liveLinesPerSecond = Math.round(med((r) => r.live.linesPerSecond));
  const singleLinesPerSecond = Math.round(med((r) => r.single.linesPerSecond));
  return {
    lines,
    clients,
    reps: all,
    singleLinesPerSecond,
    liveLinesPerSecond,
    liveVsSingle: round(liveLinesPerSecond / singleLinesPerSecond, 2),
    liveSeconds: round(med((r) => r.live.seconds), 3),
    liveServerCpuSeconds: round(med((r) => r.live.serverCpuSeconds), 2),
    singleServerCpuSeconds: round(med((r) => r.single.serverCpuSeconds), 2),
    liveIngestLinesPerSecond: Math.round(med((r) => r.live.ingestLinesPerSecond)),
    singleIngestLinesPerSecond: Math.round(med((r) => r.single.ingestLinesPerSecond)),
    peakRssBytes: med((r) => r.peakRssLive),
    idleRssBytes: med((r) => r.idleRssBefore),
    replayLinesPerSecond: options.replay ? Math.round(med((r) => r.replay!.linesPerSecond)) : undefined,
    peakRssAfterReplayBytes: options.replay ? med((r) => r.peakRssAfterReplay!) : undefined,
    allComplete: all.length === reps && all.every((r) => [r.single, r.live, r.replay].every((p) => !p || (p.errors.length === 0 && p.complete === p.clients))),
  };
}
