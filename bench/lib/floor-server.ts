// The floor of the API benchmark: a bare node:http server doing the SQLite work the real
// server does for the same four requests, and nothing else (no framework, no middleware, no
// validation beyond what SQLite needs, no runs executed). Whatever the real server spends
// above this is its own overhead. Run as a child process, like the server, on a copy of the
// same seeded database: `node bench/lib/floor-server.ts DATA_DIR`; prints `{"url": ...}`.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (req.method === 'POST' && (url === '/resources/' || url === '/resources')) {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => create(res, Buffer.concat(chunks).toString('utf8')));
    return;
  }
  if (req.method !== 'GET') return send(res, 405, { error: 'method' });
  const parts = url.split('?')[0]!.split('/');
  if (parts[1] === 'runs' && parts.length === 3) {
    const row = sql('SELECT * FROM runs WHERE runid = ?').get(decodeURIComponent(parts[2]!)) as Row | undefined;
    return row ? send(res, 200, run(row)) : send(res, 404, { error: 'not found' });
  }
  if (parts[1] === 'runs' && parts.length === 2) {
    const limit = Number(new URLSearchParams(url.split('?')[1] ?? '').get('limit') ?? 50);
    const rows = sql('SELECT * FROM runs ORDER BY ord DESC LIMIT ?').all(limit + 1) as Row[];
    const page: { items: unknown[]; continue?: string } = { items: rows.slice(0, limit).map(run) };
    if (rows.length > limit) page.continue = String(rows[limit - 1]!.ord);
    return send(res, 200, page);
  }
  if (parts[1] === 'resources' && parts.length === 4) {
    const row = sql('SELECT * FROM resources WHERE type = ? AND name = ?').get(decodeURIComponent(parts[2]!), decodeURIComponent(parts[3]!)) as Row | undefined;
    if (!row) return send(res, 404, { error: 'not found' });
    return send(res, 200, {
      name: row.name, resource: row.type, spec: JSON.parse(String(row.spec)),
      metadata: { version: row.version, createdAt: row.created_at, updatedAt: row.updated_at },
    });
  }
  if (url === '/ping') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return void res.end('pong');
  }
  send(res, 404, { error: 'no route' });
}

const server = createServer(handle);
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
