// What the web page needs from the server, through the public API: the page itself at /ui/
// (deep links, `/` for browsers), the run-change stream (GET /runs?watch=true), the phase
// filter of the run list, and the ranged log read (GET /logs?runid=&since=&limit=).
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { openSse } from '../support/sse-live.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';

describe('web page support (local mode)', () => {
  let server: TestServer;
  before(async function () {
    this.timeout(60_000);
    execFileSync(process.execPath, ['scripts/build-ui.ts', '--if-stale'], { cwd: repoRoot, stdio: 'inherit' });
    server = await startServer();
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  describe('the page at /ui/', () => {
    it('serves the built page with a strict Content-Security-Policy, and its assets with their types', async () => {
      const res = await fetch(`${server.url}/ui/`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/html/);
      expect(res.headers.get('content-security-policy')).to.include("default-src 'self'").and.include("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      const html = await res.text();
      const script = /src="(\/ui\/assets\/app-[^"]+\.js)"/.exec(html)?.[1];
      const style = /href="(\/ui\/assets\/app-[^"]+\.css)"/.exec(html)?.[1];
      expect(script, 'the page names its script').to.be.a('string');
      expect(html, 'nothing from another origin').not.to.match(/(src|href)="(https?:)?\/\//);
      const js = await fetch(server.url + script!);
      expect(js.status).to.equal(200);
      expect(js.headers.get('content-type')).to.match(/^text\/javascript/);
      expect(js.headers.get('cache-control')).to.include('immutable');
      const css = await fetch(server.url + style!);
      expect(css.headers.get('content-type')).to.match(/^text\/css/);
    });

    it('answers every deep link with the page, and a missing asset with 404 JSON', async () => {
      for (const path of ['/ui/runs/6f1c1a8e-3f1e-4a43-9d8c-1b2f1f0a8b11', '/ui/pipelines/ubuntu-pipeline-6', '/ui/pipelines', '/ui/anything/else']) {
        const res = await fetch(server.url + path);
        expect(res.status, path).to.equal(200);
        expect(await res.text(), path).to.include('<div id="app">');
      }
      const missing = await request(server.url, 'GET', '/ui/assets/app-NOPE.js');
      expect(missing.status).to.equal(404);
      expect(missing.body.error).to.include('/ui/assets/app-NOPE.js');
      const post = await request(server.url, 'POST', '/ui/runs', {});
      expect(post.status).to.equal(405);
    });

    it('sends a browser at / to /ui/, and leaves / a JSON 404 for API clients', async () => {
      const browser = await fetch(`${server.url}/`, { headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }, redirect: 'manual' });
      expect(browser.status).to.equal(302);
      expect(browser.headers.get('location')).to.equal('/ui/');
      const bare = await fetch(`${server.url}/ui`, { redirect: 'manual' });
      expect(bare.status).to.equal(302);
      expect(bare.headers.get('location')).to.equal('/ui/');
      const api = await request(server.url, 'GET', '/', undefined, { Accept: '*/*' });
      expect(api.status).to.equal(404);
      expect(api.body.error).to.be.a('string');
    });
  });

  describe('GET /runs?watch=true', () => {
    it('streams each change of a run, from Pending to its end, after a ready event', async () => {
      const watch = await openSse(`${server.url}/runs?watch=true`);
      try {
        expect(watch.status).to.equal(200);
        await watch.waitFor((e) => e.event === 'ready');
        const { body } = await request(server.url, 'POST', '/resources', pipeline('watched', [['one', 'echo hi'], ['two', 'echo there']]));
        const done = await watch.waitFor((e) => e.event === 'run' && JSON.parse(e.data).runid === body.runid && JSON.parse(e.data).phase === 'Succeeded');
        const final = JSON.parse(done.data);
        expect(final.steps.map((s: { phase: string }) => s.phase)).to.deep.equal(['Succeeded', 'Succeeded']);
        expect(final).not.to.have.property('spec');
        const phases = watch.events.filter((e) => e.event === 'run' && JSON.parse(e.data).runid === body.runid).map((e) => JSON.parse(e.data).phase);
        expect(phases[0]).to.be.oneOf(['Pending', 'Running']);
        expect(phases).to.include('Running');
      } finally {
        watch.close();
      }
    });

    it('sends only the runs of the named pipeline when asked', async () => {
      const watch = await openSse(`${server.url}/runs?watch=true&resource=pipeline&name=only-this`);
      try {
        await watch.waitFor((e) => e.event === 'ready');
        const other = await request(server.url, 'POST', '/resources', pipeline('not-this', [['s', 'true']]));
        await waitForRun(server.url, other.body.runid);
        const mine = await request(server.url, 'POST', '/resources', pipeline('only-this', [['s', 'true']]));
        await watch.waitFor((e) => e.event === 'run' && JSON.parse(e.data).runid === mine.body.runid && JSON.parse(e.data).phase === 'Succeeded');
        const names = new Set(watch.events.filter((e) => e.event === 'run').map((e) => JSON.parse(e.data).name));
        expect([...names]).to.deep.equal(['only-this']);
      } finally {
        watch.close();
      }
    });
  });

  describe('GET /runs?phase=', () => {
    it('lists only runs in that phase, and names the field for an unknown phase', async () => {
      const failed = await request(server.url, 'POST', '/resources', pipeline('phase-filter', [['bad', 'exit 1']]));
      await waitForRun(server.url, failed.body.runid);
      const ok = await request(server.url, 'PUT', '/resources/pipeline/phase-filter', { spec: pipeline('x', [['good', 'true']]).spec });
      await waitForRun(server.url, ok.body.runid);
      const res = await request(server.url, 'GET', '/runs?name=phase-filter&phase=Failed');
      expect(res.status).to.equal(200);
      expect(res.body.items.map((r: { runid: string }) => r.runid)).to.deep.equal([failed.body.runid]);
      const bad = await request(server.url, 'GET', '/runs?phase=Finished');
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.match(/^phase must be one of Pending, Running/);
    });
  });

  describe('GET /logs?runid=&since=&limit= (ranged read)', () => {
    let runid: string;
    before(async () => {
      const res = await request(server.url, 'POST', '/resources', pipeline('ranged', [['count', 'seq 2500'], ['tail', 'echo Needle in the tail']]));
      runid = res.body.runid;
      await waitForRun(server.url, runid);
    });

    it('pages through the log in order, with the last seq in a header', async () => {
      const seen: number[] = [];
      let since = 0;
      for (;;) {
        const res = await fetch(`${server.url}/logs?runid=${runid}&since=${since}&limit=1000`);
        expect(res.status).to.equal(200);
        expect(res.headers.get('conveyor-last-seq')).to.equal('2505');
        const lines = (await res.json()) as { seq: number; message: string; step: string }[];
        if (lines.length === 0) break;
        expect(lines.length).to.be.at.most(1000);
        seen.push(...lines.map((l) => l.seq));
        since = lines.at(-1)!.seq;
      }
      expect(seen).to.deep.equal(Array.from({ length: 2505 }, (_, i) => i + 1));
      const page = await request(server.url, 'GET', `/logs?runid=${runid}&since=1200&limit=3`);
      expect(page.body.map((l: { message: string }) => l.message)).to.deep.equal(['1200', '1201', '1202']);
      expect(page.body[0]).to.include({ runid, seq: 1201, step: 'count', stream: 'stdout', driver: 'command-runner' });
    });

    it('finds the next line containing a text (any case) and the first line of a step', async () => {
      const found = await request(server.url, 'GET', `/logs?runid=${runid}&since=0&limit=1&q=needle`);
      expect(found.body.map((l: { seq: number; message: string }) => [l.seq, l.message])).to.deep.equal([[2504, 'Needle in the tail']]);
      const none = await request(server.url, 'GET', `/logs?runid=${runid}&since=2504&limit=1&q=needle`);
      expect(none.body).to.deep.equal([]);
      const step = await request(server.url, 'GET', `/logs?runid=${runid}&since=0&limit=1&step=tail`);
      expect(step.body.map((l: { seq: number; message: string }) => [l.seq, l.message])).to.deep.equal([[2503, 'Executing step: tail']]);
    });

    it('keeps upstream\'s whole list when no page is asked for', async () => {
      const all = await request(server.url, 'GET', `/logs?runid=${runid}`);
      expect(all.body).to.have.length(2505);
      expect(all.headers.get('conveyor-last-seq')).to.equal(null);
    });

    it('answers bad page parameters with a 400 naming them, an unknown run with 404', async () => {
      for (const [query, field] of [
        ['since=-1', 'since'],
        ['since=abc', 'since'],
        ['limit=0', 'limit'],
        ['limit=5001', 'limit'],
        ['since=1&since=2', 'since'],
        ['q=', 'q'],
      ] as const) {
        const res = await request(server.url, 'GET', `/logs?runid=${runid}&${query}`);
        expect(res.status, query).to.equal(400);
        expect(res.body.error, query).to.match(new RegExp(`^${field} `));
      }
      const unknown = await request(server.url, 'GET', '/logs?runid=6f1c1a8e-3f1e-4a43-9d8c-1b2f1f0a8b11&since=0');
      expect(unknown.status).to.equal(404);
    });
  });
});
