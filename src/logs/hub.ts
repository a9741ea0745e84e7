// The log hub: one ordered, durable sequence of lines per run, and any number of followers.
//
// Writers append synchronously (the line gets its seq at once); lines are committed to the
// archive in batches and only then handed to followers. Each follower pulls at its own pace
// from a cursor: recent lines come from an in-memory window, older ones from the archive,
// so a slow client neither loses lines nor holds back the others.
import type { LogEntry, LogLine } from '../domain/index.ts';
import { nowNanos } from '../domain/index.ts';
import type { LogArchive } from './archive.ts';

export type NewLogEntry = Omit<LogEntry, 'ts'> & { ts?: string };

interface RunLog {
  nextSeq: number;
  // Committed lines most recently appended, in seq order, at most `windowSize` of them.
  window: LogLine[];
  ended: boolean;
  waiters: Set<() => void>;
  retireTimer?: NodeJS.Timeout;
}

export interface LogHubOptions {
  windowSize?: number;
  batchSize?: number;
  // How long an ended run's window stays in memory for followers still catching up.
  retireAfterMs?: number;
  // How many chunks of batchSize archived lines stay cached for followers to share.
  archiveChunks?: number;
}

export interface FollowOptions {
  after?: number;
  driver?: string;
  // Ends the follow at once, e.g. when the client goes away while no line is coming.
  signal?: AbortSignal;
}

export class LogHub {
  private readonly archive: LogArchive;
  private readonly isFinished: (runid: string) => Promise<boolean>;
  private readonly runs = new Map<string, RunLog>();
  private pending: LogLine[] = [];
  private flushScheduled = false;
  private readonly windowSize: number;
  private readonly batchSize: number;
  private readonly retireAfterMs: number;
  private followers = 0;
  // Full, aligned chunks of archived lines (seqs k*batchSize+1 .. (k+1)*batchSize), least
  // recently used first: followers behind the window share one read (and one set of frames).
  private readonly chunks = new Map<string, LogLine[]>();
  private readonly maxChunks: number;

  constructor(archive: LogArchive, isFinished: (runid: string) => Promise<boolean>, options: LogHubOptions = {}) {
    this.archive = archive;
    this.isFinished = isFinished;
    this.windowSize = options.windowSize ?? 20_000;
    this.batchSize = options.batchSize ?? 1_000;
    this.retireAfterMs = options.retireAfterMs ?? 30_000;
    this.maxChunks = options.archiveChunks ?? 32;
  }

  get followerCount(): number {
    return this.followers;
  }

  private state(runid: string): RunLog {
    let log = this.runs.get(runid);
    if (!log) {
      log = { nextSeq: this.archive.lastSeq(runid) + 1, window: [], ended: false, waiters: new Set() };
      this.runs.set(runid, log);
    }
    return log;
  }

  append(runid: string, entry: NewLogEntry): LogLine {
    const log = this.state(runid);
    if (log.ended) throw new Error(`log of run ${runid} has ended`);
    const line: LogLine = { ...entry, ts: entry.ts ?? nowNanos(), runid, seq: log.nextSeq++ };
    this.pending.push(line);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return line;
  }

  // Commits every pending line, then wakes the followers of the runs they belong to.
  flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.archive.append(batch);
    const touched = new Set<RunLog>();
    for (const line of batch) {
      const log = this.runs.get(line.runid);
      if (!log) continue;
      log.window.push(line);
      touched.add(log);
    }
    for (const log of touched) {
      if (log.window.length > this.windowSize) log.window.splice(0, log.window.length - this.windowSize);
      this.wake(log);
    }
  }

  /** The run's newest line, committed or not, else undefined. */
  lastLine(runid: string): LogLine | undefined {
    this.flush();
    const seq = this.archive.lastSeq(runid);
    return seq > 0 ? this.archive.read(runid, seq - 1, 1)[0] : undefined;
  }

  hasEnded(runid: string): boolean {
    return this.runs.get(runid)?.ended === true;
  }

  // Marks the end of a run's log: followers drain what is committed and then finish.
  end(runid: string): void {
    const log = this.state(runid);
    if (log.ended) return;
    this.flush();
    log.ended = true;
    this.wake(log);
    log.retireTimer = setTimeout(() => this.runs.delete(runid), this.retireAfterMs);
    log.retireTimer.unref();
  }

  private wake(log: RunLog): void {
    const waiters = [...log.waiters];
    log.waiters.clear();
    for (const resolve of waiters) resolve();
  }

  private readAfter(runid: string, cursor: number): LogLine[] {
    const window = this.runs.get(runid)?.window;
    if (window && window.length > 0 && window[0]!.seq <= cursor + 1) {
      const start = cursor + 1 - window[0]!.seq;
      return window.slice(start, start + this.batchSize);
    }
    return this.readArchived(runid, cursor);
  }

  private readArchived(runid: string, cursor: number): LogLine[] {
    const size = this.batchSize;
    const first = Math.floor(cursor / size) * size;
    const key = `${runid}:${first}`;
    let chunk = this.chunks.get(key);
    if (chunk) {
      this.chunks.delete(key);
      this.chunks.set(key, chunk);
    } else {
      chunk = this.archive.read(runid, first, size);
      // Only a full chunk of gap-free seqs is final; anything else is read again next time.
      if (chunk.length !== size || chunk[0]!.seq !== first + 1 || chunk[size - 1]!.seq !== first + size) {
        return chunk.filter((l) => l.seq > cursor);
      }
      this.chunks.set(key, chunk);
      if (this.chunks.size > this.maxChunks) this.chunks.delete(this.chunks.keys().next().value!);
    }
    return chunk.slice(cursor - first);
  }

  // Yields batches of committed lines after `after`, live as they come, and returns once
  // the run has ended and everything has been yielded. The consumer's pace is the pace.
  async *follow(runid: string, options: FollowOptions = {}): AsyncGenerator<LogLine[]> {
    let cursor = options.after ?? 0;
    this.followers++;
    try {
      for (;;) {
        if (options.signal?.aborted) return;
        const lines = this.readAfter(runid, cursor);
        if (lines.length > 0) {
          cursor = lines[lines.length - 1]!.seq;
          const visible = options.driver ? lines.filter((l) => l.driver === options.driver) : lines;
          if (visible.length > 0) yield visible;
          continue;
        }
        const log = this.runs.get(runid);
        if (!log) {
          if (await this.isFinished(runid)) {
            // Lines may have been committed by a writer that ended while we waited.
            if (this.archive.lastSeq(runid) > cursor) continue;
            return;
          }
          // Track the run so that the next append wakes us; re-read before waiting.
          this.state(runid);
          continue;
        }
        if (log.ended || options.signal?.aborted) return;
        await this.nextChange(log, options.signal);
        if (options.signal?.aborted) return;
      }
    } finally {
      this.followers--;
    }
  }

  private nextChange(log: RunLog, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        log.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      log.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  // Lines already committed, for GET /logs and the CLI.
  committed(runid: string): LogLine[] {
    return this.archive.read(runid, 0, Number.MAX_SAFE_INTEGER);
  }

  close(): void {
    this.flush();
    for (const log of this.runs.values()) {
      if (log.retireTimer) clearTimeout(log.retireTimer);
      log.ended = true;
      this.wake(log);
    }
  }
}
