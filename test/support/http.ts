// Small HTTP and websocket clients for tests: plain fetch and ws, nothing that hides what
// the server really answered.
import WebSocket from 'ws';
import { authHeadersFor } from './auth.ts';

export interface JsonResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = any>(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
  const init: RequestInit = { method, headers: { ...authHeadersFor(base), ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export interface Frames {
  frames: string[];
  closeCode: number;
  closeReason: string;
}

// Collects every text frame until the server closes the socket.
export function collectFrames(url: string, timeoutMs = 20_000, onOpen?: () => void): Promise<Frames> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: authHeadersFor(url) });
    if (onOpen) ws.once('open', onOpen);
    const frames: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket ${url} did not close within ${timeoutMs} ms; got ${frames.length} frames`));
    }, timeoutMs);
    ws.on('message', (data, isBinary) => {
      if (isBinary) reject(new Error('binary frame'));
      frames.push(data.toString());
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ frames, closeCode: code, closeReason: reason.toString() });
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export const seedResource = {
  name: 'ubuntu-pipeline-6',
  resource: 'pipeline',
  spec: {
    image: 'jimjuniorb/hello-node:1.2.3',
    steps: [
      { name: 'print-working-directory', command: 'pwd' },
      { name: 'list-files', command: 'ls -l' },
    ],
  },
};

export function pipeline(name: string, steps: [string, string][], extra: Record<string, unknown> = {}) {
  return { name, resource: 'pipeline', spec: { image: 'jimjuniorb/hello-node:1.2.3', steps: steps.map(([n, command]) => ({ name: n, command })), ...extra } };
}

export async function waitForRun(base: string, runid: string, phases: string[] = ['Succeeded', 'Failed', 'Cancelled'], timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await request(base, 'GET', `/runs/${runid}`);
    if (phases.includes(body.phase)) return body;
    if (Date.now() > deadline) throw new Error(`run ${runid} is still ${body.phase}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
