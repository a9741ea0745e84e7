// The durable log archive: every line is committed here before any client sees it, so a
// line a client received is a line a replay will send again, even after kill -9.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { LogLine, LogMark, LogStream } from '../domain/index.ts';
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

/** A framing line's mark (see LogMark), with where it is in the run's log. */
export interface ArchivedMark extends LogMark {
  seq: number;
  step: string | null;
}

/** A step's newest output lines: their (common) timestamp and messages, in order. */
export interface LastOutput {
  ts: string;
  messages: string[];
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
  private readonly anyOfDriver: StatementSync;
  private readonly insertMark: StatementSync;
  private readonly readMarks: StatementSync;
  private readonly readNewestOutput: StatementSync;

  constructor(db: DatabaseSync) {
    this.db = db;
    this.insert = db.prepare('INSERT INTO log_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.readAfter = db.prepare('SELECT * FROM log_lines WHERE runid = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.maxSeq = db.prepare('SELECT max(seq) AS seq FROM log_lines WHERE runid = ?');
    this.anyOfDriver = db.prepare('SELECT 1 AS found FROM log_lines WHERE runid = ? AND driver = ? LIMIT 1');
    this.insertMark = db.prepare('INSERT INTO log_marks VALUES (?, ?, ?, ?)');
    this.readMarks = db.prepare(
      'SELECT m.seq AS seq, m.attempt AS attempt, m.event AS event, l.step AS step FROM log_marks m JOIN log_lines l ON l.runid = m.runid AND l.seq = m.seq WHERE m.runid = ? ORDER BY m.seq',
    );
    this.readNewestOutput = db.prepare("SELECT ts, message FROM log_lines WHERE runid = ? AND seq > ? AND step = ? AND stream != 'system' ORDER BY seq DESC");
  }

  append(lines: readonly LogLine[]): void {
    if (lines.length === 0) return;
    transaction(this.db, () => {
      for (const l of lines) {
        this.insert.run(l.runid, l.seq, l.ts, l.driver, l.pipeline, l.step, l.stream, l.message);
        // In the same transaction as the line: a mark never exists without its line.
        if (l.mark) this.insertMark.run(l.runid, l.seq, l.mark.attempt, l.mark.event);
      }
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

  /** The run's framing marks, in log order. */
  marks(runid: string): ArchivedMark[] {
    return this.readMarks.all(runid) as unknown as ArchivedMark[];
  }

  /** The output lines of `step` after `afterSeq` that carry the newest timestamp, read back
   * from the end (a resume needs only those), else undefined. */
  lastOutput(runid: string, afterSeq: number, step: string): LastOutput | undefined {
    let newest: LastOutput | undefined;
    for (const row of this.readNewestOutput.iterate(runid, afterSeq, step) as Iterable<{ ts: string; message: string }>) {
      if (newest && row.ts !== newest.ts) break;
      newest ??= { ts: row.ts, messages: [] };
      newest.messages.unshift(row.message);
    }
    return newest;
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

  // One page of the lines matching `q`; the next page starts after the last seq returned.
  query(q: LogQuery, page: LogPage): LogLine[] {
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

  // Removes a run's lines (retention: the archive goes with its Run).
  delete(runid: string): number {
    return transaction(this.db, () => {
      // Its marks go with it (they describe its lines).
      this.db.prepare('DELETE FROM log_marks WHERE runid = ?').run(runid);
      return Number(this.db.prepare('DELETE FROM log_lines WHERE runid = ?').run(runid).changes);
    });
  }
}
