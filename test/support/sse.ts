// A minimal Server-Sent Events reader over fetch, so tests see the raw stream: ids,
// event names, data and heartbeat comments.
import { authHeadersFor } from './auth.ts';
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface SseResult {
  status: number;
  events: SseEvent[];
  heartbeats: number;
}

export async function readSse(url: string, options: { headers?: Record<string, string>; stopAfter?: number; timeoutMs?: number } = {}): Promise<SseResult> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 20_000);
  const res = await fetch(url, { headers: { ...authHeadersFor(url), ...options.headers }, signal: abort.signal });
  const result: SseResult = { status: res.status, events: [], heartbeats: 0 };
  if (!res.ok || !res.body) {
    clearTimeout(timer);
    return result;
  }
  try {
    for await (const event of sseEvents(res.body, () => result.heartbeats++)) {
      result.events.push(event);
      if (options.stopAfter !== undefined && result.events.length >= options.stopAfter) {
        abort.abort();
        return result;
      }
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return result;
}

/** The events of an SSE body as they arrive; each comment line (a heartbeat) calls `onComment`. */
export async function* sseEvents(body: AsyncIterable<Uint8Array>, onComment: () => void = () => undefined): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      const event: SseEvent = { data: '' };
      let isEvent = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) onComment();
        else if (line.startsWith('id: ')) event.id = line.slice(4);
        else if (line.startsWith('event: ')) event.event = line.slice(7);
        else if (line.startsWith('data: ')) {
          event.data += line.slice(6);
          isEvent = true;
        }
      }
      if (isEvent) yield event;
    }
  }
}
