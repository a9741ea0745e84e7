// An outage of the server's backend (the Kubernetes API server) is a 503 with Retry-After
// and a JSON error, never a 500 with a stack (issue 14, point 3); the CLI's client waits
// and retries a 503. Real sockets throughout: the "backend" that is down is a port nobody
// listens on, reached with the same fetch (undici) that @kubernetes/client-node uses.
import { expect } from 'chai';
import Koa from 'koa';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { errorHandler } from '../../src/api/middleware/errors.ts';
import { ConveyorClient } from '../../src/cli/client.ts';

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await listen(probe);
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('outages of the backend: 503, not 500', () => {
  const logged: { level: number; msg: string; err?: unknown }[] = [];
  let server: Server;
  let base: string;

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line));
        done();
      },
    });
    const logger = pino({ level: 'debug' }, sink);
    const port = await closedPort();
    const app = new Koa();
    app.use(errorHandler(logger, 1024));
    app.use(async (ctx) => {
      if (ctx.path === '/down') {
        // What client-node does on every call while the API server is not listening.
        await fetch(`https://127.0.0.1:${port}/api/v1/namespaces/default/pods`);
      } else if (ctx.path === '/not-ready') {
        // client-node's ApiException for the API server's own 503 while it starts.
        const err = Object.assign(new Error('HTTP-Code: 503'), {
          code: 503,
          headers: { 'retry-after': '3' },
          body: JSON.stringify({ kind: 'Status', code: 503, details: { retryAfterSeconds: 3 } }),
        });
        throw err;
      } else throw new Error('a bug');
    });
    server = createServer(app.callback());
    base = await listen(server);
  });

  after(() => new Promise((resolve) => server.close(resolve)));

  it('answers 503 with Retry-After and a JSON error when the API server refuses connections', async () => {
    logged.length = 0;
    const res = await fetch(`${base}/down`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('5');
    expect(await res.json()).to.deep.equal({ error: 'the Kubernetes API server is unreachable (ECONNREFUSED); retry later' });
    // Logged as a warning, without a stack.
    expect(logged.filter((l) => l.level >= 50)).to.deep.equal([]);
    const warning = logged.find((l) => l.level === 40)!;
    expect(warning.msg).to.match(/unreachable/);
    expect(JSON.stringify(warning)).not.to.match(/\n\s+at /);
  });

  it("passes on the API server's own Retry-After while it is not ready", async () => {
    const res = await fetch(`${base}/not-ready`);
    expect(res.status).to.equal(503);
    expect(res.headers.get('retry-after')).to.equal('3');
    expect(((await res.json()) as { error: string }).error).to.match(/not ready \(HTTP 503\)/);
  });

  it('still answers 500 for a bug, and logs it as an error', async () => {
    logged.length = 0;
    const res = await fetch(`${base}/bug`);
    expect(res.status).to.equal(500);
    expect(logged.some((l) => l.level === 50)).to.equal(true);
  });
});

describe('the CLI client retries 503 with backoff', () => {
  it('waits as Retry-After says and succeeds once the server is back', async () => {
    let calls = 0;
    const server = createServer((req, res) => {
      calls++;
      if (calls <= 2) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify({ error: 'the Kubernetes API server is unreachable (ECONNREFUSED); retry later' }));
      } else res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ runid: 'x', phase: 'Running' }));
    });
    const base = await listen(server);
    try {
      const waits: number[] = [];
      const client = new ConveyorClient(base, { sleep: async (ms) => void waits.push(ms), onRetry: () => undefined });
      expect(await client.request('POST', '/runs/x/cancel')).to.deep.equal({ runid: 'x', phase: 'Running' });
      expect(calls).to.equal(3);
      expect(waits).to.deep.equal([1000, 1000]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('backs off by doubling without Retry-After, and reports the 503 after its retries', async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'down' }));
    });
    const base = await listen(server);
    try {
      const waits: number[] = [];
      const client = new ConveyorClient(base, { unavailableRetries: 4, retryDelayMs: 100, maxRetryDelayMs: 500, sleep: async (ms) => void waits.push(ms) });
      const err = await client.get('/runs').then(() => undefined, (e: unknown) => e as { status: number; message: string });
      expect(err).to.include({ status: 503, message: 'down' });
      expect(calls).to.equal(5);
      expect(waits).to.deep.equal([100, 200, 400, 500]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
