// The log hub: one ordered, durable sequence of lines per run, and any number of followers.
//
// Writers append synchronously (the line gets its seq at once); lines are committed to the
// archive in batches and only then handed to followers. Each follower pulls at its own pace
// from a cursor: recent lines come from an in-memory window, older ones from the archive,
// so a slow client neither loses lines nor holds back the others.
import type { LogEntry, LogLine } from '../domain/index.ts';
import { nowNanos } from '../domain/index.ts';
import type { LogArchive } from './archive.ts';
import { reportBackgroundError } from '../observability/background.ts';

export type NewLogEntry = Omit<LogEntry, 'ts'> & { ts?: string };

interface RunLog {
  nextSeq: number;
  // Committed lines most recently appended, in seq order, at most `windowSize` of them
  // and about `windowBytes` of message text.
  window: LogLine[];
  windowBytes: number;
  // Lines appended but not yet in the archive: an ended log is not over for its
  // followers until these are committed.
  uncommitted: number;
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
  // Bounds on memory whatever the lines' length: message bytes kept in one run's window,
  // and read from the archive at once.
  windowBytes?: number;
  readBytes?: number;
  archiveChunkBytes?: number;
  // An archive write failed; the batch is kept and retried with backoff.
  onArchiveError?: (err: Error, retryInMs: number) => void;
}

/** Thrown to followers when the server stops before the run's log has ended. */
export class LogHubClosedError extends Error {
  constructor() {
    super('the server is stopping; the run goes on, follow it again after the restart');
    this.name = 'LogHubClosedError';
  }
}

const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 5_000;

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
  private pendingBytes = 0;
  private flushScheduled = false;
  private readonly windowSize: number;
  private readonly batchSize: number;
  private readonly retireAfterMs: number;
  private followers = 0;
  // Full, aligned chunks of archived lines (seqs k*batchSize+1 .. (k+1)*batchSize), least
  // recently used first: followers behind the window share one read (and one set of frames).
  private readonly chunks = new Map<string, { lines: LogLine[]; bytes: number }>();
  private chunkBytes = 0;
  private readonly maxChunkBytes: number;
  private readonly maxChunks: number;
  private readonly windowBytes: number;
  private readonly readBytes: number;
  private readonly onArchiveError: (err: Error, retryInMs: number) => void;
  private retryMs = 0;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  // Writers waiting for the backlog of uncommitted lines to clear.
  private backlogWaiters: (() => void)[] = [];

  constructor(archive: LogArchive, isFinished: (runid: string) => Promise<boolean>, options: LogHubOptions = {}) {
    this.archive = archive;
    this.isFinished = isFinished;
    this.windowSize = options.windowSize ?? 20_000;
    this.batchSize = options.batchSize ?? 1_000;
    this.retireAfterMs = options.retireAfterMs ?? 30_000;
    this.maxChunks = options.archiveChunks ?? 32;
    this.windowBytes = options.windowBytes ?? 64 * 1024 * 1024;
    this.readBytes = options.readBytes ?? 4 * 1024 * 1024;
    this.maxChunkBytes = options.archiveChunkBytes ?? 32 * 1024 * 1024;
    // Logged and counted (conveyor_background_errors_total{task="log-archive.write"}).
    this.onArchiveError = options.onArchiveError ?? ((err) => reportBackgroundError('log-archive.write', err));
  }

  get followerCount(): number {
    return this.followers;
  }

  private state(runid: string): RunLog {
    let log = this.runs.get(runid);
    if (!log) {
      log = { nextSeq: this.archive.lastSeq(runid) + 1, window: [], windowBytes: 0, uncommitted: 0, ended: false, waiters: new Set() };
      this.runs.set(runid, log);
    }
    return log;
  }

  append(runid: string, entry: NewLogEntry): LogLine {
    const log = this.state(runid);
    if (log.ended) throw new Error(`log of run ${runid} has ended`);
    const line: LogLine = { ...entry, ts: entry.ts ?? nowNanos(), runid, seq: log.nextSeq++ };
    this.pending.push(line);
    this.pendingBytes += line.message.length;
    log.uncommitted++;
    if (!this.flushScheduled && this.retryTimer === undefined) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return line;
  }

  // Commits every pending line, then wakes the followers of the runs they belong to. A
  // failed write keeps the batch, in order and with its seqs, and retries it with backoff:
  // followers see nothing of it until it is committed, so no line is lost, none skipped.
  flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    try {
      this.archive.append(batch);
    } catch (err) {
      this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs === 0 ? RETRY_FIRST_MS : this.retryMs * 2);
      if (this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.flush();
        }, this.retryMs);
        this.retryTimer.unref();
      }
      this.onArchiveError(err as Error, this.retryMs);
      return;
    }
    this.retryMs = 0;
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.pending = [];
    this.pendingBytes = 0;
    for (const resolve of this.backlogWaiters.splice(0)) resolve();
    const touched = new Set<RunLog>();
    for (const line of batch) {
      const log = this.runs.get(line.runid);
      if (!log) continue;
      log.uncommitted--;
      log.window.push(line);
      log.windowBytes += line.message.length;
      touched.add(log);
    }
    for (const log of touched) {
      this.trimWindow(log);
      this.wake(log);
    }
  }

  private trimWindow(log: RunLog): void {
    let drop = Math.max(0, log.window.length - this.windowSize);
    let bytes = log.windowBytes;
    for (let i = 0; i < drop; i++) bytes -= log.window[i]!.message.length;
    // Keep the newest line even when it alone is over the byte bound.
    while (bytes > this.windowBytes && drop < log.window.length - 1) bytes -= log.window[drop++]!.message.length;
    if (drop > 0) log.window.splice(0, drop);
    log.windowBytes = bytes;
  }

  /** Message bytes appended and not yet committed (they pile up while the archive fails). */
  get backlogBytes(): number {
    return this.pendingBytes;
  }

  /** Resolves once the lines appended so far are committed (or the hub closes). */
  committedSoon(): Promise<void> {
    if (this.pending.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.backlogWaiters.push(resolve));
  }

  /** The run's newest line, committed or not, else undefined. */
  lastLine(runid: string): LogLine | undefined {
    this.flush();
    const seq = this.archive.lastSeq(runid);
    return seq > 0 ? this.archive.read(runid, seq - 1, 1, this.readBytes)[0] : undefined;
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
      // At most batchSize lines and about readBytes of text: a batch becomes one write.
      let end = start;
      let bytes = 0;
      const last = Math.min(window.length, start + this.batchSize);
      while (end < last && (end === start || bytes + window[end]!.message.length <= this.readBytes)) bytes += window[end++]!.message.length;
      return window.slice(start, end);
    }
    return this.readArchived(runid, cursor);
  }

  private readArchived(runid: string, cursor: number): LogLine[] {
    const size = this.batchSize;
    const first = Math.floor(cursor / size) * size;
    const key = `${runid}:${first}`;
    const cached = this.chunks.get(key);
    if (cached) {
      this.chunks.delete(key);
      this.chunks.set(key, cached);
      return cached.lines.slice(cursor - first);
    }
    if (cursor !== first) {
      // Mid-chunk (a resume, or a read cut short by its byte bound): read up to the chunk's
      // end, after which this follower reads whole chunks that others can share.
      return this.archive.read(runid, cursor, first + size - cursor, this.readBytes);
    }
    const lines = this.archive.read(runid, first, size, this.readBytes);
    // Only a full chunk of gap-free seqs is final; anything else is read again next time.
    if (lines.length === size && lines[0]!.seq === first + 1 && lines[size - 1]!.seq === first + size) {
      const bytes = lines.reduce((n, l) => n + l.message.length, 0);
      this.chunks.set(key, { lines, bytes });
      this.chunkBytes += bytes;
      while (this.chunks.size > this.maxChunks || (this.chunkBytes > this.maxChunkBytes && this.chunks.size > 1)) {
        const oldest = this.chunks.keys().next().value!;
        this.chunkBytes -= this.chunks.get(oldest)!.bytes;
        this.chunks.delete(oldest);
      }
    }
    return lines;
  }


  // Yields batches of committed lines after `after`, live as they come, and returns once
  // the run has ended and everything has been yielded. The consumer's pace is the pace.
  async *follow(runid: string, options: FollowOptions = {}): AsyncGenerator<LogLine[]> {
    let cursor = options.after ?? 0;
    this.followers++;
    try {
      for (;;) {
        if (options.signal?.aborted) return;
        if (this.closed) throw new LogHubClosedError();
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
        if ((log.ended && log.uncommitted === 0) || options.signal?.aborted) return;
        if (this.closed) throw new LogHubClosedError();
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

  // The server is stopping: a last commit, then every follower of a log that has not ended
  // gets LogHubClosedError (the run goes on; it must not be told the run ended).
  // Every committed line, one archive page in memory at a time (a driver bus re-seeding its
  // deduplication after a restart).
  *committed(runid: string): Generator<LogLine> {
    this.flush();
    for (const page of this.archive.pages({ runid })) yield* page;
  }

  close(): void {
    this.flush();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.closed = true;
    for (const resolve of this.backlogWaiters.splice(0)) resolve();
    for (const log of this.runs.values()) {
      if (log.retireTimer) clearTimeout(log.retireTimer);
      this.wake(log);
    }
  }
}
