// Keeps every process a run's steps start inside something the server can empty, however
// the process detaches (a new session, a cleared environment, a double fork).
//
// - Where the cgroup v1 freezer hierarchy is writable (root on Linux), each run gets a
//   cgroup `<freezer>/conveyor/<data dir hash>/<runid>`. A step enters it before the user's
//   command runs, and children cannot leave it. Emptying it is freeze, SIGKILL every
//   member, thaw: a frozen process cannot fork, so nothing slips out between reading the
//   member list and the kill.
// - Elsewhere (not root, macOS, a read-only cgroup fs) the fallback finds the run's
//   processes through /proc by markers a step cannot shed by detaching: its process group
//   and session, its working directory inside the run's workspace, and CONVEYOR_RUN_ID in
//   its environment. A process that left all three (cd elsewhere, setsid, env -i) escapes
//   the fallback; README says so.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// How long emptying a run's processes may take before we give up on stragglers (a process
// in uninterruptible sleep); the run ends regardless.
const EMPTY_TIMEOUT_MS = 3_000;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** The processes of one run. */
export interface RunProcesses {
  // How to spawn a step so that it is inside from its first instruction.
  command(shellCommand: string): { file: string; args: string[] };
  // Every live process of the run.
  pids(): number[];
  // Asks every process to stop (SIGTERM); `leaderPid` is the step's own shell.
  terminate(leaderPid: number | undefined): void;
  // Kills every process of the run and waits (bounded) until they are gone.
  kill(leaderPid: number | undefined): Promise<void>;
  // Kills what is left and releases the container.
  dispose(): Promise<void>;
}

export interface Containment {
  readonly kind: 'cgroup' | 'scan';
  // Where the run's processes are kept; `workspace` is the run's working directory.
  forRun(runid: string, workspace: string): RunProcesses;
  // Kills processes a previous server on this data directory left behind (after kill -9),
  // without relying on their environment. Returns how many were found.
  sweepLeftovers(workspaceRoot: string): Promise<number>;
}

export interface ContainmentOptions {
  dataDir: string;
  // The cgroup v1 freezer mount, or null for the /proc fallback.
  freezerRoot: string | null;
}

// A data directory's own subtree: two servers on different data directories never touch
// each other's runs, and a restarted server finds exactly its predecessor's.
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

class CgroupContainment implements Containment {
  readonly kind = 'cgroup' as const;
  private readonly scopeDir: string;

  constructor(scopeDir: string) {
    this.scopeDir = scopeDir;
  }

  forRun(runid: string): RunProcesses {
    const dir = join(this.scopeDir, runid);
    mkdirSync(dir, { recursive: true });
    const procs = join(dir, 'cgroup.procs');
    return {
      // The shell moves itself into the cgroup, then becomes the step's shell: nothing of
      // the user's command runs outside it.
      command: (shellCommand) => ({ file: '/bin/sh', args: ['-c', 'echo $$ > "$0" && exec /bin/sh -c "$1"', procs, shellCommand] }),
      pids: () => readPids(procs),
      terminate: (leaderPid) => {
        if (leaderPid !== undefined) signal(-leaderPid, 'SIGTERM');
        for (const pid of readPids(procs)) signal(pid, 'SIGTERM');
      },
      kill: () => emptyCgroup(dir),
      dispose: async () => {
        await emptyCgroup(dir);
        removeCgroup(dir);
      },
    };
  }

  async sweepLeftovers(): Promise<number> {
    let found = 0;
    let entries: string[] = [];
    try {
      entries = readdirSync(this.scopeDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return 0;
    }
    for (const name of entries) {
      const dir = join(this.scopeDir, name);
      found += readPids(join(dir, 'cgroup.procs')).length;
      await emptyCgroup(dir);
      removeCgroup(dir);
    }
    return found;
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

// The processes marked as the run's: in the step's group or session, working inside the
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

class ScanContainment implements Containment {
  readonly kind = 'scan' as const;

  forRun(runid: string, workspace: string): RunProcesses {
    // Every step's shell leads its own session; remembered so that its group and session
    // can be found after it has exited.
    const leaders = new Set<number>();
    const find = () => scanRun(runid, workspace, leaders);
    const kill = async (leaderPid: number | undefined) => {
      if (leaderPid !== undefined) leaders.add(leaderPid);
      const deadline = Date.now() + EMPTY_TIMEOUT_MS;
      for (;;) {
        if (leaderPid !== undefined) signal(-leaderPid, 'SIGKILL');
        const pids = find();
        if (pids.length === 0 || Date.now() > deadline) return;
        for (const pid of pids) signal(pid, 'SIGKILL');
        await sleep(10);
      }
    };
    return {
      command: (shellCommand) => ({ file: '/bin/sh', args: ['-c', shellCommand] }),
      pids: find,
      terminate: (leaderPid) => {
        if (leaderPid !== undefined) {
          leaders.add(leaderPid);
          signal(-leaderPid, 'SIGTERM');
        }
        for (const pid of find()) signal(pid, 'SIGTERM');
      },
      kill,
      dispose: () => kill(undefined),
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
}
