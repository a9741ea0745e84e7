// A websocket upgrade request written byte for byte on a socket: a target no URL-building
// client would send (`//[`, a broken percent-encoding) reaches the server as given.
import { connect } from 'node:net';
import { authHeadersFor } from './auth.ts';

export interface RawAnswer {
  status: number;
  headers: string;
  body: string;
}

export function rawUpgrade(base: string, target: string, timeoutMs = 10_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  const extra = Object.entries(authHeadersFor(base)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to the upgrade of ${JSON.stringify(target)} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () =>
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`,
      ),
    );
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, headers: head, body: split < 0 ? '' : text.slice(split + 4) });
    });
  });
}
