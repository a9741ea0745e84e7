// Starts the real server (`conveyor serve`, local mode) as a child process on a free port
// with its own data directory, the way a user runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const mainScript = join(repoRoot, 'src/main.ts');

export interface TestServer {
  url: string;
  wsUrl: string;
  dataDir: string;
  process: ChildProcess;
  output: string[];
  // SIGTERM and wait; resolves with the exit code.
  stop(): Promise<number | null>;
  // SIGKILL and wait: a crash, not a shutdown.
  kill(): Promise<void>;
  // Removes the data directory too (after stop or kill).
  cleanup(): void;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

export function newDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'conveyor-test-'));
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? newDataDir();
  const child = spawn(process.execPath, [mainScript, 'serve', '--port', '0', '--data-dir', dataDir, ...(options.args ?? [])], {
    env: { ...process.env, CONVEYOR_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const url = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start:\n${output.join('\n')}`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { url?: string };
        if (entry.url) {
          clearTimeout(timer);
          res(entry.url);
        }
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${output.join('\n')}`));
    });
  });
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    dataDir,
    process: child,
    output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
