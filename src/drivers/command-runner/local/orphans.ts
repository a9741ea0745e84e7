// After a crash (kill -9) the steps a run had started keep running, re-parented to init.
// Each step's environment carries CONVEYOR_RUN_ID, so at the next start we can find the
// processes of an interrupted run through /proc and stop their process groups. Where
// /proc does not exist (macOS), there is nothing to find and nothing is done.
import { readdirSync, readFileSync } from 'node:fs';

export function findRunProcesses(runid: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const marker = `CONVEYOR_RUN_ID=${runid}`;
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker)) pids.push(Number(entry));
    } catch {
      // gone already, or not ours to read
    }
  }
  return pids;
}

export function killRunProcesses(runid: string): number {
  const pids = findRunProcesses(runid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited between the scan and the kill
    }
  }
  return pids.length;
}
