// A Server-Sent Events reader that stays open while the test acts: events are collected as
// they come, and `waitFor` resolves once one matches (or fails after a timeout).
import { sseEvents, type SseEvent } from './sse.ts';

export interface LiveSse {
  status: number;
  events: SseEvent[];
  waitFor(match: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<LiveSse> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  const live: LiveSse = {
    status: res.status,
    events,
    waitFor(match, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return false;
          waiters.delete(check as () => void);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check as () => void);
          reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.event))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check as () => void);
      });
    },
    close: () => abort.abort(),
  };
  if (!res.ok || !res.body) return live;
  void (async () => {
    try {
      for await (const event of sseEvents(res.body!)) {
        events.push(event);
        [...waiters].forEach((w) => w());
      }
    } catch {
      // closed by the test
    }
  })();
  return live;
}
