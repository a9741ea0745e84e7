// One step as a child process: `/bin/sh -c <command>` in its own process group, so that a
// cancel (or a command that leaves background jobs behind) can stop every process it made.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { constants } from 'node:os';

export interface StepProcessOptions {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  signal: AbortSignal;
  killGraceMs: number;
}

export interface StepOutcome {
  exitCode: number;
  // True when the step ended because `signal` aborted it, not by itself.
  aborted: boolean;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function linesOf(stream: Readable, onLine: (line: string) => void): Promise<void> {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', onLine);
  return new Promise((resolve) => rl.once('close', resolve));
}

export async function runStepProcess(options: StepProcessOptions): Promise<StepOutcome> {
  const child = spawn('/bin/sh', ['-c', options.command], {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  const output = Promise.all([
    linesOf(child.stdout, (line) => options.onLine('stdout', line)),
    linesOf(child.stderr, (line) => options.onLine('stderr', line)),
  ]);

  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    if (pid === undefined) return;
    aborted = true;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), options.killGraceMs);
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });

  const exitCode = await new Promise<number>((resolve) => {
    child.once('error', () => resolve(127));
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
  options.signal.removeEventListener('abort', onAbort);
  if (killTimer) clearTimeout(killTimer);
  // Background jobs the command left running would hold the pipes open forever.
  if (pid !== undefined) killGroup(pid, 'SIGKILL');
  await output;
  return { exitCode, aborted };
}
