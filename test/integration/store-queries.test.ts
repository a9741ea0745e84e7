// The embedded store's hot queries must read rows in proportion to what they return, not to
// what is stored: checked through SQLite's own query plan, on a database holding a queue of
// Pending runs that no driver serves (the case that made every POST slower than the last).
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { COMMAND_RUNNER } from '../../src/domain/index.ts';
import { EmbeddedStore, NEXT_PENDING_SQL, openDatabase } from '../../src/store/embedded/index.ts';

function plan(db: DatabaseSync, sql: string, ...params: (string | number)[]): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('; ');
}

describe('embedded store queries', () => {
  let dir: string;
  let db: DatabaseSync;
  let store: EmbeddedStore;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'conveyor-store-queries-'));
    db = openDatabase(dir);
    store = new EmbeddedStore(db);
    const insert = db.prepare(
      `INSERT INTO runs (runid, resource, name, version, driver, phase, created_at, steps, spec) VALUES (?, ?, ?, 1, ?, 'Pending', '', '[]', '{}')`,
    );
    db.exec('BEGIN');
    for (let i = 0; i < 2000; i++) insert.run(`none-${i}`, 'thing', `t${i}`, 'none');
    insert.run('cr-1', 'pipeline', 'p1', COMMAND_RUNNER);
    insert.run('cr-2', 'pipeline', 'p2', COMMAND_RUNNER);
    db.exec('COMMIT');
    db.exec('ANALYZE');
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the next Pending runs of a driver through the partial index, not by scanning every Pending run', async () => {
    expect(plan(db, NEXT_PENDING_SQL, COMMAND_RUNNER, 2)).to.match(/USING INDEX runs_pending_by_driver \(driver=\?\)/);
    expect((await store.nextPending(COMMAND_RUNNER, 5)).map((r) => r.runid)).to.deep.equal(['cr-1', 'cr-2']);
    expect((await store.nextPending('none', 3)).map((r) => r.runid)).to.deep.equal(['none-0', 'none-1', 'none-2']);
  });

  it('reads a run, a resource and the newest page of runs by key', () => {
    expect(plan(db, 'SELECT * FROM runs WHERE runid = ?', 'x')).to.match(/USING INDEX sqlite_autoindex_runs_1 \(runid=\?\)/);
    expect(plan(db, 'SELECT * FROM resources WHERE type = ? AND name = ?', 'a', 'b')).to.match(/USING INDEX sqlite_autoindex_resources_1 \(type=\? AND name=\?\)/);
    expect(plan(db, 'SELECT * FROM runs ORDER BY ord DESC LIMIT ?', 51)).to.match(/^SCAN runs$/);
  });
});
