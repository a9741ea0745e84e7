// The page's only way to the server: the public API, same origin, JSON bodies sent as
// application/json. Where the API needs a token, the one the user gave is kept for this tab
// only (sessionStorage), sent as `Authorization: Bearer` and, for websockets (which cannot
// carry headers), as the subprotocol Kubernetes uses; never in a URL. A 401 asks again.
import type { Run, LogEntry, Resource } from './types.ts';

const TOKEN_KEY = 'conveyor.token';
const authListeners = new Set<(needed: boolean) => void>();

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  authListeners.forEach((l) => l(false));
}

/** Called with true when the server asked for a token (a 401), false once one is set. */
export function onAuthNeeded(listener: (needed: boolean) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

export function authHeaders(): Record<string, string> {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

function unauthorized(): void {
  authListeners.forEach((l) => l(true));
}

export async function send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...authHeaders() };
  const init: RequestInit = { method, headers, signal, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) unauthorized();
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const parsed = (await res.json()) as { error?: string };
      if (parsed.error) message = parsed.error;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, message);
  }
  return res;
}

export async function json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await send(method, path, body, signal);
  return res.status === 204 ? (undefined as T) : ((await res.json()) as T);
}

export interface RunPage {
  items: Run[];
  continue?: string;
}

export function listRuns(filter: { name?: string; phase?: string; limit?: number; continue?: string }, signal?: AbortSignal): Promise<RunPage> {
  const q = new URLSearchParams({ resource: 'pipeline', limit: String(filter.limit ?? 25) });
  if (filter.name) q.set('name', filter.name);
  if (filter.phase) q.set('phase', filter.phase);
  if (filter.continue) q.set('continue', filter.continue);
  return json('GET', `/runs?${q}`, undefined, signal);
}

export const getRun = (runid: string, signal?: AbortSignal) => json<Run>('GET', `/runs/${encodeURIComponent(runid)}`, undefined, signal);
export const cancelRun = (runid: string) => json<{ phase: string }>('POST', `/runs/${encodeURIComponent(runid)}/cancel`);
export const listPipelines = (signal?: AbortSignal) => json<Resource[]>('GET', '/resources/pipeline', undefined, signal);
export const getPipeline = (name: string, version?: number, signal?: AbortSignal) =>
  json<Resource>('GET', `/resources/pipeline/${encodeURIComponent(name)}${version ? `/${version}` : ''}`, undefined, signal);

export interface WriteResult {
  name: string;
  runid: string;
  version: string;
}
export const createResource = (resource: unknown) => json<WriteResult>('POST', '/resources/', resource);
export const replacePipeline = (name: string, body: unknown) => json<WriteResult>('PUT', `/resources/pipeline/${encodeURIComponent(name)}`, body);

export interface LogPage {
  lines: LogEntry[];
  lastSeq: number;
}

/** One page of a run's log: lines after `since` (the ranged read). */
export async function logPage(runid: string, since: number, limit: number, extra: { q?: string; step?: string } = {}, signal?: AbortSignal): Promise<LogPage> {
  const q = new URLSearchParams({ runid, since: String(since), limit: String(limit) });
  if (extra.q) q.set('q', extra.q);
  if (extra.step) q.set('step', extra.step);
  const res = await send('GET', `/logs?${q}`, undefined, signal);
  return { lines: (await res.json()) as LogEntry[], lastSeq: Number(res.headers.get('Conveyor-Last-Seq') ?? 0) };
}

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A websocket to the API; with a token, it travels as a subprotocol, as kube-apiserver takes it. */
export function openSocket(path: string): WebSocket {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
  const t = token();
  return t ? new WebSocket(url, ['conveyor.logs.v1', `base64url.bearer.authorization.k8s.io.${base64url(t)}`]) : new WebSocket(url);
}

/**
 * A Server-Sent Events stream read with fetch (EventSource cannot send a header), calling
 * `onEvent` per event until `signal` aborts or the server ends it.
 */
export async function readEvents(path: string, onEvent: (event: string, data: string) => void, signal: AbortSignal): Promise<void> {
  const res = await send('GET', path, undefined, signal);
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      let event = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(event, data);
    }
  }
}
