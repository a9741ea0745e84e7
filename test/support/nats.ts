// A real nats-server with JetStream for the driver tests: its own port (chosen by the
// server) and its own store directory, so tests never share state. The binary comes from
// scripts/deps/nats-server.sh (Debian's package), which `npm test` runs first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface TestNats {
  url: string;
  port: number;
  storeDir: string;
  process: ChildProcess;
  output: string[];
  // SIGTERM and wait; the store directory stays, so `restart` keeps every stream.
  stop(): Promise<void>;
  restart(): Promise<void>;
  cleanup(): void;
}

export function natsServerAvailable(): boolean {
  return spawnSync('nats-server', ['--version']).status === 0;
}

async function launch(storeDir: string, port: number): Promise<{ child: ChildProcess; port: number; output: string[] }> {
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const chosen = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${output.join('\n')}`)), 15_000);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const m = /Listening for client connections on [^:]+:(\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${output.join('\n')}`));
    });
  });
  // JetStream is ready once the server says so (it restores streams before that).
  await new Promise<void>((resolve) => {
    const ready = () => output.some((l) => /Server is ready/.test(l));
    if (ready()) return resolve();
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
  return { child, port: chosen, output };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startNats(): Promise<TestNats> {
  const storeDir = mkdtempSync(join(tmpdir(), 'conveyor-nats-'));
  // -1: the server picks a free port and logs it.
  let current = await launch(storeDir, -1);
  const nats: TestNats = {
    url: `nats://127.0.0.1:${current.port}`,
    port: current.port,
    storeDir,
    process: current.child,
    output: current.output,
    stop: () => stopProcess(nats.process),
    async restart() {
      await stopProcess(nats.process);
      // The same port, so clients reconnect on their own.
      current = await launch(storeDir, nats.port);
      nats.process = current.child;
      nats.output = current.output;
    },
    cleanup() {
      nats.process.kill('SIGKILL');
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
  return nats;
}
