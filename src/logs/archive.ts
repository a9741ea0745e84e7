// The durable log archive: every line is committed here before any client sees it, so a
// line a client received is a line a replay will send again, even after kill -9.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { LogLine, LogStream } from '../domain/index.ts';
import { transaction } from '../store/embedded/database.ts';

type Row = { runid: string; seq: number; ts: string; driver: string; pipeline: string | null; step: string | null; stream: string; message: string };

function lineFromRow(row: Row): LogLine {
  return { ...row, stream: row.stream as LogStream };
}

export interface LogQuery {
  runid: string;
  driver?: string;
  pipeline?: string;
}

// A page of a run's lines for the web page and scripts: after a seq, at most `limit`, and
// optionally only one step's lines or lines whose message contains a text (any case).
export interface LogRange {
  runid: string;
  after: number;
  limit: number;
  driver?: string;
  step?: string;
  contains?: string;
}

export class LogArchive {
  private readonly db: DatabaseSync;
  private readonly insert: StatementSync;
  private readonly readAfter: StatementSync;
  private readonly maxSeq: StatementSync;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.insert = db.prepare('INSERT INTO log_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.readAfter = db.prepare('SELECT * FROM log_lines WHERE runid = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.maxSeq = db.prepare('SELECT max(seq) AS seq FROM log_lines WHERE runid = ?');
  }

  append(lines: readonly LogLine[]): void {
    if (lines.length === 0) return;
    transaction(this.db, () => {
      for (const l of lines) this.insert.run(l.runid, l.seq, l.ts, l.driver, l.pipeline, l.step, l.stream, l.message);
    });
  }

  read(runid: string, afterSeq: number, limit: number): LogLine[] {
    return (this.readAfter.all(runid, afterSeq, limit) as Row[]).map(lineFromRow);
  }

  lastSeq(runid: string): number {
    const row = this.maxSeq.get(runid) as { seq: number | null };
    return row.seq ?? 0;
  }

  // Walks the (runid, seq) primary key from `after`, so a page costs the same anywhere in a
  // million-line log; a filter only scans forward until the page is full.
  range(r: LogRange): LogLine[] {
    const where = ['runid = ?', 'seq > ?'];
    const params: (string | number)[] = [r.runid, r.after];
    if (r.driver) {
      where.push('driver = ?');
      params.push(r.driver);
    }
    if (r.step) {
      where.push('step = ?');
      params.push(r.step);
    }
    if (r.contains) {
      where.push('instr(lower(message), ?) > 0');
      params.push(r.contains.toLowerCase());
    }
    const sql = `SELECT * FROM log_lines WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
    return (this.db.prepare(sql).all(...params, r.limit) as Row[]).map(lineFromRow);
  }

  query(q: LogQuery): LogLine[] {
    const where = ['runid = ?'];
    const params: string[] = [q.runid];
    if (q.driver) {
      where.push('driver = ?');
      params.push(q.driver);
    }
    if (q.pipeline) {
      where.push('pipeline = ?');
      params.push(q.pipeline);
    }
    return (this.db.prepare(`SELECT * FROM log_lines WHERE ${where.join(' AND ')} ORDER BY seq`).all(...params) as Row[]).map(lineFromRow);
  }
}
