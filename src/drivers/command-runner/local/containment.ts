// Keeps every process a step starts inside something the server can empty, however the
// process detaches (a new session, a cleared environment, a double fork).
//
// - Where the cgroup v1 freezer hierarchy is writable (root on Linux), each step runs in a
//   cgroup `<freezer>/conveyor/<data dir hash>/<name>` that its shell entered before the
//   user's command ran; children cannot leave it. Emptying it is freeze, SIGKILL every
//   member, thaw: a frozen process cannot fork, so nothing slips out between reading the
//   member list and the kill.
//   Entering a cgroup costs a kernel RCU grace period (tens of ms, more on a busy host),
//   which would delay every step's first line. So a launcher shell enters its cgroup ahead
//   of time and waits; a step takes a warm launcher and hands it the step as a script on
//   its stdin (see LAUNCHER).
// - Elsewhere (not root, macOS, a read-only cgroup fs) the fallback finds a step's processes
//   through /proc by markers a step cannot shed by detaching alone: its process group and
//   session, its working directory inside the run's workspace, and CONVEYOR_RUN_ID in its
//   environment. A process that left all three (cd elsewhere, setsid, env -i) escapes the
//   fallback; README says so.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { background } from '../../../observability/background.ts';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// How long emptying a step's processes may take before we give up on stragglers (a process
// in uninterruptible sleep); the run ends regardless.
const EMPTY_TIMEOUT_MS = 3_000;

// Warm launchers kept ready: enough for steps that start together on an idle server.
const WARM_LAUNCHERS = 2;
const REFILL_DELAY_MS = 50;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

export interface StepSpawn {
  command: string;
  cwd: string;
  env: Record<string, string>;
}

/** The processes of one step. */
export interface StepProcesses {
  // Starts the step's shell (`/bin/sh -c <command>`, stdin empty, stdout/stderr piped).
  // Throws, or the child emits 'error', when it cannot be started.
  start(step: StepSpawn): ChildProcess;
  // Asks every process of the step to stop (SIGTERM).
  terminate(): void;
  // Kills every process of the step and waits (bounded) until they are gone.
  kill(): Promise<void>;
}

/** The processes of one run. */
export interface RunProcesses {
  step(): StepProcesses;
  // Kills whatever of the run is left and releases what held it.
  dispose(): Promise<void>;
}

export interface Containment {
  readonly kind: 'cgroup' | 'scan';
  // `workspace` is the run's working directory.
  forRun(runid: string, workspace: string): RunProcesses;
  // Kills processes a previous server on this data directory left behind (after kill -9),
  // without relying on their environment. Returns how many were found.
  sweepLeftovers(workspaceRoot: string): Promise<number>;
  // Stops what the containment itself keeps running (warm launchers).
  close(): Promise<void>;
}

export interface ContainmentOptions {
  dataDir: string;
  // The cgroup v1 freezer mount, or null for the /proc fallback.
  freezerRoot: string | null;
}

// A data directory's own subtree: two servers on different data directories never touch
// each other's steps, and a restarted server finds exactly its predecessor's.
function scopeOf(dataDir: string): string {
  let real = dataDir;
  try {
    real = realpathSync(dataDir);
  } catch {
    // not created yet: the given path is the name
  }
  return createHash('sha256').update(real).digest('hex').slice(0, 16);
}

export function openContainment(options: ContainmentOptions): Containment {
  if (options.freezerRoot) {
    const scopeDir = join(options.freezerRoot, 'conveyor', scopeOf(options.dataDir));
    try {
      mkdirSync(scopeDir, { recursive: true });
      readFileSync(join(scopeDir, 'freezer.state'), 'utf8');
      return new CgroupContainment(scopeDir);
    } catch {
      // not writable here: fall back to the /proc scan
    }
  }
  return new ScanContainment();
}

// A failure to start, shaped like the one spawn() reports.
function startError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function assertDirectory(cwd: string): void {
  try {
    if (statSync(cwd).isDirectory()) return;
  } catch {
    // reported below
  }
  throw startError(`the step's working directory ${cwd} does not exist`, 'ENOENT');
}

// ---------------------------------------------------------------------------------------
// cgroup v1 freezer

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

async function emptyCgroup(dir: string): Promise<void> {
  const procs = join(dir, 'cgroup.procs');
  if (readPids(procs).length === 0) return;
  const state = join(dir, 'freezer.state');
  const deadline = Date.now() + EMPTY_TIMEOUT_MS;
  try {
    writeFileSync(state, 'FROZEN');
    // FREEZING until every member has stopped; a member stuck in the kernel may delay it.
    while (readFileSync(state, 'utf8').trim() !== 'FROZEN' && Date.now() < deadline) await sleep(5);
  } catch {
    // the cgroup went away: nothing to freeze
  }
  for (const pid of readPids(procs)) signal(pid, 'SIGKILL');
  try {
    writeFileSync(state, 'THAWED');
  } catch {
    // gone
  }
  // SIGKILL is delivered on thaw; wait until the members are really gone.
  while (readPids(procs).length > 0 && Date.now() < deadline) {
    await sleep(5);
    for (const pid of readPids(procs)) signal(pid, 'SIGKILL');
  }
}

function removeCgroup(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // already gone, or a straggler is still inside; the next start's sweep retries
  }
}

// The launcher: enters its cgroup ($0), then becomes a shell that reads its step as a
// script from stdin (a socket, which cannot be sourced as a file) once the step starts. It starts with nothing in its environment but PATH, which the script
// replaces along with everything else the step sees.
const LAUNCHER = 'echo $$ > "$0" || exit 125\nexec /bin/sh -s';

function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

// The step as the launcher runs it: its directory, exactly its environment, its command.
function stepScript(step: StepSpawn): string {
  const lines = [`cd -- ${quote(step.cwd)} || exit 125`, 'unset OLDPWD PATH'];
  for (const [name, value] of Object.entries(step.env)) lines.push(`export ${name}=${quote(value)}`);
  lines.push(`exec /bin/sh -c ${quote(step.command)}`);
  return `${lines.join('\n')}\n`;
}

interface Launcher {
  child: ChildProcess;
  dir: string;
}

class CgroupContainment implements Containment {
  readonly kind = 'cgroup' as const;
  private readonly scopeDir: string;
  private readonly warm: Launcher[] = [];
  private counter = 0;
  private closed = false;
  private refillTimer?: NodeJS.Timeout;

  constructor(scopeDir: string) {
    this.scopeDir = scopeDir;
  }

  private launch(): Launcher {
    const dir = join(this.scopeDir, `step-${process.pid}-${++this.counter}`);
    mkdirSync(dir);
    try {
      const child = spawn('/bin/sh', ['-c', LAUNCHER, join(dir, 'cgroup.procs')], {
        cwd: '/',
        env: { PATH: '/usr/bin:/bin' },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      // A launcher that dies waiting (the cgroup refused it) is dropped when taken.
      child.on('error', () => undefined);
      child.stdin!.on('error', () => undefined);
      return { child, dir };
    } catch (err) {
      removeCgroup(dir);
      throw err;
    }
  }

  private refill(): void {
    while (!this.closed && this.warm.length < WARM_LAUNCHERS) {
      try {
        this.warm.push(this.launch());
      } catch {
        return; // starting steps will report it
      }
    }
  }

  private take(): Launcher {
    let taken: Launcher | undefined;
    while (!taken && this.warm.length > 0) {
      const next = this.warm.shift()!;
      if (next.child.exitCode === null && next.child.signalCode === null && next.child.pid !== undefined) taken = next;
      else background('step-containment.drop-launcher', emptyCgroup(next.dir).then(() => removeCgroup(next.dir)));
    }
    taken ??= this.launch();
    // Not at once: spawning blocks the event loop for a moment, just when the step's first
    // lines are due to be read and sent.
    if (this.refillTimer === undefined) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.refill();
      }, REFILL_DELAY_MS);
      this.refillTimer.unref();
    }
    return taken;
  }

  forRun(): RunProcesses {
    const dirs = new Set<string>();
    this.refill();
    return {
      step: () => {
        let dir: string | undefined;
        return {
          start: (step) => {
            assertDirectory(step.cwd);
            const launcher = this.take();
            dir = launcher.dir;
            dirs.add(dir);
            launcher.child.stdin!.end(stepScript(step));
            return launcher.child;
          },
          terminate: () => {
            if (dir) for (const pid of readPids(join(dir, 'cgroup.procs'))) signal(pid, 'SIGTERM');
          },
          kill: async () => {
            if (!dir) return;
            await emptyCgroup(dir);
            removeCgroup(dir);
            dirs.delete(dir);
          },
        };
      },
      dispose: async () => {
        for (const dir of dirs) {
          await emptyCgroup(dir);
          removeCgroup(dir);
        }
        dirs.clear();
      },
    };
  }

  async sweepLeftovers(): Promise<number> {
    let found = 0;
    let entries: string[] = [];
    try {
      entries = readdirSync(this.scopeDir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => join(this.scopeDir, e.name))
        .filter((dir) => !this.warm.some((l) => l.dir === dir));
    } catch {
      return 0;
    }
    for (const dir of entries) {
      found += readPids(join(dir, 'cgroup.procs')).length;
      await emptyCgroup(dir);
      removeCgroup(dir);
    }
    return found;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refillTimer !== undefined) clearTimeout(this.refillTimer);
    for (const launcher of this.warm.splice(0)) {
      await emptyCgroup(launcher.dir);
      removeCgroup(launcher.dir);
    }
    // The data directory's own cgroup goes too, unless a straggler is still in a step's.
    removeCgroup(this.scopeDir);
  }
}

// ---------------------------------------------------------------------------------------
// /proc fallback

interface ProcInfo {
  pid: number;
  pgid: number;
  sid: number;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, pgid: Number(fields[2]), sid: Number(fields[3]) };
  } catch {
    return undefined;
  }
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

function hasEnv(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
  } catch {
    return false;
  }
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return [];
  }
}

function isInside(path: string | undefined, dir: string): boolean {
  return path !== undefined && (path === dir || path.startsWith(`${dir}/`));
}

// The processes marked as the run's: in a step's group or session, working inside the
// workspace, or carrying the run's id in their environment.
function scanRun(runid: string, workspace: string, leaders: Set<number>): number[] {
  const marker = `CONVEYOR_RUN_ID=${runid}`;
  const found: number[] = [];
  for (const pid of allPids()) {
    const info = procInfo(pid);
    if (!info) continue;
    if (leaders.has(info.pgid) || leaders.has(info.sid) || isInside(cwdOf(pid), workspace) || hasEnv(pid, marker)) found.push(pid);
  }
  return found;
}

async function killScanned(find: () => number[], leaders: Set<number>): Promise<void> {
  const deadline = Date.now() + EMPTY_TIMEOUT_MS;
  for (;;) {
    for (const leader of leaders) signal(-leader, 'SIGKILL');
    const pids = find();
    if (pids.length === 0 || Date.now() > deadline) return;
    for (const pid of pids) signal(pid, 'SIGKILL');
    await sleep(10);
  }
}

class ScanContainment implements Containment {
  readonly kind = 'scan' as const;

  forRun(runid: string, workspace: string): RunProcesses {
    // Every step's shell leads its own session; remembered so that its group and session
    // can be found after it has exited.
    const leaders = new Set<number>();
    const find = () => scanRun(runid, workspace, leaders);
    return {
      step: () => {
        let leader: number | undefined;
        return {
          start: (step) => {
            const child = spawn('/bin/sh', ['-c', step.command], { cwd: step.cwd, env: step.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
            leader = child.pid;
            if (leader !== undefined) leaders.add(leader);
            return child;
          },
          terminate: () => {
            if (leader !== undefined) signal(-leader, 'SIGTERM');
            for (const pid of find()) signal(pid, 'SIGTERM');
          },
          kill: () => killScanned(find, leaders),
        };
      },
      dispose: () => killScanned(find, leaders),
    };
  }

  async sweepLeftovers(workspaceRoot: string): Promise<number> {
    // Any process working inside this data directory's workspaces belongs to a run of a
    // server that is gone: the data directory lock says no other server uses it.
    const deadline = Date.now() + EMPTY_TIMEOUT_MS;
    const found = new Set<number>();
    for (;;) {
      const pids = allPids().filter((pid) => isInside(cwdOf(pid), workspaceRoot));
      if (pids.length === 0 || Date.now() > deadline) return found.size;
      for (const pid of pids) found.add(pid);
      for (const pid of pids) signal(pid, 'SIGKILL');
      await sleep(10);
    }
  }

  async close(): Promise<void> {
    // nothing kept running
  }
}
