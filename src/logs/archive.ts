// The durable log archive: every line is committed here before any client sees it, so a
// line a client received is a line a replay will send again, even after kill -9.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { LogLine, LogStream } from '../domain/index.ts';
import { transaction } from '../store/embedded/database.ts';

type Row = { runid: string; seq: number; ts: string; driver: string; pipeline: string | null; step: string | null; stream: string; message: string };

function lineFromRow(row: Row): LogLine {
  return { ...row, stream: row.stream as LogStream };
}

function collect(rows: Iterator<Row>, maxBytes: number): LogLine[] {
  const lines: LogLine[] = [];
  let bytes = 0;
  for (let next = rows.next(); !next.done; next = rows.next()) {
    lines.push(lineFromRow(next.value));
    bytes += next.value.message.length;
    if (bytes >= maxBytes) {
      rows.return?.();
      break;
    }
  }
  return lines;
}

export interface LogQuery {
  runid: string;
  driver?: string;
  pipeline?: string;
}

// One read's worth: lines after a seq, at most `limit` of them and about `maxBytes` of text
// (always at least one line), so that no read holds more than that in memory.
export interface LogPage {
  afterSeq: number;
  limit: number;
  maxBytes: number;
}

export class LogArchive {
  private readonly db: DatabaseSync;
  private readonly insert: StatementSync;
  private readonly readAfter: StatementSync;
  private readonly maxSeq: StatementSync;
  private readonly anyOfDriver: StatementSync;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.insert = db.prepare('INSERT INTO log_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.readAfter = db.prepare('SELECT * FROM log_lines WHERE runid = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.maxSeq = db.prepare('SELECT max(seq) AS seq FROM log_lines WHERE runid = ?');
    this.anyOfDriver = db.prepare('SELECT 1 AS found FROM log_lines WHERE runid = ? AND driver = ? LIMIT 1');
  }

  append(lines: readonly LogLine[]): void {
    if (lines.length === 0) return;
    transaction(this.db, () => {
      for (const l of lines) this.insert.run(l.runid, l.seq, l.ts, l.driver, l.pipeline, l.step, l.stream, l.message);
    });
  }

  read(runid: string, afterSeq: number, limit: number, maxBytes = Number.MAX_SAFE_INTEGER): LogLine[] {
    return collect(this.readAfter.iterate(runid, afterSeq, limit) as Iterator<Row>, maxBytes);
  }

  // Whether any line of the run came from `driver`.
  hasDriver(runid: string, driver: string): boolean {
    return this.anyOfDriver.get(runid, driver) !== undefined;
  }

  lastSeq(runid: string): number {
    const row = this.maxSeq.get(runid) as { seq: number | null };
    return row.seq ?? 0;
  }

  // One page of the lines matching `q`; the next page starts after the last seq returned.
  // Without `page`, every line: only the Kubernetes collector still reads that way, to
  // find its progress (issue 10 point 13 moves that into structured status).
  query(q: LogQuery, page: LogPage = { afterSeq: 0, limit: -1, maxBytes: Number.MAX_SAFE_INTEGER }): LogLine[] {
    const where = ['runid = ?', 'seq > ?'];
    const params: (string | number)[] = [q.runid, page.afterSeq];
    if (q.driver) {
      where.push('driver = ?');
      params.push(q.driver);
    }
    if (q.pipeline) {
      where.push('pipeline = ?');
      params.push(q.pipeline);
    }
    params.push(page.limit);
    const statement = this.db.prepare(`SELECT * FROM log_lines WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`);
    return collect(statement.iterate(...params) as Iterator<Row>, page.maxBytes);
  }

  // Every line matching `q`, page by page: memory holds one page at a time.
  *pages(q: LogQuery, pageSize = 1_000, maxBytes = 4 * 1024 * 1024): Generator<LogLine[]> {
    let afterSeq = 0;
    for (;;) {
      const lines = this.query(q, { afterSeq, limit: pageSize, maxBytes });
      if (lines.length === 0) return;
      yield lines;
      afterSeq = lines[lines.length - 1]!.seq;
    }
  }
}
