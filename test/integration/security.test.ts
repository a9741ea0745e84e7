// Local mode against what a web page can make a browser send (docs/security.md): a
// text/plain or form POST from another site, a DNS-rebinding name in Host, a websocket from
// another origin. Each is refused with 403/415 JSON, and nothing is stored or run: the step
// of every refused pipeline would create a marker file. Then the token off loopback.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { mainScript, newDataDir, startServer, type TestServer } from '../support/server.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

// node:http, because fetch may not set Host or Origin the way a browser does.
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A websocket handshake: the HTTP status when refused, or the accepted subprotocol.
function handshake(url: string, options: WebSocket.ClientOptions, protocols?: string[]): Promise<{ status: number; body: string; protocol?: string; headers?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options);
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    ws.on('open', () => {
      resolve({ status: 101, body: '', protocol: ws.protocol });
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('local mode: browser safety', function () {
  this.timeout(20_000);
  let server: TestServer;
  let markers: string;
  let host: string;
  before(async () => {
    markers = mkdtempSync(join(tmpdir(), 'conveyor-markers-'));
    server = await startServer({ args: ['--mode', 'local', '--allowed-origin', 'https://ui.example.com', '--allowed-host', 'conveyor.lan'] });
    host = new URL(server.url).host;
  });
  after(async () => {
    await server.stop();
    server.cleanup();
    rmSync(markers, { recursive: true, force: true });
  });

  // A pipeline whose step would leave a file behind if it ever ran.
  const attack = (name: string) => JSON.stringify(pipeline(name, [['pwn', `touch ${join(markers, name)}`]]));

  async function assertNothingHappened(name: string): Promise<void> {
    expect((await request(server.url, 'GET', `/resources/pipeline/${name}`)).status).to.equal(404);
    const runs = await request(server.url, 'GET', `/runs?name=${name}`);
    expect(runs.body.items).to.deep.equal([]);
    // A run that slipped through would have started its step by now.
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(join(markers, name)), 'the step ran').to.equal(false);
  }

  it('refuses a text/plain POST from another origin (fetch with mode: no-cors) with 403 JSON', async () => {
    const res = await raw(server.url, 'POST', '/resources/', { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, attack('textplain'));
    expect(res.status).to.equal(403);
    expect(res.body.error).to.match(/Origin "https:\/\/evil\.example" may not call this server/);
    expect(res.headers['access-control-allow-origin']).to.equal(undefined);
    await assertNothingHappened('textplain');
  });

  it('refuses an HTML form POST from another origin (403) and a form body without Origin (415)', async () => {
    const form = `name=formpost&resource=pipeline&spec=${encodeURIComponent(attack('formpost'))}`;
    const foreign = await raw(server.url, 'POST', '/resources/', { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' }, form);
    expect(foreign.status).to.equal(403);
    const noOrigin = await raw(server.url, 'POST', '/resources/', { 'content-type': 'application/x-www-form-urlencoded' }, attack('formpost'));
    expect(noOrigin.status).to.equal(415);
    expect(noOrigin.body.error).to.match(/Content-Type must be application\/json \(got "application\/x-www-form-urlencoded"\)/);
    const plain = await raw(server.url, 'POST', '/resources/', { 'content-type': 'text/plain' }, attack('formpost'));
    expect(plain.status).to.equal(415);
    await assertNothingHappened('formpost');
  });

  it('refuses a DNS-rebinding Host on reads and writes, even same-origin to the page (403)', async () => {
    const rebound = 'attacker.example:' + new URL(server.url).port;
    const read = await raw(server.url, 'GET', '/runs', { host: rebound });
    expect(read.status).to.equal(403);
    expect(read.body.error).to.match(/Host "attacker\.example:\d+" is not served/);
    const write = await raw(server.url, 'POST', '/resources/', { host: rebound, origin: `http://${rebound}`, 'content-type': 'application/json' }, attack('rebind'));
    expect(write.status).to.equal(403);
    await assertNothingHappened('rebind');
  });

  it('refuses a websocket from another origin or a rebinding Host before upgrading', async () => {
    const created = await request(server.url, 'POST', '/resources/', pipeline('ws-target', [['hi', 'echo hi']]));
    expect(created.status).to.equal(201);
    const url = `${server.wsUrl}/drivers/streams/logs/command-runner/${created.body.runid}`;
    const foreign = await handshake(url, { origin: 'https://evil.example' });
    expect(foreign.status).to.equal(403);
    expect(JSON.parse(foreign.body).error).to.match(/Origin/);
    const rebound = await handshake(url, { headers: { host: 'attacker.example' } });
    expect(rebound.status).to.equal(403);
    const own = await handshake(url, { origin: server.url }, ['conveyor.logs.v1']);
    expect(own.status).to.equal(101);
    expect(own.protocol).to.equal('conveyor.logs.v1');
  });

  it('serves curl (no Origin), its own origin, loopback names and --allowed-host; JSON and +json types', async () => {
    const own = await raw(server.url, 'POST', '/resources/', { 'content-type': 'application/json', origin: server.url }, JSON.stringify(pipeline('same-origin', [['a', 'true']])));
    expect(own.status).to.equal(201);
    const plusJson = await raw(server.url, 'POST', '/resources/', { 'content-type': 'application/merge-patch+json; charset=utf-8' }, JSON.stringify(pipeline('plus-json', [['a', 'true']])));
    expect(plusJson.status).to.equal(201);
    expect((await raw(server.url, 'GET', '/health', { host: `localhost:${new URL(server.url).port}` })).status).to.equal(200);
    expect((await raw(server.url, 'GET', '/health', { host: 'conveyor.lan' })).status).to.equal(200);
    expect((await raw(server.url, 'GET', '/health', { host })).status).to.equal(200);
    const cancel = await raw(server.url, 'POST', `/runs/${own.body.runid}/cancel`, {});
    expect([202, 409]).to.include(cancel.status);
    await waitForRun(server.url, own.body.runid);
  });

  it('sends CORS headers only to an --allowed-origin, and answers its preflight', async () => {
    const allowed = await raw(server.url, 'GET', '/runs', { origin: 'https://ui.example.com' });
    expect(allowed.status).to.equal(200);
    expect(allowed.headers['access-control-allow-origin']).to.equal('https://ui.example.com');
    const preflight = await raw(server.url, 'OPTIONS', '/resources/', { origin: 'https://ui.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers['access-control-allow-headers']).to.match(/Content-Type/);
    const plain = await raw(server.url, 'GET', '/runs', {});
    expect(plain.headers['access-control-allow-origin']).to.equal(undefined);
  });
});

describe('local mode: a token off loopback', function () {
  this.timeout(20_000);
  it('refuses to listen on a non-loopback address without a token, saying how to set one', async () => {
    const dataDir = newDataDir();
    const child = spawn(process.execPath, [mainScript, 'serve', '--mode', 'local', '--host', '0.0.0.0', '--port', '0', '--data-dir', dataDir], {
      env: { ...process.env, CONVEYOR_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
    expect(code).to.not.equal(0);
    expect(out).to.match(/refusing to listen on 0\.0\.0\.0 without a token/);
    expect(out).to.match(/--token-file/);
    expect(out).to.not.match(/listening/);
  });

  describe('with --token-file on 0.0.0.0', () => {
    const token = 'local-test-token-0123456789abcdef';
    let server: TestServer;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'conveyor-token-'));
      writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
      server = await startServer({ args: ['--mode', 'local', '--host', '0.0.0.0', '--token-file', join(dir, 'token')] });
    });
    after(async () => {
      await server.stop();
      server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves /health and /ping without the token and nothing else (401 with WWW-Authenticate)', async () => {
      expect((await request(server.url, 'GET', '/health')).status).to.equal(200);
      expect((await request(server.url, 'GET', '/ping')).status).to.equal(200);
      for (const [method, path] of [['GET', '/runs'], ['GET', '/metrics'], ['GET', '/openapi.json'], ['POST', '/resources/']] as const) {
        const res = await request(server.url, method, path, method === 'POST' ? pipeline('no-token', [['a', 'true']]) : undefined);
        expect(res.status, `${method} ${path}`).to.equal(401);
        expect(res.headers.get('www-authenticate')).to.match(/^Bearer/);
        expect(res.body.error).to.match(/Authorization: Bearer/);
      }
      const wrong = await request(server.url, 'GET', '/runs', undefined, { authorization: 'Bearer not-the-token-at-all-123' });
      expect(wrong.status).to.equal(401);
      expect((await request(server.url, 'GET', '/runs?name=no-token', undefined, { authorization: `Bearer ${token}` })).body.items).to.deep.equal([]);
    });

    it('runs with the token and streams logs with the token as header or websocket subprotocol', async () => {
      const auth = { authorization: `Bearer ${token}` };
      const created = await request(server.url, 'POST', '/resources/', pipeline('with-token', [['hello', 'echo hello']]), auth);
      expect(created.status).to.equal(201);
      const url = `${server.wsUrl}/drivers/streams/logs/command-runner/${created.body.runid}`;
      expect((await handshake(url, {})).status).to.equal(401);
      const subprotocol = `base64url.bearer.authorization.k8s.io.${Buffer.from(token).toString('base64url')}`;
      const viaProtocol = await handshake(url, {}, ['conveyor.logs.v1', subprotocol]);
      expect(viaProtocol.status).to.equal(101);
      expect(viaProtocol.protocol).to.equal('conveyor.logs.v1');
      const frames = await new Promise<string[]>((resolve, reject) => {
        const ws = new WebSocket(url, { headers: auth });
        const got: string[] = [];
        ws.on('message', (d) => got.push(d.toString()));
        ws.on('close', () => resolve(got));
        ws.on('error', reject);
      });
      expect(frames.map((f) => JSON.parse(f)[1])).to.include('hello');
    });

    it('the CLI sends --token or CONVEYOR_TOKEN', async () => {
      const cli = (args: string[], env: NodeJS.ProcessEnv) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(process.execPath, [mainScript, '--server', server.url, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
          child.once('exit', (code) => resolve({ code, out }));
        });
      const without = await cli(['get', 'runs'], { CONVEYOR_TOKEN: '' });
      expect(without.code).to.equal(1);
      expect(without.out).to.match(/authentication required/);
      expect((await cli(['--token', token, 'get', 'runs'], { CONVEYOR_TOKEN: '' })).code).to.equal(0);
      const viaEnv = await cli(['get', 'runs'], { CONVEYOR_TOKEN: token });
      expect(viaEnv.code, viaEnv.out).to.equal(0);
      expect(viaEnv.out).to.match(/with-token/);

      // --kube: the kubeconfig context's credentials, an exec plugin's included (what cloud
      // logins use): the plugin prints an ExecCredential with the token.
      const plugin = join(dir, 'credential-plugin.sh');
      writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${token}"}}'\n`, { mode: 0o700 });
      const kubeconfig = (user: object) =>
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
          users: [{ name: 'u', user }],
          contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'ctx',
        });
      writeFileSync(join(dir, 'exec.kubeconfig'), kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }));
      writeFileSync(join(dir, 'static.kubeconfig'), kubeconfig({ token }));
      writeFileSync(join(dir, 'cert.kubeconfig'), kubeconfig({ 'client-certificate-data': Buffer.from('x').toString('base64'), 'client-key-data': Buffer.from('y').toString('base64') }));
      const viaExec = await cli(['--kube', 'get', 'runs'], { CONVEYOR_TOKEN: '', KUBECONFIG: join(dir, 'exec.kubeconfig') });
      expect(viaExec.code, viaExec.out).to.equal(0);
      expect(viaExec.out).to.match(/with-token/);
      expect((await cli(['--kube', 'get', 'runs'], { CONVEYOR_TOKEN: '', KUBECONFIG: join(dir, 'static.kubeconfig') })).code).to.equal(0);
      const viaCert = await cli(['--kube', 'get', 'runs'], { CONVEYOR_TOKEN: '', KUBECONFIG: join(dir, 'cert.kubeconfig') });
      expect(viaCert.code).to.equal(1);
      expect(viaCert.out).to.match(/has no bearer token \(a client certificate cannot be passed on\)/);
    });
  });
});
