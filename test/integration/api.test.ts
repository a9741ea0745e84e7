// The upstream API surface: definitions, resources and versions, driver pipelines,
// broadcast messages, health, metrics, the OpenAPI document, and every kind of bad input.
import { expect } from 'chai';
import { collectFrames, request, pipeline, seedResource, waitForRun } from '../support/http.ts';
import { inMode, startServer, type TestServer } from '../support/server.ts';

describe(inMode('API surface'), () => {
  let server: TestServer;
  const call = (method: string, path: string, body?: unknown) => request(server.url, method, path, body);
  before(async () => {
    server = await startServer({ args: ['--max-body-bytes', '2048'] });
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  describe('resource definitions', () => {
    const build = { name: 'build', version: '1.0.0', description: 'a build', schema: { type: 'object', required: ['repo'], properties: { repo: { type: 'string' } } } };

    it('has the built-in pipeline definition, which cannot be deleted or changed', async () => {
      const res = await call('GET', '/resource-definitions/pipeline');
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ name: 'pipeline', version: '1.0.0', builtIn: true });
      expect(res.body.schema.required).to.deep.equal(['steps']);
      const del = await call('DELETE', '/resource-definitions/pipeline');
      expect(del.status).to.equal(409);
      expect(del.body.error).to.match(/built in and cannot be deleted/);
      expect((await call('PUT', '/resource-definitions/pipeline', { name: 'pipeline', schema: {} })).status).to.equal(409);
    });

    it('creates (echoing the body with an id), refuses a duplicate, applies, reads, replaces and deletes', async () => {
      const created = await call('POST', '/resource-definitions/', build);
      expect(created.status).to.equal(201);
      expect(created.body).to.include({ name: 'build', version: '1.0.0', description: 'a build' });
      expect(created.body.schema).to.deep.equal(build.schema);
      expect(created.body.id).to.be.a('string').and.not.empty;
      const dup = await call('POST', '/resource-definitions', build);
      expect(dup.status).to.equal(409);
      expect(dup.body.error).to.equal('resource definition "build" already exists');
      const applied = await call('POST', '/resource-definitions/apply', { ...build, version: '1.1.0' });
      expect(applied.status).to.equal(201);
      expect(applied.body.version).to.equal('1.1.0');
      const appliedNew = await call('POST', '/resource-definitions/apply/', { ...build, name: 'deploy' });
      expect(appliedNew.status).to.equal(201);
      const replaced = await call('PUT', '/resource-definitions/deploy', { ...build, name: 'deploy', description: 'changed' });
      expect(replaced.status).to.equal(200);
      expect((await call('GET', '/resource-definitions/deploy')).body.description).to.equal('changed');
      expect((await call('DELETE', '/resource-definitions/deploy')).status).to.equal(204);
      expect((await call('GET', '/resource-definitions/deploy')).status).to.equal(404);
      expect((await call('DELETE', '/resource-definitions/deploy')).status).to.equal(404);
      const list = await call('GET', '/resource-definitions');
      expect(list.body.map((d: any) => d.name)).to.include.members(['build', 'pipeline']);
    });

    it('refuses a schema that is not a valid JSON Schema, naming the field', async () => {
      const res = await call('POST', '/resource-definitions', { name: 'broken', schema: { type: 'no-such-type' } });
      expect(res.status).to.equal(400);
      expect(res.body.error).to.match(/^schema is not a valid JSON Schema/);
      expect((await call('GET', '/resource-definitions/broken')).status).to.equal(404);
    });

    it('validates resources of a user type against its schema; with no driver their run waits Pending and says why', async () => {
      const bad = await call('POST', '/resources', { name: 'b1', resource: 'build', spec: { repo: 5 } });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.equal('Resource validation failed: spec.repo must be a string');
      const ok = await call('POST', '/resources', { name: 'b1', resource: 'build', spec: { repo: 'x' } });
      expect(ok.status).to.equal(201);
      const run = (await call('GET', `/runs/${ok.body.runid}`)).body;
      expect(run).to.include({ phase: 'Pending', reason: 'NoDriver', driver: 'none' });
      expect(run.message).to.match(/no driver serves resources of type "build"/);
      const del = await call('DELETE', '/resource-definitions/build');
      expect(del.status).to.equal(409);
      expect(del.body.error).to.match(/still has 1 resource/);
    });
  });

  describe('resources', () => {
    it('reads, lists by type, replaces with a new version, reads old versions, and deletes', async () => {
      const created = await call('POST', '/resources', pipeline('versioned', [['one', 'echo v1']]));
      expect(created.status).to.equal(201);
      const got = await call('GET', '/resources/pipeline/versioned');
      expect(got.body).to.deep.include({ name: 'versioned', resource: 'pipeline' });
      expect(got.body.metadata.version).to.equal('1');
      const replaced = await call('PUT', '/resources/pipeline/versioned/', { spec: pipeline('versioned', [['one', 'echo v2']]).spec });
      expect(replaced.status).to.equal(200);
      expect(replaced.body).to.include({ message: 'Resource updated successfully', name: 'versioned', version: '2' });
      expect(replaced.body.runid).to.not.equal(created.body.runid);
      const v1 = await call('GET', '/resources/pipeline/versioned/1');
      expect(v1.body.spec.steps[0].command).to.equal('echo v1');
      expect(v1.body.metadata.version).to.equal('1');
      const v2 = await call('GET', '/resources/pipeline/versioned/2');
      expect(v2.body.spec.steps[0].command).to.equal('echo v2');
      expect((await call('GET', '/resources/pipeline/versioned/3')).status).to.equal(404);
      expect((await call('GET', '/resources/pipeline/versioned/zero')).status).to.equal(400);
      const run2 = await waitForRun(server.url, replaced.body.runid);
      expect(run2.version).to.equal(2);
      const logs = await call('GET', `/logs?runid=${replaced.body.runid}`);
      expect(logs.body.map((l: any) => l.message)).to.include('v2');
      const list = await call('GET', '/resources/pipeline');
      expect(list.body.map((r: any) => r.name)).to.include('versioned');
      expect((await call('DELETE', '/resources/pipeline/versioned')).status).to.equal(204);
      expect((await call('GET', '/resources/pipeline/versioned')).status).to.equal(404);
      expect((await call('GET', '/resources/pipeline/versioned/1')).status).to.equal(404);
      expect((await call('DELETE', '/resources/pipeline/versioned')).status).to.equal(404);
      expect((await call('GET', `/runs/${replaced.body.runid}`)).status, 'run history outlives the resource').to.equal(200);
    });

    it('answers 404 for an unknown type on list, create and replace', async () => {
      expect((await call('GET', '/resources/nothing')).status).to.equal(404);
      const create = await call('POST', '/resources', { name: 'x', resource: 'nothing', spec: {} });
      expect(create.status).to.equal(404);
      expect(create.body.error).to.match(/resource type "nothing" is not defined/);
      expect((await call('PUT', '/resources/pipeline/absent', { spec: seedResource.spec })).status).to.equal(404);
    });
  });

  describe('bad input stores nothing', () => {
    const cases: [string, string | object, number, RegExp][] = [
      ['a body that is not JSON', '{"name": ', 400, /^Invalid request payload/],
      ['a body that is not an object', '["x"]', 400, /^body must be an object$/],
      ['a missing name', { resource: 'pipeline', spec: seedResource.spec }, 400, /^name is required$/],
      ['a missing type', { name: 'a', spec: seedResource.spec }, 400, /^resource is required$/],
      ['a missing spec', { name: 'a', resource: 'pipeline' }, 400, /^spec is required$/],
      ['an unknown field', { ...seedResource, name: 'a', extra: 1 }, 400, /^extra is not a known field$/],
      ['an uppercase name', { ...seedResource, name: 'Ubuntu' }, 400, /^name "Ubuntu" must be a lowercase DNS-1123 label/],
      ['a name over 63 characters', { ...seedResource, name: 'a'.repeat(64) }, 400, /^name "a+" must be at most 63 characters/],
      ['a step without a command', { ...seedResource, name: 'a', spec: { steps: [{ name: 'x' }] } }, 400, /^Resource validation failed: spec.steps\[0\].command is required$/],
      ['steps that are not an array', { ...seedResource, name: 'a', spec: { steps: 'ls' } }, 400, /^Resource validation failed: spec.steps must be an array$/],
      ['an unknown type', { ...seedResource, name: 'a', resource: 'missing' }, 404, /resource type "missing" is not defined/],
      ['an unknown driver pipeline', { ...seedResource, name: 'a', pipeline: 'no-chain' }, 404, /pipeline "no-chain" not found/],
      ['a body over the limit', { ...seedResource, name: 'a', spec: { steps: [{ name: 'x', command: 'x'.repeat(4096) }] } }, 413, /larger than the limit of 2048 bytes/],
    ];
    for (const [what, body, status, error] of cases) {
      it(`answers ${status} for ${what}`, async () => {
        const before = (await call('GET', '/runs?limit=500')).body.items.length;
        const res = await call('POST', '/resources/', body);
        expect(res.status).to.equal(status);
        expect(res.headers.get('content-type')).to.match(/application\/json/);
        expect(Object.keys(res.body)).to.deep.equal(['error']);
        expect(res.body.error).to.match(error);
        expect((await call('GET', '/runs?limit=500')).body.items.length).to.equal(before);
        expect((await call('GET', '/resources/pipeline/a')).status).to.equal(404);
      });
    }

    it('answers 409 for a duplicate and keeps the first', async () => {
      const first = await call('POST', '/resources', { ...seedResource, name: 'dup' });
      const second = await call('POST', '/resources', { ...seedResource, name: 'dup', spec: { image: seedResource.spec.image, steps: [{ name: 'other', command: 'true' }] } });
      expect(second.status).to.equal(409);
      expect(second.body.error).to.match(/resource pipeline\/dup already exists/);
      expect((await call('GET', '/resources/pipeline/dup')).body.spec.steps[0].name).to.equal('print-working-directory');
      const runs = (await call('GET', '/runs?name=dup')).body.items;
      expect(runs.map((r: any) => r.runid)).to.deep.equal([first.body.runid]);
    });

    it('answers JSON 404 for an unknown route and 405 for a wrong method', async () => {
      const missing = await call('GET', '/no/such/route');
      expect(missing.status).to.equal(404);
      expect(missing.body.error).to.equal('no route for GET /no/such/route');
      const missingWithBody = await call('POST', '/no/such/route', 'not json');
      expect(missingWithBody.status, 'an unknown route is 404 whatever its body').to.equal(404);
      expect(missingWithBody.body.error).to.equal('no route for POST /no/such/route');
      const wrong = await call('PATCH', '/resources');
      expect(wrong.status).to.equal(405);
      expect(wrong.body.error).to.match(/PATCH is not allowed on \/resources; allowed: POST/);
    });
  });

  describe('driver pipelines and broadcast messages', () => {
    const chain = { name: 'build-chain', resource: 'pipeline', description: 'two drivers', steps: [{ id: 's1', name: 'build', driver: 'builder' }, { id: 's2', name: 'ship', driver: 'shipper' }] };

    it('stores and validates driver pipelines', async () => {
      expect((await call('POST', '/pipelines/', chain)).status).to.equal(201);
      expect((await call('POST', '/pipelines', chain)).status).to.equal(409);
      expect((await call('GET', '/pipelines/build-chain')).body.steps).to.have.lengthOf(2);
      const bad = await call('POST', '/pipelines', { ...chain, name: 'x', steps: [{ id: 's1', name: 'n' }] });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.equal('steps[0].driver is required');
      expect((await call('POST', '/pipelines', { ...chain, name: 'y', resource: 'unknown-type' })).status).to.equal(404);
      const put = await call('PUT', '/pipelines/build-chain', { ...chain, description: 'changed' });
      expect(put.body.description).to.equal('changed');
      expect((await call('GET', '/pipelines')).body.map((p: any) => p.name)).to.include('build-chain');
    });

    it('a resource handed to a driver pipeline waits for its external drivers and takes their log lines', async () => {
      const res = await call('POST', '/resources', { ...seedResource, name: 'chained', pipeline: 'build-chain' });
      expect(res.status).to.equal(201);
      const run = (await call('GET', `/runs/${res.body.runid}`)).body;
      expect(run).to.include({ phase: 'Pending', reason: 'NoDriver' });
      const posted = await call('POST', '/logs', { runid: res.body.runid, driver: 'builder', message: 'building' });
      expect(posted.status).to.equal(201);
      expect(posted.body.seq).to.equal(1);
      const logs = await call('GET', `/logs?runid=${res.body.runid}&driver=builder`);
      expect(logs.body).to.have.lengthOf(1);
      expect(logs.body[0]).to.include({ runid: res.body.runid, driver: 'builder', pipeline: 'chained', message: 'building', seq: 1 });
      expect(logs.body[0].timestamp).to.match(/^\d{19}$/);
      expect((await call('GET', `/logs?runid=${res.body.runid}&driver=shipper`)).body).to.deep.equal([]);
      expect((await call('DELETE', '/pipelines/build-chain')).status).to.equal(204);
      expect((await call('GET', '/pipelines/build-chain')).status).to.equal(404);
    });

    it('refuses log lines for unknown or ended runs, and bad lines', async () => {
      expect((await call('POST', '/logs', { runid: '00000000-0000-4000-8000-000000000000', driver: 'd', message: 'x' })).status).to.equal(404);
      const done = await call('POST', '/resources', pipeline('ended-log', [['s', 'true']]));
      await waitForRun(server.url, done.body.runid);
      const late = await call('POST', '/logs', { runid: done.body.runid, driver: 'd', message: 'x' });
      expect(late.status).to.equal(409);
      const bad = await call('POST', '/logs', { runid: done.body.runid, message: 'x' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.equal('driver is required');
      expect((await call('GET', '/logs')).body.error).to.match(/runid is required/);
      expect((await call('GET', '/logs?runid=00000000-0000-4000-8000-000000000000')).body).to.deep.equal([]);
    });

    it('publishes broadcast messages and refuses malformed ones', async () => {
      const ok = await call('POST', '/drivers/broadcast-message', { event: 'create', payload: { a: 1 }, id: 'm1', run_id: 'r1' });
      expect(ok.status).to.equal(200);
      expect(ok.body).to.deep.equal({ message: 'message published' });
      expect((await call('POST', '/drivers/broadcast-message', { event: 'create', payload: { a: 1 }, id: 'm1', run_id: 'r1' })).status).to.equal(409);
      const bad = await call('POST', '/drivers/broadcast-message', { event: 'create', run_id: 'r1' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error).to.equal('payload is required');
    });
  });

  describe('operations', () => {
    it('answers health and ping, with or without a trailing slash', async () => {
      for (const path of ['/health', '/health/']) {
        const res = await call('GET', path);
        expect(res.body.status).to.equal('healthy');
        expect(Math.abs(res.body.time - Date.now() / 1000)).to.be.below(60);
      }
      const ping = await call('GET', '/ping/');
      expect(ping.body).to.equal('pong');
    });

    it('exports request, run and follower metrics', async () => {
      const res = await call('POST', '/resources', pipeline('metered', [['s', 'true']]));
      await waitForRun(server.url, res.body.runid);
      const text: string = (await call('GET', '/metrics')).body;
      expect(text).to.match(/http_requests_total\{method="POST",route="\/resources",status_code="201"\} \d+/);
      expect(text).to.match(/http_request_duration_seconds_bucket/);
      expect(text).to.match(/conveyor_runs\{phase="Succeeded"\} [1-9]/);
      expect(text).to.match(/conveyor_run_duration_seconds_count\{phase="Succeeded"\} [1-9]/);
      expect(text).to.match(/conveyor_log_followers 0/);
    });

    it('counts live log followers while they follow', async () => {
      const res = await call('POST', '/resources', pipeline('followed', [['wait', 'sleep 3']]));
      const followers = [0, 1].map(() => collectFrames(`${server.wsUrl}/drivers/streams/logs/command-runner/${res.body.runid}`, 60_000));
      const followed = async () => /conveyor_log_followers 2/.test((await call('GET', '/metrics')).body);
      const deadline = Date.now() + 10_000;
      while (!(await followed()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await followed(), 'two followers counted').to.equal(true);
      await Promise.all(followers);
      expect((await call('GET', '/metrics')).body).to.match(/conveyor_log_followers 0/);
    });

    it('sends a request id back', async () => {
      const res = await request(server.url, 'GET', '/ping', undefined, { 'x-request-id': 'abc-123' });
      expect(res.headers.get('x-request-id')).to.equal('abc-123');
    });
  });
});
