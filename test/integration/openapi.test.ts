// The OpenAPI document lists exactly the routes the app serves: the router's own table is
// compared with the document the server publishes.
import { expect } from 'chai';
import { pino } from 'pino';
import { buildRouter } from '../../src/api/app.ts';
import { LogArchive, LogHub } from '../../src/logs/index.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { EmbeddedStore, openDatabase } from '../../src/store/embedded/index.ts';
import { request } from '../support/http.ts';
import { inMode, newDataDir, suiteServer } from '../support/server.ts';
import { rmSync } from 'node:fs';

function servedRoutes(): string[] {
  const dir = newDataDir();
  const db = openDatabase(dir);
  const store = new EmbeddedStore(db);
  const archive = new LogArchive(db);
  const hub = new LogHub(archive, async () => true);
  const router = buildRouter({
    store,
    hub,
    archive,
    runs: { cancel: () => Promise.reject(new Error('not used')) },
    metrics: new Metrics({ runsByPhase: () => store.countRunsByPhase(), logFollowers: () => 0 }),
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 1024,
    heartbeatMs: 1000,
    driverFor: () => null,
  });
  const routes = new Set<string>();
  for (const layer of router.stack) {
    const path = String(layer.path).replace(/:(\w+)/g, '{$1}');
    for (const method of layer.methods) if (method !== 'HEAD') routes.add(`${method} ${path}`);
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return [...routes].sort();
}

describe(inMode('OpenAPI document'), () => {
  const suite = suiteServer();

  it('lists every route the app serves, the websocket route, and nothing else', async () => {
    const res = await request(suite.server.url, 'GET', '/openapi.json');
    expect(res.status).to.equal(200);
    expect(res.body.openapi).to.match(/^3\./);
    const documented: string[] = [];
    for (const [path, item] of Object.entries(res.body.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(item)) documented.push(`${method.toUpperCase()} ${path}`);
    }
    const served = [...servedRoutes(), 'GET /drivers/streams/logs/{driver}/{runid}'].sort();
    expect(served.length).to.be.above(25);
    expect(documented.sort()).to.deep.equal(served);
  });
});
