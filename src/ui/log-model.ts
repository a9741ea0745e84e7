// A run's log as the page holds it: never whole. Lines live in pages of PAGE_SIZE lines
// (seq 1..1000 is page 0), fetched with the ranged read when a row needs them and dropped
// least-recently-used beyond MAX_PAGES; new lines arrive over the websocket (format=json,
// resuming with ?since= after a break, so none is lost or repeated) into the same pages.
import { logPage, openSocket } from './api.ts';
import type { LogEntry } from './types.ts';

export const PAGE_SIZE = 1000;
const MAX_PAGES = 24;
const RECONNECT_MS = 1000;

interface LiveFrame {
  seq: number;
  ts: string;
  step: string | null;
  stream: LogEntry['stream'];
  message: string;
}

export class LogModel {
  readonly runid: string;
  readonly driver: string;
  /** The highest seq known: the log's length so far. */
  total = 0;
  /** The websocket said the run's log has ended. */
  ended = false;
  error: string | null = null;
  /** The first line of each step, as far as seen or asked for. */
  readonly stepStarts = new Map<string, number>();
  private readonly pages = new Map<number, (LogEntry | undefined)[]>();
  private readonly loading = new Set<number>();
  private readonly listeners = new Set<() => void>();
  private socket: WebSocket | null = null;
  private closed = false;
  private notifyQueued = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(runid: string, driver: string) {
    this.runid = runid;
    this.driver = driver;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // One render per frame however many lines came in it.
  private notify(): void {
    if (this.notifyQueued || this.closed) return;
    this.notifyQueued = true;
    requestAnimationFrame(() => {
      this.notifyQueued = false;
      this.listeners.forEach((l) => l());
    });
  }

  /** Reads the first page (and so the log's length), then follows new lines live. */
  async open(): Promise<void> {
    await this.loadPage(0);
    this.connect();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.close(1000);
    this.socket = null;
    this.pages.clear();
  }

  private store(line: LogEntry): void {
    const index = Math.floor((line.seq - 1) / PAGE_SIZE);
    let page = this.pages.get(index);
    if (!page) {
      // A live line for a page not held: keep it only when it is the page the reader sees
      // last (the tail); other pages are fetched whole when needed.
      if (index !== Math.floor((this.total - 1) / PAGE_SIZE) && (line.seq - 1) % PAGE_SIZE !== 0) return;
      page = [];
      this.pages.set(index, page);
      this.evict(index);
    }
    page[(line.seq - 1) % PAGE_SIZE] = line;
    if (line.step && line.stream === 'system' && line.message.startsWith('Executing step: ') && !this.stepStarts.has(line.step)) this.stepStarts.set(line.step, line.seq);
  }

  private evict(keep: number): void {
    // Map order is insertion order; a page read again is re-inserted (see get).
    while (this.pages.size > MAX_PAGES) {
      const oldest = [...this.pages.keys()].find((k) => k !== keep);
      if (oldest === undefined) return;
      this.pages.delete(oldest);
    }
  }

  /** The line with this seq, or undefined while its page is on its way (which this starts). */
  get(seq: number): LogEntry | undefined {
    const index = Math.floor((seq - 1) / PAGE_SIZE);
    const page = this.pages.get(index);
    const line = page?.[(seq - 1) % PAGE_SIZE];
    if (page && this.pages.size > 1) {
      this.pages.delete(index);
      this.pages.set(index, page);
    }
    if (!line) void this.loadPage(index);
    return line;
  }

  private async loadPage(index: number): Promise<void> {
    if (this.loading.has(index) || this.closed) return;
    this.loading.add(index);
    try {
      const { lines, lastSeq } = await logPage(this.runid, index * PAGE_SIZE, PAGE_SIZE);
      if (this.closed) return;
      if (!this.pages.has(index)) {
        this.pages.set(index, []);
        this.evict(index);
      }
      for (const line of lines) this.store(line);
      this.total = Math.max(this.total, lastSeq);
      this.error = null;
    } catch (err) {
      this.error = (err as Error).message;
    } finally {
      this.loading.delete(index);
      this.notify();
    }
  }

  private connect(): void {
    if (this.closed || this.ended) return;
    const since = this.total;
    const socket = openSocket(`/drivers/streams/logs/${encodeURIComponent(this.driver)}/${encodeURIComponent(this.runid)}?format=json&since=${since}`);
    this.socket = socket;
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data as string) as LiveFrame;
      this.store({ runid: this.runid, driver: this.driver, pipeline: null, timestamp: frame.ts, message: frame.message, seq: frame.seq, step: frame.step, stream: frame.stream });
      this.total = Math.max(this.total, frame.seq);
      this.notify();
    };
    socket.onclose = (event) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      if (event.code === 1000) {
        this.ended = true;
        this.notify();
        return;
      }
      // A broken stream resumes after the last line it had: no gap, no repeat.
      this.retry = setTimeout(() => this.connect(), RECONNECT_MS);
    };
  }

  /** The first line of a step, asking the server when it has not been seen. */
  async findStepStart(step: string, after = 0): Promise<number | undefined> {
    const known = this.stepStarts.get(step);
    if (known !== undefined && known > after) return known;
    const { lines } = await logPage(this.runid, after, 1, { step });
    const seq = lines[0]?.seq;
    if (seq !== undefined && !this.stepStarts.has(step)) this.stepStarts.set(step, seq);
    return seq;
  }

  /** The next line after `after` whose text contains `text`, else undefined. */
  async findNext(text: string, after: number): Promise<number | undefined> {
    const { lines } = await logPage(this.runid, after, 1, { q: text });
    return lines[0]?.seq;
  }

  /** Every line, page by page, for the download: held as text parts, not as line objects. */
  async download(onProgress: (done: number) => void): Promise<Blob> {
    const parts: string[] = [];
    let after = 0;
    for (;;) {
      const { lines, lastSeq } = await logPage(this.runid, after, 5000);
      if (lines.length === 0) break;
      parts.push(lines.map((l) => `${l.message}\n`).join(''));
      after = lines[lines.length - 1]!.seq;
      onProgress(after);
      if (after >= lastSeq) break;
    }
    return new Blob(parts, { type: 'text/plain;charset=utf-8' });
  }
}
