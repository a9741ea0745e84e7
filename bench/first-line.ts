// Benchmark 2: from sending POST /resources/ for a one-step `echo hello` run to the first
// websocket frame of the run (`Executing step: say`) and to the frame carrying `hello`.
// The client posts, then connects the websocket with the run id the answer names, as a
// user (or the CLI) does. Baseline in the same run: spawning `/bin/sh -c 'echo hello'`
// with child_process in the bench process and reading its first stdout line.
import { spawn } from 'node:child_process';
import { createRun, HttpClient } from './lib/http.ts';
import type { BenchServer } from './lib/server.ts';
import { median, round, sleep } from './lib/stats.ts';
import { epochMs, logUrl, openSocket, parseSeedFrame, tsToEpochMs } from './lib/ws.ts';

export interface FirstLineSample {
  postMs: number;
  openMs: number;
  firstFrameMs: number;
  helloMs: number;
  // Where the time went, from the server's own line stamps (millisecond resolution).
  serverExecutingMs: number;
  serverHelloMs: number;
}

export interface FirstLineResult {
  reps: number;
  baselineSpawnMs: number;
  postMs: number;
  firstFrameMs: number;
  helloMs: number;
  helloMinusBaselineMs: number;
  firstFrameMinusBaselineMs: number;
  helloVsBaseline: number;
  // Medians, in ms after the POST was sent: the answer arrived, the websocket opened, the
  // server stamped `Executing step` and `hello`, the client received `hello`.
  breakdown: { postAnswered: number; socketOpen: number; executingStamped: number; helloStamped: number; helloReceived: number };
  samples: FirstLineSample[];
  baselineSamples: number[];
}

const EXPECTED = ['Executing step: say', 'hello', 'Step completed successfully'];

export function spawnEchoMs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/bin/sh', ['-c', 'echo hello'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let done = false;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!done && out.includes('\n')) {
        done = true;
        const ms = performance.now() - t0;
        if (out.split('\n')[0] !== 'hello') reject(new Error(`echo printed ${JSON.stringify(out)}`));
        else resolve(ms);
      }
    });
    child.on('error', reject);
  });
}

async function oneRun(client: HttpClient, wsUrl: string, name: string): Promise<FirstLineSample> {
  const startEpoch = epochMs();
  const t0 = performance.now();
  const runid = await createRun(client, name, [['say', 'echo hello']]);
  const postMs = performance.now() - t0;
  return new Promise((resolve, reject) => {
    const ws = openSocket(logUrl(wsUrl, runid));
    const messages: string[] = [];
    let openMs = NaN;
    let firstFrameMs = NaN;
    let helloMs = NaN;
    let executingTs = '';
    let helloTs = '';
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`run ${runid}: no close within 20 s; got ${JSON.stringify(messages)}`));
    }, 20_000);
    ws.on('open', () => {
      openMs = performance.now() - t0;
    });
    ws.on('message', (data) => {
      const now = performance.now() - t0;
      const frame = parseSeedFrame(data.toString());
      if (messages.length === 0) {
        firstFrameMs = now;
        executingTs = frame.ts;
      }
      if (frame.message === 'hello' && Number.isNaN(helloMs)) {
        helloMs = now;
        helloTs = frame.ts;
      }
      messages.push(frame.message);
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 1000 || JSON.stringify(messages) !== JSON.stringify(EXPECTED)) {
        reject(new Error(`run ${runid}: close ${code}, frames ${JSON.stringify(messages)}, expected ${JSON.stringify(EXPECTED)}`));
        return;
      }
      resolve({
        postMs,
        openMs,
        firstFrameMs,
        helloMs,
        serverExecutingMs: tsToEpochMs(executingTs) - startEpoch,
        serverHelloMs: tsToEpochMs(helloTs) - startEpoch,
      });
    });
  });
}

export async function benchFirstLine(server: BenchServer, options: { reps: number; log: (line: string) => void }): Promise<FirstLineResult> {
  const client = new HttpClient(server.url, 1);
  const tag = Date.now().toString(36);
  // Warm-up of both paths (JIT, the spawn path, the store), not counted.
  for (let i = 0; i < 3; i++) {
    await spawnEchoMs();
    await oneRun(client, server.wsUrl, `echo-${tag}-warm-${i}`);
  }
  const samples: FirstLineSample[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < options.reps; i++) {
    // Interleaved, so that both see the same machine state.
    baseline.push(await spawnEchoMs());
    samples.push(await oneRun(client, server.wsUrl, `echo-${tag}-${i}`));
    await sleep(20);
  }
  client.close();
  const med = (f: (s: FirstLineSample) => number) => round(median(samples.map(f)), 2);
  const baselineSpawnMs = round(median(baseline), 2);
  const helloMs = med((s) => s.helloMs);
  const firstFrameMs = med((s) => s.firstFrameMs);
  options.log(
    `  ${options.reps} runs: POST answered ${med((s) => s.postMs)} ms, first frame ${firstFrameMs} ms, hello ${helloMs} ms; ` +
      `spawn baseline ${baselineSpawnMs} ms`,
  );
  return {
    reps: options.reps,
    baselineSpawnMs,
    postMs: med((s) => s.postMs),
    firstFrameMs,
    helloMs,
    helloMinusBaselineMs: round(helloMs - baselineSpawnMs, 2),
    firstFrameMinusBaselineMs: round(firstFrameMs - baselineSpawnMs, 2),
    helloVsBaseline: round(helloMs / baselineSpawnMs, 2),
    breakdown: {
      postAnswered: med((s) => s.postMs),
      socketOpen: med((s) => s.openMs),
      executingStamped: med((s) => s.serverExecutingMs),
      helloStamped: med((s) => s.serverHelloMs),
      helloReceived: helloMs,
    },
    samples: samples.map((s) => ({
      postMs: round(s.postMs, 3),
      openMs: round(s.openMs, 3),
      firstFrameMs: round(s.firstFrameMs, 3),
      helloMs: round(s.helloMs, 3),
      serverExecutingMs: round(s.serverExecutingMs, 3),
      serverHelloMs: round(s.serverHelloMs, 3),
    })),
    baselineSamples: baseline.map((b) => round(b, 3)),
  };
}
