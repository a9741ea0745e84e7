// A small client for the Conveyor API: JSON over global fetch, and the log websocket with
// resume-on-break. Server errors surface as ApiError carrying the server's own `error`
// text; an unreachable server as ConnectionError naming the URL and how to start one.
import type { Command, CommanderError } from 'commander';
import WebSocket from 'ws';
import { colorEnabled, createStyle, type Style } from './output.ts';
import { kubeconfigToken, staticToken, type TokenSource } from './credentials.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

export class ConnectionError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = 'ConnectionError';
    this.code = code;
  }
}

// One line of `?format=json` on the log websocket.
export interface LogFrame {
  seq: number;
  ts: string;
  step: string | null;
  stream: string;
  message: string;
}

export interface FollowOptions {
  // Resume after this seq (0 or absent: from the first line).
  since?: number;
  onLine(line: LogFrame): void;
  // Consecutive failed attempts tolerated before giving up (default 5); any attempt that
  // delivers a new line resets the count.
  retries?: number;
  // First reconnect delay, doubled per consecutive failure up to maxBackoffMs.
  backoffMs?: number;
  maxBackoffMs?: number;
  // After the server said it is restarting (close 1012), how long to keep trying to reach
  // its successor before counting failures again (default 60 s).
  restartPatienceMs?: number;
  onReconnect?(info: { attempt: number; delayMs: number; since: number; reason: string }): void;
}

export interface FollowResult {
  lastSeq: number;
  reconnects: number;
}

export interface SubmitResult {
  action: 'created' | 'replaced';
  resource: string;
  name: string;
  runid: string;
  version: string;
}

type Outcome =
  | { kind: 'closed'; code: number; reason: string; error?: Error }
  | { kind: 'refused'; status: number; error: string; body: unknown };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  // Happy-eyeballs connects fail as an AggregateError of one error per address.
  if (Array.isArray(e.errors)) for (const inner of e.errors) if (errorCode(inner)) return errorCode(inner);
  return e.cause !== undefined && e.cause !== err ? errorCode(e.cause) : undefined;
}

export function connectionError(server: string, err: unknown): ConnectionError {
  const code = errorCode(err);
  if (code === 'ECONNREFUSED') {
    return new ConnectionError(
      `cannot connect to the Conveyor server at ${server} (connection refused). Is it running? ` +
        'Start one with `npm start` (or `conveyor serve`), or point --server or CONVEYOR_SERVER at a running server.',
      code,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ConnectionError(`cannot resolve the host of the Conveyor server ${server} (${code}); check --server or CONVEYOR_SERVER`, code);
  }
  const detail = code ?? (err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err));
  return new ConnectionError(`cannot reach the Conveyor server at ${server} (${detail})`, code);
}

// The server answers `{"error": "..."}`; anything else (a proxy's HTML page, say) is
// summarised by its status and the start of its text.
export function errorMessage(status: number, statusText: string, body: unknown): string {
  if (typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string') {
    return (body as { error: string }).error;
  }
  const text = typeof body === 'string' ? body.trim().slice(0, 200) : '';
  return `the server answered ${status}${statusText ? ` ${statusText}` : ''}${text ? `: ${text}` : ''}`;
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isLogFrame(value: unknown): value is LogFrame {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return Number.isSafeInteger(v.seq) && typeof v.message === 'string';
}

export function normalizeServer(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--server "${raw}" is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`--server "${raw}" must be an http:// or https:// URL`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '');
  url.search = '';
  url.hash = '';
  return url;
}

export interface ClientOptions {
  // How many times a 503 (the server's backend, e.g. the Kubernetes API server, is down
  // for a moment) is retried before it is reported (default 6).
  unavailableRetries?: number;
  // First retry delay when the server gives no Retry-After, doubled per retry; every delay
  // is capped at maxRetryDelayMs (defaults 1 s and 10 s).
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  // Told before each retry (the CLI says it on stderr).
  onRetry?(info: { attempt: number; delayMs: number; status: number; error: string }): void;
  sleep?(ms: number): Promise<void>;
}

// The wait a 503 asks for: its Retry-After in seconds, else the doubling backoff.
export function retryDelay(retryAfter: string | null, attempt: number, options: ClientOptions): number {
  const cap = options.maxRetryDelayMs ?? 10_000;
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(cap, seconds * 1000);
  return Math.min(cap, (options.retryDelayMs ?? 1000) * 2 ** (attempt - 1));
}

export class ConveyorClient {
  // The base URL without a trailing slash; paths are appended to it.
  readonly server: string;
  readonly #token: TokenSource;
  readonly options: ClientOptions;

  constructor(server: string, options: ClientOptions = {}, token: TokenSource = staticToken(undefined)) {
    this.server = normalizeServer(server).href.replace(/\/$/, '');
    this.#token = token;
    this.options = options;
  }

  async #authHeaders(): Promise<Record<string, string>> {
    const token = await this.#token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  url(path: string): string {
    return this.server + path;
  }

  streamUrl(driver: string, runid: string, since: number): string {
    const base = this.server.replace(/^http/, 'ws');
    const query = since > 0 ? `?format=json&since=${since}` : '?format=json';
    return `${base}/drivers/streams/logs/${encodeURIComponent(driver)}/${encodeURIComponent(runid)}${query}`;
  }

  // Any status: for callers that treat some 4xx as an answer (409 on create).
  async send(method: string, path: string, body?: unknown): Promise<{ status: number; statusText: string; body: unknown }> {
    const init: RequestInit = { method, headers: { accept: 'application/json', ...(await this.#authHeaders()) } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { ...init.headers, 'content-type': 'application/json' };
    }
    const retries = this.options.unavailableRetries ?? 6;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.url(path), init);
      } catch (err) {
        throw connectionError(this.server, err);
      }
      const text = await res.text();
      const answer = { status: res.status, statusText: res.statusText, body: parseBody(text) };
      // 503 says the request was not done and may be tried again: the server's own backend
      // is passing through an outage. Every request here is safe to repeat (a create that
      // did happen answers 409 the second time, and submitResource then replaces).
      if (res.status !== 503 || attempt > retries) return answer;
      const delayMs = retryDelay(res.headers.get('retry-after'), attempt, this.options);
      this.options.onRetry?.({ attempt, delayMs, status: res.status, error: errorMessage(res.status, res.statusText, answer.body) });
      await (this.options.sleep ?? sleep)(delayMs);
    }
  }

  // 2xx → the parsed body; anything else → ApiError with the server's message.
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    if (res.status < 200 || res.status >= 300) throw new ApiError(res.status, errorMessage(res.status, res.statusText, res.body), res.body);
    return res.body as T;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  // Creates the resource, or, when it already exists (409), replaces it: a new version
  // and a new run either way.
  async submitResource(doc: Record<string, unknown>): Promise<SubmitResult> {
    const created = await this.send('POST', '/resources/', doc);
    const answer = created.body as { runid?: string; version?: string; name?: string } | undefined;
    if (created.status >= 200 && created.status < 300) {
      return { action: 'created', resource: String(doc.resource), name: String(answer?.name ?? doc.name), runid: String(answer?.runid), version: String(answer?.version) };
    }
    if (created.status !== 409 || typeof doc.resource !== 'string' || typeof doc.name !== 'string') {
      throw new ApiError(created.status, errorMessage(created.status, created.statusText, created.body), created.body);
    }
    const replacement: Record<string, unknown> = { spec: doc.spec };
    if (doc.pipeline !== undefined) replacement.pipeline = doc.pipeline;
    const replaced = await this.request<{ runid: string; version: string; name?: string }>(
      'PUT',
      `/resources/${encodeURIComponent(doc.resource)}/${encodeURIComponent(doc.name)}`,
      replacement,
    );
    return { action: 'replaced', resource: doc.resource, name: doc.name, runid: replaced.runid, version: String(replaced.version) };
  }

  // Streams a run's log lines (`?format=json`) until the server closes normally (1000),
  // which it does once the run has ended and its last line is sent. A connection that
  // breaks before that is resumed with `?since=<last seq>`: no gap, no line twice.
  async followLogs(driver: string, runid: string, options: FollowOptions): Promise<FollowResult> {
    const retries = options.retries ?? 5;
    const backoffMs = options.backoffMs ?? 250;
    const maxBackoffMs = options.maxBackoffMs ?? 5000;
    let lastSeq = options.since ?? 0;
    const restartPatienceMs = options.restartPatienceMs ?? 60_000;
    let failures = 0;
    let reconnects = 0;
    // Until then the server is restarting: refused connections are expected, not failures.
    let restartingUntil = 0;
    for (;;) {
      let progressed = false;
      const outcome = await this.#streamOnce(this.streamUrl(driver, runid, lastSeq), await this.#authHeaders(), (line) => {
        if (line.seq <= lastSeq) return; // never twice, even if a server repeats itself
        lastSeq = line.seq;
        progressed = true;
        options.onLine(line);
      });
      if (outcome.kind === 'closed' && outcome.code === 1000) return { lastSeq, reconnects };
      if (outcome.kind === 'refused' && outcome.status < 500) throw new ApiError(outcome.status, outcome.error, outcome.body);
      const reason =
        outcome.kind === 'refused'
          ? `the server answered ${outcome.status}: ${outcome.error}`
          : outcome.error
            ? (errorCode(outcome.error) ?? outcome.error.message)
            : `closed with code ${outcome.code}${outcome.reason ? ` (${outcome.reason})` : ''}`;
      if (outcome.kind === 'closed' && outcome.code === 1012) restartingUntil = Date.now() + restartPatienceMs;
      const restarting = Date.now() < restartingUntil;
      failures = progressed || restarting ? 1 : failures + 1;
      if (failures > retries) {
        if (outcome.kind === 'closed' && outcome.error && errorCode(outcome.error)) throw connectionError(this.server, outcome.error);
        throw new Error(`the log stream of run ${runid} broke (${reason}) and did not come back after ${retries} attempts`);
      }
      const delayMs = Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1));
      reconnects++;
      options.onReconnect?.({ attempt: failures, delayMs, since: lastSeq, reason });
      await sleep(delayMs);
    }
  }

  #streamOnce(url: string, headers: Record<string, string>, onLine: (line: LogFrame) => void): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000, headers });
      let settled = false;
      let lastError: Error | undefined;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        fn();
      };
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          const body = parseBody(text);
          const status = res.statusCode ?? 0;
          settle(() => resolve({ kind: 'refused', status, error: errorMessage(status, res.statusMessage ?? '', body), body }));
          ws.terminate();
        });
        res.on('error', () => ws.terminate());
      });
      ws.on('message', (data, isBinary) => {
        if (settled) return;
        try {
          const parsed: unknown = JSON.parse(data.toString());
          if (isBinary || !isLogFrame(parsed)) throw new Error(`unexpected log frame from ${url}: ${data.toString().slice(0, 200)}`);
          onLine(parsed);
        } catch (err) {
          settle(() => reject(err));
          ws.terminate();
        }
      });
      ws.on('error', (err) => {
        lastError = err;
      });
      ws.on('close', (code, reason) => settle(() => resolve({ kind: 'closed', code, reason: reason.toString(), error: lastError })));
    });
  }
}

// ---------------------------------------------------------------------------------------
// Glue shared by the client commands.

export function clientFor(command: Command): ConveyorClient {
  // The environment's token is read here, not as the option's default: help would print it.
  const { server, kube, token = process.env.CONVEYOR_TOKEN } = command.optsWithGlobals<{ server: string; token?: string; kube?: boolean }>();
  if (kube && command.optsWithGlobals<{ token?: string }>().token) return command.error('error: --kube and --token cannot be used together', { exitCode: 2, code: 'conveyor.badAuth' });
  try {
    return new ConveyorClient(
      server,
      { onRetry: ({ attempt, delayMs, error }) => process.stderr.write(`conveyor: ${error}; retrying in ${Math.round(delayMs / 100) / 10}s (attempt ${attempt})\n`) },
      kube ? kubeconfigToken() : staticToken(token),
    );
  } catch (err) {
    // A bad --server is a usage error: exit 2 like commander's own.
    return command.error(`error: ${(err as Error).message}`, { exitCode: 2, code: 'conveyor.badServer' });
  }
}

const USAGE_ERRORS = new Set([
  'commander.missingArgument',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.conflictingOption',
  'commander.unknownOption',
  'commander.excessArguments',
  'commander.invalidArgument',
  'commander.unknownCommand',
]);

// Commander exits 1 on every error; usage mistakes exit 2 here, so scripts can tell "you
// called it wrong" from "the server said no" (1).
export function exitOnUsageError(err: CommanderError): never {
  process.exit(USAGE_ERRORS.has(err.code) ? 2 : err.exitCode);
}

export interface Terminal {
  style: Style;
  // A line of output on stdout.
  print(text: string): void;
  // A remark for the person at the terminal, on stderr (kept out of piped output).
  note(text: string): void;
}

let pipeGuarded = false;

export function terminal(): Terminal {
  if (!pipeGuarded) {
    pipeGuarded = true;
    // `conveyor logs ID | head` closes the pipe early: that is the reader's choice, not an error.
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  return {
    style: createStyle(colorEnabled(process.stdout.isTTY, process.env)),
    print: (text) => {
      process.stdout.write(`${text}\n`);
    },
    note: (text) => {
      process.stderr.write(`${text}\n`);
    },
  };
}
