// The seed's route: WS /drivers/streams/logs/<driver>/<runid>. Stored lines first, then live
// ones, one text frame per line, and a normal close (1000) once the run's log has ended.
// Problems are answered as HTTP JSON before the upgrade, so clients see a status code.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';

// ws frames our messages with its own Sender (exported at run time, untyped by @types/ws).
interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } };
import { ConveyorError, asUnavailable, jsonFrame, seedFrame, type FrameFormat, type LogLine } from '../domain/index.ts';
import type { ApiDeps } from './context.ts';
import { LogHubClosedError } from '../logs/index.ts';
import { logStreamRequest, type LogStreamRequest } from './log-stream-request.ts';
import { checkLogUpgrade, chooseProtocol } from './auth/upgrade.ts';

const ROUTE = /^\/drivers\/streams\/logs\/([^/]+)\/([^/]+)\/?$/;

// Frames are built once per line object and shared by every client reading that object
// (the hub's window and its cached archive chunks). Kept on the line itself: a WeakMap keyed
// by millions of short-lived lines cost the GC more than it saved.
const frameKeys: Record<FrameFormat, symbol> = { array: Symbol('seedFrame'), json: Symbol('jsonFrame') };
const framers: Record<FrameFormat, (line: LogLine) => string> = { array: seedFrame, json: jsonFrame };

// A complete unmasked text frame, header and payload, in one Buffer, framed by ws itself.
function frame(format: FrameFormat, line: LogLine): Buffer {
  const holder = line as unknown as Record<symbol, Buffer | undefined>;
  let framed = holder[frameKeys[format]];
  if (framed === undefined) {
    const parts = Sender.frame(Buffer.from(framers[format](line)), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true });
    framed = Buffer.concat(parts);
    holder[frameKeys[format]] = framed;
  }
  return framed;
}

function refuse(socket: Duplex, status: number, error: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

// The batch's ready-made frames in one write straight to the socket. ws writes only whole
// frames itself (pongs, the close, which comes after the last batch), so none interleave.
function sendBatch(ws: WebSocket, socket: Duplex, format: FrameFormat, batch: LogLine[]): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return resolve();
    socket.write(Buffer.concat(batch.map((line) => frame(format, line))), (err) => (err ? reject(err) : resolve()));
  });
}

// A write the kernel takes at once calls back on the same tick; without a turn of the event
// loop one fast client would be served to the end before any other (and before any request).
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function stream(deps: ApiDeps, ws: WebSocket, socket: Duplex, request: LogStreamRequest): Promise<void> {
  const abort = new AbortController();
  ws.once('close', () => abort.abort());
  ws.on('error', () => abort.abort());
  try {
    const follow = deps.hub.follow(request.run.runid, { after: request.after, driver: request.driver, signal: abort.signal });
    for await (const batch of follow) {
      // Waiting for the last frame of a batch to be written is the backpressure: a slow
      // client is served from the archive later instead of piling frames up in memory.
      await sendBatch(ws, socket, request.format, batch);
      await nextTurn();
      if (abort.signal.aborted) return;
    }
    if (!abort.signal.aborted) ws.close(1000, 'run ended');
  } catch (err) {
    if (abort.signal.aborted) return;
    if (err instanceof LogHubClosedError) {
      // 1012 "service restart": the run goes on; the client resumes with ?since= later.
      ws.close(1012, 'server restarting');
      return;
    }
    deps.logger.warn({ err, runid: request.run.runid }, 'websocket log stream failed');
    ws.close(1011, 'log stream failed');
  }
}

// The upgrade target's route parts. The target is whatever the client sent (any web page
// can send one), so every way it can be malformed is an answer here, never an exception.
type Target = { runid: string; driver: string; query: Record<string, string> } | { status: number; error: string };

export function parseUpgradeTarget(raw: string | undefined): Target {
  let url: URL;
  try {
    url = new URL(raw ?? '/', 'http://localhost');
  } catch {
    return { status: 400, error: `websocket target "${String(raw).slice(0, 200)}" is not a valid URL` };
  }
  const match = ROUTE.exec(url.pathname);
  if (!match) return { status: 404, error: `no websocket route for ${url.pathname}` };
  try {
    return { driver: decodeURIComponent(match[1]!), runid: decodeURIComponent(match[2]!), query: Object.fromEntries(url.searchParams) };
  } catch {
    return { status: 400, error: `websocket target ${url.pathname} has a malformed percent-encoding` };
  }
}

export function attachLogSockets(server: Server, deps: ApiDeps): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: chooseProtocol });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node takes its own error listener off an upgraded socket, and ws adds one only in
    // handleUpgrade: a client that resets while the run is looked up would otherwise be
    // an unhandled 'error' event, which ends the process.
    socket.on('error', () => socket.destroy());
    try {
      const target = parseUpgradeTarget(req.url);
      if ('error' in target) {
        refuse(socket, target.status, target.error);
        return;
      }
      checkLogUpgrade(deps, req)
        .then(() => logStreamRequest(deps, target.runid, target.driver, target.query))
        .then((request) =>
          wss.handleUpgrade(req, socket, head, (ws) => {
            stream(deps, ws, socket, request).catch((err: unknown) => deps.logger.error({ err }, 'websocket log stream failed'));
          }),
        )
        .catch((err: unknown) => upgradeFailed(deps, socket, err));
    } catch (err) {
      // Whatever else throws here is a bug of ours; it costs this client a 500, not the
      // server its life.
      upgradeFailed(deps, socket, err);
    }
  });
  return wss;
}

function upgradeFailed(deps: ApiDeps, socket: Duplex, err: unknown): void {
  const unavailable = asUnavailable(err as Error);
  if (unavailable) refuse(socket, 503, unavailable.message, { 'Retry-After': String(unavailable.retryAfterSeconds) });
  else if (err instanceof ConveyorError) refuse(socket, err.status, err.message, (err as { headers?: Record<string, string> }).headers);
  else {
    deps.logger.error({ err }, 'websocket upgrade failed');
    refuse(socket, 500, 'internal server error');
  }
}
