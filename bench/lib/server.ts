// Starts the real server (`conveyor serve`, local mode) as a child process on a free port
// with a fresh data directory, and reads its resource use from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const repoRoot = resolve(import.meta.dirname, '../..');
// BENCH_SERVER_ROOT points at another checkout to benchmark its server instead (A/B runs).
export const serverRoot = resolve(process.env.BENCH_SERVER_ROOT ?? repoRoot);
const mainScript = join(serverRoot, 'src/main.ts');
const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface BenchServer {
  url: string;
  wsUrl: string;
  pid: number;
  process: ChildProcess;
  // The last lines the server printed, and how it exited if it did (a crash mid-benchmark).
  output: string[];
  exit?: string;
  // Peak and current resident set size in bytes (VmHWM, VmRSS), from /proc/<pid>/status.
  memory(): { peakRss: number; rss: number };
  // User + system CPU seconds the server has used so far, from /proc/<pid>/stat.
  cpuSeconds(): number;
  // SIGTERM, wait (SIGKILL after a grace), remove the data directory.
  stop(): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  // Writes a V8 CPU profile of the server into this directory when it exits.
  cpuProfDir?: string;
  label?: string;
  env?: NodeJS.ProcessEnv;
  // Sees every line the server writes to stdout (its JSON log), however many.
  onLine?: (line: string) => void;
  // A data directory prepared beforehand (e.g. seeded with runs); removed at stop like a fresh one.
  dataDir?: string;
}

// Peak and current resident set size of a process, bytes (VmHWM, VmRSS).
export function processMemory(pid: number): { peakRss: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { peakRss: kb('VmHWM'), rss: kb('VmRSS') };
}

// User + system CPU seconds a process has used so far, from /proc/<pid>/stat.
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

export async function startServer(options: StartOptions = {}): Promise<BenchServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'conveyor-bench-'));
  // BENCH_SERVER_NODE_ARGS adds node flags to the server only, e.g. "--trace-gc".
  // The same V8 flag as bin/conveyor and `npm start`, so the figures are the product's.
  const nodeArgs: string[] = ['--max-semi-space-size=8', ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  if (options.cpuProfDir) {
    mkdirSync(options.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfDir, '--cpu-prof-name', `${options.label ?? 'server'}-${Date.now()}.cpuprofile`);
  }
  const child = spawn(process.execPath, [...nodeArgs, mainScript, 'serve', '--port', '0', '--data-dir', dataDir, ...(options.args ?? [])], {
    env: { ...process.env, CONVEYOR_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => {
    output.push(l);
    if (process.env.BENCH_SERVER_ECHO) process.stderr.write(`server ${child.pid}: ${l}\n`);
  });
  let exitInfo: string | undefined;
  let stopping = false;
  const exited = new Promise<void>((res) =>
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (!stopping) process.stderr.write(`bench: the server (pid ${child.pid}) ${exitInfo} unexpectedly; its last output:\n${output.slice(-20).join('\n')}\n`);
      res();
    }),
  );
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start:\n${output.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      if (output.length > 200) output.shift();
      options.onLine?.(line);
      if (process.env.BENCH_SERVER_ECHO) process.stderr.write(`server ${child.pid}: ${line}\n`);
      try {
        const entry = JSON.parse(line) as { url?: string; level?: number };
        if (entry.url) {
          clearTimeout(timer);
          res(entry.url);
        } else if ((entry.level ?? 0) >= 50) process.stderr.write(`server: ${line}\n`);
      } catch {
        // not a JSON log line
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      rej(new Error(`server exited before listening:\n${output.join('\n')}`));
    });
  });
  const pid = child.pid!;
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    pid,
    process: child,
    output,
    get exit() {
      return exitInfo;
    },
    memory: () => processMemory(pid),
    cpuSeconds: () => processCpuSeconds(pid),
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
