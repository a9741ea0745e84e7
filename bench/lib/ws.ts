// Websocket helpers for the log route: the seed frame `["<ts>","<message>"]` read without a
// full JSON.parse when the message needs no escaping (all the benchmarks' lines), so that
// 50 clients checking 100,000 lines each cost the bench little CPU.
import WebSocket from 'ws';

export function logUrl(wsUrl: string, runid: string, query = ''): string {
  return `${wsUrl}/drivers/streams/logs/command-runner/${runid}${query}`;
}

export interface SeedFrame {
  ts: string;
  message: string;
}

export function parseSeedFrame(text: string): SeedFrame {
  const split = text.indexOf('","');
  if (text.startsWith('["') && text.endsWith('"]') && split > 0) {
    const message = text.slice(split + 3, -2);
    if (!message.includes('\\') && !message.includes('"')) return { ts: text.slice(2, split), message };
  }
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') {
    throw new Error(`not a seed frame: ${text.slice(0, 200)}`);
  }
  return { ts: parsed[0], message: parsed[1] };
}

export function openSocket(url: string): WebSocket {
  return new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
}

// Epoch milliseconds with sub-millisecond resolution, comparable to the server's line stamps.
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export function tsToEpochMs(ts: string): number {
  return Number(BigInt(ts) / 1000n) / 1000;
}
