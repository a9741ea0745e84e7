// Property-based fuzzing of a real server (local mode, random port) with fast-check: random
// methods, paths, query strings, headers and bodies over HTTP, and random websocket upgrade
// targets. Whatever arrives: never a 5xx, never a crash, every error a JSON `{"error"}`.
//
// Bounded for CI by run counts and a time limit per property. A failure prints fast-check's
// seed and path; replay it with FUZZ_SEED=<seed> FUZZ_PATH=<path> mocha test/integration/fuzz.test.ts
import { expect } from 'chai';
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { rawUpgrade } from '../support/raw-upgrade.ts';
import { startServer, type TestServer } from '../support/server.ts';

const SEED = process.env.FUZZ_SEED === undefined ? Date.now() ^ (Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED);
const PATH = process.env.FUZZ_PATH;
const TIME_LIMIT_MS = Number(process.env.FUZZ_TIME_LIMIT_MS ?? 8_000);

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

// One request exactly as generated (node:http, not fetch, which would normalise the path).
// A stream (SSE) is accepted once its head arrives: its body is the log, which may not end.
function send(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) } }, (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      if (contentType.startsWith('text/event-stream')) {
        res.destroy();
        resolve({ status: res.statusCode!, contentType, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, contentType, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${method} ${path} within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

function expectJsonError(answer: Answer, what: string): void {
  expect(answer.status, `${what}: ${answer.body.slice(0, 300)}`).to.be.below(500);
  if (answer.status < 400) return;
  expect(answer.contentType, `${what}: an error is JSON`).to.match(/^application\/json/);
  const parsed = JSON.parse(answer.body) as Record<string, unknown>;
  expect(Object.keys(parsed), `${what}: ${answer.body.slice(0, 300)}`).to.deep.equal(['error']);
  expect(parsed.error).to.be.a('string').and.not.equal('');
}

// Pieces a hostile or careless client puts in a URL.
const urlChars = fc.constantFrom(...'abcXYZ019-._~:@!$&\'()*+,;=%/?[]'.split(''), '%E0', '%00', '%2F', '%ZZ', '%', '..', '//', '\u00e9', 'pipeline', 'x'.repeat(300));
const segment = fc.oneof(
  fc.constantFrom('pipeline', 'fuzz-type', 'command-runner', 'apply', 'cancel', 'metrics', 'none', '1', '0', '-1', '99999999999999999999', 'Foo', '.', '..', ''),
  fc.array(urlChars, { maxLength: 6 }).map((parts) => parts.join('')),
);
const prefix = fc.constantFrom(
  '/resources',
  '/resource-definitions',
  '/pipelines',
  '/runs',
  '/logs',
  '/logs/streams',
  '/logs/pipeline',
  '/drivers/broadcast-message',
  '/drivers/streams/logs',
  '/health',
  '/ping',
  '/metrics',
  '/openapi.json',
  // Not /ui: the web page answers 503 until it is built (scripts/build-ui.ts), by design.
  '',
);
const queryValue = fc.oneof(fc.constantFrom('1', '0', '-1', '500', '501', '1e3', 'json', 'array', 'x', '', '%E0', '9'.repeat(30)), fc.array(urlChars, { maxLength: 4 }).map((p) => p.join('')));
const query = fc
  .array(fc.tuple(fc.constantFrom('limit', 'continue', 'since', 'format', 'runid', 'driver', 'resource', 'name', 'x', 'limit[]', '__proto__'), queryValue), { maxLength: 4 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));

// Only printable ASCII in header values: Node's client refuses to send anything else.
const headerValue = fc.string({ unit: fc.constantFrom(...' abcxyz0123456789-_./:;=,*"\'()[]{}@'.split('')), maxLength: 40 });
const headers = fc.record(
  {
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', ''),
    'x-request-id': headerValue,
    'last-event-id': fc.oneof(fc.constantFrom('1', '-1', '1e9', '99999999999999999'), headerValue),
    accept: fc.constantFrom('application/json', 'text/event-stream', '*/*'),
    'content-encoding': fc.constantFrom('gzip', 'identity', 'br', 'x'),
    'x-anything': headerValue,
  },
  { requiredKeys: [] },
);

// Steps only ever run commands from this list: the server under test really runs them.
const safeCommand = fc.constantFrom('true', 'echo fuzz', 'exit 3', 'echo a\u0000b', 'x'.repeat(40_000));
const spec = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record(
    {
      image: fc.constantFrom('busybox', ''),
      steps: fc.array(fc.record({ name: fc.oneof(segment, fc.constantFrom('s', 'build')), command: safeCommand }), { maxLength: 3 }),
      timeoutSeconds: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(2 ** 31, 2 ** 53, 1e308)),
      retries: fc.oneof(fc.integer({ min: -5, max: 20 }), fc.constant(1e20)),
      env: fc.array(fc.record({ name: fc.constantFrom('A', '1A', ''), value: fc.oneof(headerValue, fc.constant('a\u0000')) }), { maxLength: 2 }),
    },
    { requiredKeys: [] },
  ),
);
const schema = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record(
    {
      type: fc.constantFrom('object', 'string', 'nope', 1),
      pattern: fc.constantFrom('^(a+)+$', '(?=a)', '(a)\\1', '[', '^[a-z]+$', '\\p{L}'),
      properties: fc.dictionary(fc.constantFrom('a', 'b', '$id'), fc.record({ type: fc.constantFrom('string', 'number'), pattern: fc.constantFrom('^(a+)+$', '[a-') }, { requiredKeys: [] })),
      $id: fc.constantFrom('urn:x', 'http://example.com/s', 'a#b'),
      $ref: fc.constantFrom('#', '#/nope', 'http://nowhere/x'),
      required: fc.array(fc.constantFrom('a', 'b')),
    },
    { requiredKeys: [] },
  ),
);
const body = fc.oneof(
  fc.constant(undefined),
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 50 }),
  fc.constantFrom('{', '[]', 'null', '"x"', '1e999', '{"__proto__":{"x":1}}', '{"a":1,"a":2}', `${'['.repeat(3000)}${']'.repeat(3000)}`),
  fc.record({ name: segment, resource: fc.constantFrom('pipeline', 'fuzz-type', 'nothing'), spec, pipeline: segment }, { requiredKeys: ['name'] }).map((b) => JSON.stringify(b)),
  fc.record({ name: segment, version: segment, description: fc.string(), schema }, { requiredKeys: ['name'] }).map((b) => JSON.stringify(b)),
  fc.record({ runid: segment, driver: segment, message: fc.string(), event: segment, payload: fc.jsonValue({ maxDepth: 2 }), run_id: segment }, { requiredKeys: [] }).map((b) => JSON.stringify(b)),
);

describe('fuzzing a real server (local mode)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let runid: string;

  before(async () => {
    console.log(`      fuzz seed ${SEED}${PATH ? ` path ${PATH}` : ''} (replay: FUZZ_SEED=${SEED} mocha test/integration/fuzz.test.ts)`);
    server = await startServer();
    const created = await request(server.url, 'POST', '/resources', pipeline('fuzzed', [['s', 'echo fuzz']]));
    runid = created.body.runid;
    await waitForRun(server.url, runid);
    expect((await request(server.url, 'POST', '/resource-definitions', { name: 'fuzz-type', schema: { type: 'object', properties: { a: { type: 'string', pattern: '^[a-z]+$' } } } })).status).to.equal(201);
  });
  after(async () => {
    const code = await server.stop();
    server.cleanup();
    expect(code, 'the server exits cleanly after the fuzzing').to.equal(0);
  });

  const params = (numRuns: number): fc.Parameters<unknown> => ({
    seed: SEED,
    path: PATH,
    numRuns,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    markInterruptAsFailure: false,
    endOnFailure: true,
  });

  it('HTTP: any method, path, query, headers and body get a JSON answer below 500', async () => {
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
    const path = fc.tuple(prefix, fc.array(fc.oneof(segment, fc.constant('RUNID')), { maxLength: 4 }), query).map(([p, segs, q]) => `${p}/${segs.join('/')}${q}`);
    await fc.assert(
      fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
        // Non-ASCII is no valid request target; the server's JSON 400 for one is checked by the
        // websocket property (raw bytes), while a HEAD client here would choke on its body.
        const target = p.replace(/RUNID/g, runid).replace(/[^\x21-\x7e]/g, m === 'HEAD' ? '' : '$&');
        const answer = await send(server.url, m, target, h, m === 'GET' || m === 'HEAD' ? undefined : b);
        if (m === 'HEAD') expect(answer.status, `HEAD ${target}`).to.be.below(500);
        else expectJsonError(answer, `${m} ${target}`);
      }),
      params(400),
    );
    expect((await request(server.url, 'GET', '/health')).status).to.equal(200);
  });

  it('websocket: any upgrade target gets a JSON refusal below 500, or the log', async () => {
    const target = fc.tuple(fc.constantFrom('/drivers/streams/logs', '/drivers/streams/logs/command-runner', '', '/'), fc.array(fc.oneof(segment, fc.constant('RUNID')), { maxLength: 3 }), query).map(([p, segs, q]) => `${p}/${segs.join('/')}${q}`);
    await fc.assert(
      fc.asyncProperty(target, async (t) => {
        const raw = t.replace(/RUNID/g, runid);
        const answer = await rawUpgrade(server.url, raw);
        if (answer.status === 101) return;
        expectJsonError({ status: answer.status, contentType: /content-type: ([^\r\n]+)/i.exec(answer.headers)?.[1] ?? '', body: answer.body }, `upgrade ${raw}`);
      }),
      params(200),
    );
    expect((await request(server.url, 'GET', '/health')).status).to.equal(200);
  });
});
