// Hostile and careless input, answered the same way in both modes: a clear 4xx JSON error
// naming the field or the limit, nothing stored, and the server still up. The cluster tier
// runs this file against a server in Kubernetes mode too (scripts/test.ts BOTH_MODES).
import { expect } from 'chai';
import { pipeline, request } from '../support/http.ts';
import { rawUpgrade } from '../support/raw-upgrade.ts';
import { inMode, suiteServer } from '../support/server.ts';

// JSON text nested `depth` objects deep, spliced into `template` where it says NESTED (built
// as text: JSON.stringify of such a value overflows the test's own stack).
function withNested(template: unknown, depth: number): string {
  return JSON.stringify(template).replace('"NESTED"', `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}

describe(inMode('edges: limits, malformed input, one answer per mistake'), () => {
  const suite = suiteServer();
  const call = (method: string, path: string, body?: unknown) => request(suite.server.url, method, path, body);
  const expectError = (res: { status: number; body: any }, status: number, error: RegExp) => {
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(Object.keys(res.body)).to.deep.equal(['error']);
    expect(res.body.error).to.match(error);
  };
  const alive = async () => expect((await call('GET', '/health')).status).to.equal(200);

  describe('websocket upgrades with malformed targets', () => {
    const cases: [string, number][] = [
      ['/drivers/streams/logs/command-runner/%E0%A4%A', 400],
      ['/drivers/streams/logs/%/00000000-0000-4000-8000-000000000000', 400],
      ['//[', 400],
      ['/drivers/streams/logs/command-runner/%', 400],
      ['/no/such/socket', 404],
    ];
    for (const [target, status] of cases) {
      it(`answers ${status} JSON to ${target} and stays up`, async () => {
        const answer = await rawUpgrade(suite.server.url, target);
        expect(answer.status, answer.headers).to.equal(status);
        expect(answer.headers).to.match(/content-type: application\/json/i);
        expect(Object.keys(JSON.parse(answer.body))).to.deep.equal(['error']);
        await alive();
      });
    }
  });

  describe('sizes and numbers beyond what the runtime honours', () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['a spec nested 5,000 levels deep', withNested({ ...pipeline('deep', [['s', 'true']]), spec: { ...pipeline('deep', [['s', 'true']]).spec, x: 'NESTED' } }, 5000), 400, /nests objects and arrays deeper than the limit of 100 levels/],
      ['a resource of a free-form type nested 5,000 levels deep', withNested({ name: 'deep', resource: 'free', spec: { x: 'NESTED' } }, 5000), 400, /deeper than the limit of 100 levels/],
      ['timeoutSeconds beyond what a timer can wait (2^31 ms)', pipeline('late', [['s', 'true']], { timeoutSeconds: 2 ** 31 }), 400, /^Resource validation failed: spec.timeoutSeconds must be <= 2147483$/],
      ['more retries than allowed', pipeline('retry', [['s', 'true']], { retries: 11 }), 400, /^Resource validation failed: spec.retries must be <= 10$/],
      ['a command with a NUL character', pipeline('nul', [['s', 'echo a\u0000b']]), 400, /spec.steps\[0\].command contains a NUL character/],
      ['a command longer than a process argument may be', pipeline('long', [['s', 'x'.repeat(40_000)]]), 400, /spec.steps\[0\].command must NOT have more than 32768 characters/],
      ['an env value with a NUL character', pipeline('nulenv', [['s', 'true']], { env: [{ name: 'A', value: 'a\u0000' }] }), 400, /spec.env\[0\].value contains a NUL character/],
      ['more steps than allowed', pipeline('many', Array.from({ length: 101 }, (_, i): [string, string] => [`s${i}`, 'true'])), 400, /spec.steps must NOT have more than 100 items/],
    ];
    before(async () => {
      expect((await call('POST', '/resource-definitions', { name: 'free', schema: { type: 'object' } })).status).to.equal(201);
    });
    for (const [what, body, status, error] of cases) {
      it(`answers ${status} for ${what}, storing nothing`, async () => {
        // The nested bodies are text; both name their resource in the first few characters.
        const head = typeof body === 'string' ? body.slice(0, body.indexOf('"spec"')) : JSON.stringify(body);
        const name = /"name":"([^"]+)"/.exec(head)![1];
        const type = /"resource":"([^"]+)"/.exec(head)![1];
        expectError(await call('POST', '/resources', body), status, error);
        expect((await call('GET', `/resources/${type}/${name}`)).status).to.equal(404);
        await alive();
      });
    }

    it('a schema nested 5,000 levels deep is a 400, not a stack overflow', async () => {
      expectError(await call('POST', '/resource-definitions', withNested({ name: 'deep-schema', schema: 'NESTED' }, 5000)), 400, /deeper than the limit of 100 levels/);
    });
  });

  describe('user schemas', () => {
    it('a pattern RE2 cannot run is a 400 naming it, and nothing is stored', async () => {
      const res = await call('POST', '/resource-definitions', { name: 'lookahead', schema: { type: 'object', properties: { a: { type: 'string', pattern: '(?=a)b' } } } });
      expectError(res, 400, /^schema has a pattern "\(\?=a\)b" that RE2 cannot run/);
      expect((await call('GET', '/resource-definitions/lookahead')).status).to.equal(404);
    });

    it('a catastrophic pattern cannot stall the server: ^(a+)+$ on a long value answers at once', async () => {
      expect((await call('POST', '/resource-definitions', { name: 'evil', schema: { type: 'object', properties: { a: { type: 'string', pattern: '^(a+)+$' } } } })).status).to.equal(201);
      const res = await call('POST', '/resources', { name: 'e1', resource: 'evil', spec: { a: `${'a'.repeat(50)}!` } });
      expectError(res, 400, /spec.a must match pattern/);
      await alive();
    });

    it('a schema with $id can be replaced, and another definition may use the same $id', async () => {
      const schema = (required: string) => ({ $id: 'http://example.com/build', type: 'object', required: [required] });
      expect((await call('POST', '/resource-definitions', { name: 'with-id', schema: schema('a') })).status).to.equal(201);
      expect((await call('POST', '/resource-definitions', { name: 'same-id', schema: schema('b') })).status).to.equal(201);
      expect((await call('POST', '/resources', { name: 'w1', resource: 'with-id', spec: { a: 1 } })).status).to.equal(201);
      const replaced = await call('PUT', '/resource-definitions/with-id', { name: 'with-id', schema: schema('c') });
      expect(replaced.status, JSON.stringify(replaced.body)).to.equal(200);
      expectError(await call('POST', '/resources', { name: 'w2', resource: 'with-id', spec: { a: 1 } }), 400, /spec.c is required/);
      expect((await call('POST', '/resources', { name: 'w3', resource: 'with-id', spec: { c: 1 } })).status).to.equal(201);
      expectError(await call('POST', '/resources', { name: 's1', resource: 'same-id', spec: { c: 1 } }), 400, /spec.b is required/);
    });
  });

  describe('bodies and requests that cannot be read', () => {
    it('a body that is not what its Content-Encoding says is a 400, not a 500', async () => {
      for (const encoding of ['br', 'gzip', 'deflate']) {
        const res = await request(suite.server.url, 'POST', '/resources', '{"name":"x"}', { 'content-encoding': encoding });
        expectError(res, 400, new RegExp(`could not be read \\(Content-Encoding: ${encoding}\\)`));
      }
      await alive();
    });

    it('a request Node cannot parse gets a JSON 400 too', async () => {
      const answer = await rawUpgrade(suite.server.url, '/health\u00e9');
      expect(answer.status).to.equal(400);
      expect(answer.headers).to.match(/content-type: application\/json/i);
      expect(JSON.parse(answer.body).error).to.match(/not valid HTTP/);
      await alive();
    });
  });

  describe('the same status for the same mistake', () => {
    it('404 for a resource whose type or name could not exist', async () => {
      expectError(await call('GET', '/resources/Foo/x'), 404, /not found/);
      expectError(await call('GET', '/resources/free/Not_A_Name'), 404, /not found/);
      expectError(await call('DELETE', '/resources/Foo/x'), 404, /not found/);
      expectError(await call('PUT', '/resources/Foo/x', { spec: {} }), 404, /not found/);
      expectError(await call('GET', '/resources/Foo/x/1'), 404, /not found/);
    });

    it('a PUT of an unchanged spec is a new version with a new run (the web page\'s "Run again")', async () => {
      const created = await call('POST', '/resources', pipeline('same-again', [['s', 'true']]));
      expect(created.status).to.equal(201);
      const again = await call('PUT', '/resources/pipeline/same-again', { spec: pipeline('same-again', [['s', 'true']]).spec });
      expect(again.status, JSON.stringify(again.body)).to.equal(200);
      expect(again.body.version).to.equal('2');
      expect(again.body.runid).to.not.equal(created.body.runid);
      expect(String((await call('GET', '/resources/pipeline/same-again')).body.metadata.version)).to.equal('2');
      const run = (await call('GET', `/runs/${again.body.runid}`)).body;
      expect(run.version, 'the new run is of the new version').to.be.oneOf([2, '2']);
      const third = await call('PUT', '/resources/pipeline/same-again', { spec: pipeline('same-again', [['s', 'true']]).spec });
      expect(third.body.version).to.equal('3');

      const generic = await call('POST', '/resources', { name: 'same-free', resource: 'free', spec: { a: 1 } });
      const genericAgain = await call('PUT', '/resources/free/same-free', { spec: { a: 1 } });
      expect(genericAgain.body.version).to.equal('2');
      expect(genericAgain.body.runid).to.not.equal(generic.body.runid);
    });

    it('/metrics labels each answer with its real status', async () => {
      expect((await call('POST', '/resources', { name: 'x' })).status).to.equal(400);
      expect((await call('GET', '/runs/00000000-0000-4000-8000-000000000000')).status).to.equal(404);
      expect((await call('POST', '/resources', pipeline('late-2', [['s', 'true']], { timeoutSeconds: 2 ** 31 }))).status).to.equal(400);
      const text: string = (await call('GET', '/metrics')).body;
      expect(text).to.match(/http_requests_total\{method="POST",route="\/resources",status_code="400"\} [1-9]/);
      expect(text).to.match(/http_requests_total\{method="GET",route="\/runs\/:runid",status_code="404"\} [1-9]/);
      expect(text, 'no POST /resources counted as 404').to.not.match(/http_requests_total\{method="POST",route="\/resources",status_code="404"\}/);
    });
  });
});
