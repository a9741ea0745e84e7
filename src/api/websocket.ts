// The seed's route: WS /drivers/streams/logs/<driver>/<runid>. Stored lines first, then live
// ones, one text frame per line, and a normal close (1000) once the run's log has ended.
// Problems are answered as HTTP JSON before the upgrade, so clients see a status code.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConveyorError, jsonFrame, seedFrame, type FrameFormat, type LogLine } from '../domain/index.ts';
import type { ApiDeps } from './context.ts';
import { logStreamRequest, type LogStreamRequest } from './log-stream-request.ts';

const ROUTE = /^\/drivers\/streams\/logs\/([^/]+)\/([^/]+)\/?$/;

// Frames are built once per line and shared by every client that follows the run.
const frameCache: Record<FrameFormat, WeakMap<LogLine, string>> = { array: new WeakMap(), json: new WeakMap() };
const framers: Record<FrameFormat, (line: LogLine) => string> = { array: seedFrame, json: jsonFrame };

function frame(format: FrameFormat, line: LogLine): string {
  let text = frameCache[format].get(line);
  if (text === undefined) {
    text = framers[format](line);
    frameCache[format].set(line, text);
  }
  return text;
}

function refuse(socket: Duplex, status: number, error: string): void {
  const body = JSON.stringify({ error });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function sendBatch(ws: WebSocket, format: FrameFormat, batch: LogLine[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const last = batch.length - 1;
    batch.forEach((line, i) => {
      if (i < last) ws.send(frame(format, line));
      else ws.send(frame(format, line), (err) => (err ? reject(err) : resolve()));
    });
  });
}

async function stream(deps: ApiDeps, ws: WebSocket, request: LogStreamRequest): Promise<void> {
  const abort = new AbortController();
  ws.once('close', () => abort.abort());
  ws.on('error', () => abort.abort());
  try {
    const follow = deps.hub.follow(request.run.runid, { after: request.after, driver: request.driver, signal: abort.signal });
    for await (const batch of follow) {
      // Waiting for the last frame of a batch to be written is the backpressure: a slow
      // client is served from the archive later instead of piling frames up in memory.
      await sendBatch(ws, request.format, batch);
      if (abort.signal.aborted) return;
    }
    if (!abort.signal.aborted) ws.close(1000, 'run ended');
  } catch (err) {
    if (abort.signal.aborted) return;
    deps.logger.warn({ err, runid: request.run.runid }, 'websocket log stream failed');
    ws.close(1011, 'log stream failed');
  }
}

export function attachLogSockets(server: Server, deps: ApiDeps): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = ROUTE.exec(url.pathname);
    if (!match) {
      refuse(socket, 404, `no websocket route for ${url.pathname}`);
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    logStreamRequest(deps, decodeURIComponent(match[2]!), decodeURIComponent(match[1]!), query).then(
      (request) => wss.handleUpgrade(req, socket, head, (ws) => void stream(deps, ws, request)),
      (err: Error) => {
        if (err instanceof ConveyorError) refuse(socket, err.status, err.message);
        else {
          deps.logger.error({ err }, 'websocket upgrade failed');
          refuse(socket, 500, 'internal server error');
        }
      },
    );
  });
  return wss;
}
