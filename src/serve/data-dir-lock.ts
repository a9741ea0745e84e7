// One server per data directory. Two servers on one directory would both settle the
// other's runs as Interrupted, kill its steps and hand out the same `seq` numbers.
//
// The lock is an exclusive SQLite lock (POSIX fcntl underneath) on `conveyor.lock`: the
// kernel drops it when its process dies, kill -9 included, so a crashed server never
// leaves a stale lock behind and no pid has to be trusted. `conveyor.pid` beside it names
// the holder, for the message a second server prints before it exits.
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirInUseError extends Error {
  constructor(dataDir: string, holder: string | undefined) {
    super(
      `the data directory ${dataDir} is in use by another Conveyor server${holder ? ` (pid ${holder})` : ''}; ` +
        'stop that server first, or start this one with another --data-dir (CONVEYOR_DATA_DIR)',
    );
    this.name = 'DataDirInUseError';
  }
}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const pidFile = join(dataDir, 'conveyor.pid');
  const db = new DatabaseSync(join(dataDir, 'conveyor.lock'));
  try {
    db.exec('PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;');
  } catch (err) {
    db.close();
    if (!/locked|busy/i.test((err as Error).message)) throw err;
    let holder: string | undefined;
    try {
      holder = readFileSync(pidFile, 'utf8').trim() || undefined;
    } catch {
      // the holder has not written it yet
    }
    throw new DataDirInUseError(dataDir, holder);
  }
  writeFileSync(pidFile, `${process.pid}\n`);
  return {
    release() {
      rmSync(pidFile, { force: true });
      db.close();
    },
  };
}
