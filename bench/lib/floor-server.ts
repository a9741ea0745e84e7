// The floor of the API benchmark: a bare node:http server doing the SQLite work the real
// server does for the same four requests, and nothing else (no framework, no middleware, no
// validation beyond what SQLite needs, no runs executed). Whatever the real server spends
// above this is its own overhead. Run as a child process, like the server, on a copy of the
// same seeded database: `node bench/lib/floor-server.ts DATA_DIR [FRAMEWORK]`; prints
// `{"url": ...}`.
//
// FRAMEWORK (the framework ladder, bench/ladder.ts) serves the same GET answers through
// more of the real server's stack, to show what each layer costs on its own:
//   node        (default) node:http and a hand-written dispatch: the floor itself
//   koa         a bare Koa app whose one middleware is that same dispatch
//   koa-router  Koa and @koa/router, one route per GET path, no other middleware
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { serverRoot } from './server.ts';

type Row = Record<string, string | number | null>;

const { openDatabase } = (await import(join(serverRoot, 'src/store/embedded/database.ts'))) as {
  openDatabase: (dir: string) => DatabaseSync;
};
const db = openDatabase(process.argv[2]!);
const statements = new Map<string, StatementSync>();
const sql = (text: string) => {
  let s = statements.get(text);
  if (!s) statements.set(text, (s = db.prepare(text)));
  return s;
};

function run(row: Row) {
  return {
    runid: row.runid, resource: row.resource, name: row.name, version: row.version, driver: row.driver, phase: row.phase,
    reason: row.reason, message: row.message, createdAt: row.created_at, startedAt: row.started_at, finishedAt: row.finished_at,
    steps: JSON.parse(String(row.steps)),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function create(res: ServerResponse, text: string): void {
  const input = JSON.parse(text) as { name: string; resource: string; spec: { steps?: { name: string }[] } };
  if (!sql('SELECT * FROM definitions WHERE name = ?').get(input.resource)) return send(res, 404, { error: 'no such type' });
  const stamp = new Date().toISOString();
  const runid = randomUUID();
  const spec = JSON.stringify(input.spec);
  const driver = input.resource === 'pipeline' ? 'command-runner' : 'none';
  const steps = JSON.stringify((input.spec.steps ?? []).map((s) => ({ name: s.name, phase: 'Pending', exitCode: null, startedAt: null, finishedAt: null })));
  db.exec('BEGIN IMMEDIATE');
  try {
    if (sql('SELECT 1 FROM resources WHERE type = ? AND name = ?').get(input.resource, input.name)) throw new Error('exists');
    sql('INSERT INTO resources VALUES (?, ?, 1, ?, ?, ?, ?)').run(input.resource, input.name, null, spec, stamp, stamp);
    sql('INSERT INTO resource_versions VALUES (?, ?, 1, ?, ?, ?)').run(input.resource, input.name, null, spec, stamp);
    sql(
      `INSERT INTO runs (runid, resource, name, version, driver, phase, reason, message, created_at, started_at, finished_at, steps, spec, pipeline)
       VALUES (?, ?, ?, 1, ?, 'Pending', 'Waiting', 'waiting for a free slot', ?, NULL, NULL, ?, ?, NULL)`,
    ).run(runid, input.resource, input.name, driver, stamp, steps, spec);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    return send(res, 409, { error: String(err) });
  }
  // The real server's scheduler looks for the next runs of its driver after each new run.
  sql("SELECT * FROM runs WHERE phase = 'Pending' AND driver = ? ORDER BY ord LIMIT ?").all('command-runner', 2);
  send(res, 201, { message: 'Resource created successfully', name: input.name, runid, version: '1' });
}

type Answer = [status: number, body: unknown];

function getRun(runid: string): Answer {
  const row = sql('SELECT * FROM runs WHERE runid = ?').get(runid) as Row | undefined;
  return row ? [200, run(row)] : [404, { error: 'not found' }];
}

function listRuns(query: string): Answer {
  const limit = Number(new URLSearchParams(query).get('limit') ?? 50);
  const rows = sql('SELECT * FROM runs ORDER BY ord DESC LIMIT ?').all(limit + 1) as Row[];
  const page: { items: unknown[]; continue?: string } = { items: rows.slice(0, limit).map(run) };
  if (rows.length > limit) page.continue = String(rows[limit - 1]!.ord);
  return [200, page];
}

function getResource(type: string, name: string): Answer {
  const row = sql('SELECT * FROM resources WHERE type = ? AND name = ?').get(type, name) as Row | undefined;
  if (!row) return [404, { error: 'not found' }];
  return [
    200,
    { name: row.name, resource: row.type, spec: JSON.parse(String(row.spec)), metadata: { version: row.version, createdAt: row.created_at, updatedAt: row.updated_at } },
  ];
}

// The GET routes, matched by hand.
function dispatchGet(url: string): Answer {
  const parts = url.split('?')[0]!.split('/');
  if (parts[1] === 'runs' && parts.length === 3) return getRun(decodeURIComponent(parts[2]!));
  if (parts[1] === 'runs' && parts.length === 2) return listRuns(url.split('?')[1] ?? '');
  if (parts[1] === 'resources' && parts.length === 4) return getResource(decodeURIComponent(parts[2]!), decodeURIComponent(parts[3]!));
  return [404, { error: 'no route' }];
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (req.method === 'POST' && (url === '/resources/' || url === '/resources')) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => create(res, Buffer.concat(chunks).toString('utf8')));
    return;
  }
  if (url === '/ping') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return void res.end('pong');
  }
  if (req.method !== 'GET') return send(res, 405, { error: 'method' });
  const [status, body] = dispatchGet(url);
  send(res, status, body);
}

function koaApp(): RequestListener {
  const app = new Koa();
  app.use((ctx) => {
    [ctx.status, ctx.body] = dispatchGet(ctx.url);
  });
  return app.callback();
}

function koaRouterApp(): RequestListener {
  const app = new Koa();
  const router = new Router();
  router.get('/runs/:runid', (ctx) => {
    [ctx.status, ctx.body] = getRun(ctx.params.runid!);
  });
  router.get('/runs', (ctx) => {
    [ctx.status, ctx.body] = listRuns(ctx.querystring);
  });
  router.get('/resources/:type/:name', (ctx) => {
    [ctx.status, ctx.body] = getResource(ctx.params.type!, ctx.params.name!);
  });
  app.use(router.routes());
  return app.callback();
}

const framework = process.argv[3] ?? 'node';
const listeners: Record<string, () => RequestListener> = { node: () => handle, koa: koaApp, 'koa-router': koaRouterApp };
if (!listeners[framework]) throw new Error(`unknown framework "${framework}": choose from ${Object.keys(listeners).join(', ')}`);

const server = createServer(listeners[framework]!());
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  db.close();
  process.exit(0);
});
