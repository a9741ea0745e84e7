// Finding a run's processes from outside, the way an operator would: through /proc.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function pids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Live processes whose command line contains `text` (a unique token the test chose). */
export function processesRunning(text: string): number[] {
  return pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').includes(text) && !isZombie(pid);
    } catch {
      return false;
    }
  });
}

/** Live processes whose environment holds NAME=value. */
export function processesWithEnv(marker: string): number[] {
  return pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker) && !isZombie(pid);
    } catch {
      return false;
    }
  });
}

/** Live processes working inside `dir`. */
export function processesIn(dir: string): number[] {
  return pids().filter((pid) => {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      return (cwd === dir || cwd.startsWith(`${dir}/`)) && !isZombie(pid);
    } catch {
      return false;
    }
  });
}
