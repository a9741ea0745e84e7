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

  // Removes a run's lines (retention: the archive goes with its Run).
  delete(runid: string): number {
    return Number(this.db.prepare('DELETE FROM log_lines WHERE runid = ?').run(runid).changes);
  }
}
