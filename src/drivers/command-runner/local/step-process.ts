// One step as a child process: `/bin/sh -c <command>` in its own session, inside the run's
// container (see containment.ts), so that the step's end, a cancel or a timeout stops every
// process it made, however those detached.
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { constants } from 'node:os';
import { LineSplitter } from '../../../logs/line-splitter.ts';
import { background } from '../../../observability/background.ts';
import type { StepProcesses } from './containment.ts';

export interface StepProcessOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
  processes: StepProcesses;
  onLine: (stream: 'stdout' | 'stderr', line: string) => void;
  signal: AbortSignal;
  // How long the step's processes get between SIGTERM and SIGKILL, by the abort's reason.
  killGraceMs: (reason: unknown) => number;
  maxLineBytes: number;
  // While it returns a promise, output is not read (the step blocks on its full pipe):
  // lines a step prints faster than they can be stored wait in the pipe, not in memory.
  backpressure?: () => Promise<void> | undefined;
  // After the step's shell exited and its processes were killed, how long its output may
  // take to reach end of file before it is cut off (a process we could not kill may hold
  // the pipe open forever).
  drainMs?: number;
}

export interface StepOutcome {
  exitCode: number;
  // True when the step ended because `signal` aborted it, not by itself.
  aborted: boolean;
  // Set when the command could not be started at all (E2BIG, a vanished workspace, ...).
  spawnError?: string;
}

const SPAWN_FAILED = 127;

// Lines of one output stream, cut at `maxLineBytes`; resolves when the stream has closed.
function linesOf(stream: Readable, maxLineBytes: number, onLine: (line: string) => void, backpressure?: () => Promise<void> | undefined): Promise<void> {
  const splitter = new LineSplitter(maxLineBytes, onLine);
  stream.on('data', (chunk: Buffer) => {
    splitter.push(chunk);
    const wait = backpressure?.();
    if (wait) {
      stream.pause();
      background('step-output.resume', wait.then(() => stream.resume()));
    }
  });
  return new Promise((resolve) => {
    // After 'end', or after a destroy that cut the stream off: the last partial line counts.
    stream.once('close', () => {
      splitter.end();
      resolve();
    });
    stream.once('error', () => undefined);
  });
}

function exited(child: ChildProcess): Promise<{ code: number; spawnError?: string }> {
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: SPAWN_FAILED, spawnError: err.message }));
    child.once('exit', (code, signal) => resolve({ code: code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0) }));
  });
}

export async function runStepProcess(options: StepProcessOptions): Promise<StepOutcome> {
  let child: ChildProcess;
  try {
    child = options.processes.start({ command: options.command, cwd: options.cwd, env: options.env });
  } catch (err) {
    // Refused before any process existed (a NUL byte, a missing working directory).
    return { exitCode: SPAWN_FAILED, aborted: false, spawnError: (err as Error).message };
  }
  const output = Promise.all([
    linesOf(child.stdout!, options.maxLineBytes, (line) => options.onLine('stdout', line), options.backpressure),
    linesOf(child.stderr!, options.maxLineBytes, (line) => options.onLine('stderr', line), options.backpressure),
  ]);
  const exit = exited(child);

  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    aborted = true;
    options.processes.terminate();
    killTimer = setTimeout(() => background('step-process.kill', options.processes.kill()), options.killGraceMs(options.signal.reason));
  };
  if (options.signal.aborted) onAbort();
  else options.signal.addEventListener('abort', onAbort, { once: true });

  const { code, spawnError } = await exit;
  options.signal.removeEventListener('abort', onAbort);
  if (killTimer) clearTimeout(killTimer);
  // The step has ended: so has every process it started, detached or not. They would
  // otherwise outlive the run and hold its output pipes open forever.
  await options.processes.kill();
  await drain(child, output, options.drainMs ?? 2_000);
  return spawnError === undefined ? { exitCode: code, aborted } : { exitCode: code, aborted, spawnError };
}

// Waits for the output to reach end of file, but not forever: what is still unread after
// `drainMs` belongs to a process that survived the kill, and the run must end anyway.
async function drain(child: ChildProcess, output: Promise<unknown>, drainMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), drainMs);
  });
  const outcome = await Promise.race([output.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.stdout?.destroy();
    child.stderr?.destroy();
    await output;
  }
}
