// Requests Node's HTTP parser cannot read (a malformed request line or header, an oversized
// head) never reach Koa; Node answers them with a bare 400. Answered here instead with the
// same JSON error body as every other refusal, so clients see one shape of error.
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

const REASONS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'the request head is larger than the server accepts'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'the request took too long to arrive'],
};

export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A connection the client already reset has no one to answer.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, error] = REASONS[err.code ?? ''] ?? [400, `the request is not valid HTTP (${err.code ?? 'parse error'})`];
    const body = JSON.stringify({ error });
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
