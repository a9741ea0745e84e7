// Opens the embedded database. WAL lets readers (log replays) proceed while the writer
// appends, and synchronous=NORMAL keeps every committed transaction across a process
// crash (kill -9), which is the durability local mode promises.
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS definitions (
  name TEXT PRIMARY KEY, id TEXT NOT NULL, version TEXT NOT NULL, description TEXT NOT NULL,
  schema TEXT NOT NULL, built_in INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
  type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, pipeline TEXT,
  spec TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (type, name));
CREATE TABLE IF NOT EXISTS resource_versions (
  type TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL, pipeline TEXT,
  spec TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (type, name, version));
CREATE TABLE IF NOT EXISTS runs (
  ord INTEGER PRIMARY KEY AUTOINCREMENT, runid TEXT NOT NULL UNIQUE, resource TEXT NOT NULL,
  name TEXT NOT NULL, version INTEGER NOT NULL, driver TEXT NOT NULL, phase TEXT NOT NULL,
  reason TEXT, message TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
  steps TEXT NOT NULL, spec TEXT NOT NULL, pipeline TEXT);
CREATE INDEX IF NOT EXISTS runs_by_resource ON runs (resource, name, ord);
CREATE INDEX IF NOT EXISTS runs_by_phase_ord ON runs (phase, ord);
CREATE INDEX IF NOT EXISTS runs_pending_by_driver ON runs (driver, ord) WHERE phase = 'Pending';
CREATE TABLE IF NOT EXISTS driver_pipelines (
  name TEXT PRIMARY KEY, resource TEXT NOT NULL, description TEXT NOT NULL, steps TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS broadcasts (
  id TEXT PRIMARY KEY, event TEXT NOT NULL, payload TEXT NOT NULL, run_id TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log_lines (
  runid TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, driver TEXT NOT NULL, pipeline TEXT,
  step TEXT, stream TEXT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (runid, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_marks (
  runid TEXT NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL, event TEXT NOT NULL,
  PRIMARY KEY (runid, seq)) WITHOUT ROWID;
`;

export function openDatabase(dataDir: string, file = 'conveyor.db'): DatabaseSync {
  mkdirSync(dataDir, { recursive: true });
  const db = new DatabaseSync(join(dataDir, file));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
  db.exec(SCHEMA);
  addColumn(db, 'runs', 'requested_by', 'TEXT');
  return db;
}

// Columns added after a database was first created: added in place on open.
function addColumn(db: DatabaseSync, table: string, column: string, type: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
}

export function transaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = work();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
