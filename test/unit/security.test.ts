// The pure parts of the security checks: Origin/Host decisions, where tokens are read from,
// the bounded review cache, the JSON content-type rule and the security settings.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkBrowserHeaders, hostName, isLoopbackName, type BrowserPolicy } from '../../src/api/auth/browser.ts';
import { bearerFromHeader, bearerFromProtocols, tokenProtocol } from '../../src/api/auth/credentials.ts';
import { chooseProtocol } from '../../src/api/auth/upgrade.ts';
import { hasBody } from '../../src/api/middleware/json-only.ts';
import { resolveConfig } from '../../src/config.ts';
import { BoundedTtlCache } from '../../src/kube/bounded-cache.ts';
import { describeAccess } from '../../src/kube/access-reviews.ts';
import { localSecurity } from '../../src/serve/security.ts';

const local: BrowserPolicy = { checkHost: true, allowedHosts: ['conveyor.lan'], allowedOrigins: ['https://ui.example.com'] };

describe('security: browser checks', () => {
  it('knows loopback names and addresses, with or without a port', () => {
    for (const host of ['localhost', 'app.localhost', '127.0.0.1', '127.1.2.3', '::1']) expect(isLoopbackName(host), host).to.equal(true);
    for (const host of ['localhost.evil.example', '128.0.0.1', '0.0.0.0', '10.0.0.1', 'example.com']) expect(isLoopbackName(host), host).to.equal(false);
    expect(hostName('[::1]:8080')).to.equal('::1');
    expect(hostName('LOCALHOST:80')).to.equal('localhost');
  });

  it('refuses a foreign Host (DNS rebinding) and accepts loopback and --allowed-host', () => {
    expect(() => checkBrowserHeaders({ host: 'evil.example:8080' }, local)).to.throw(/Host "evil.example:8080" is not served/);
    expect(() => checkBrowserHeaders({ host: undefined }, local)).to.throw(/Host "" is not served/);
    for (const host of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', 'conveyor.lan', 'conveyor.lan:8080']) checkBrowserHeaders({ host }, local);
    checkBrowserHeaders({ host: 'anything.example' }, { ...local, allowedHosts: ['*'] });
    checkBrowserHeaders({ host: 'ingress.example' }, { ...local, checkHost: false });
  });

  it('accepts no Origin, its own origin and --allowed-origin; refuses any other, null included', () => {
    checkBrowserHeaders({ host: '127.0.0.1:8080' }, local);
    checkBrowserHeaders({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }, local);
    checkBrowserHeaders({ host: 'ci.example', origin: 'https://ci.example' }, { ...local, checkHost: false });
    checkBrowserHeaders({ host: '127.0.0.1:8080', origin: 'https://ui.example.com' }, local);
    for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1:9999', 'http://localhost:8080', 'file://', 'chrome-extension://abc']) {
      expect(() => checkBrowserHeaders({ host: '127.0.0.1:8080', origin }, local), origin).to.throw(/may not call this server/);
    }
  });
});

describe('security: tokens', () => {
  it('reads a bearer token from the Authorization header only in the Bearer scheme', () => {
    expect(bearerFromHeader('Bearer abc.def')).to.equal('abc.def');
    expect(bearerFromHeader('bearer   abc')).to.equal('abc');
    expect(bearerFromHeader('Basic dXNlcjpwYXNz')).to.equal(undefined);
    expect(bearerFromHeader('Bearer')).to.equal(undefined);
    expect(bearerFromHeader(undefined)).to.equal(undefined);
  });

  it('reads the websocket subprotocol token the way the Kubernetes API server does, and never echoes it', () => {
    const token = 'eyJhbGciOi.payload_-.sig';
    const protocol = tokenProtocol(token);
    expect(protocol).to.match(/^base64url\.bearer\.authorization\.k8s\.io\.[A-Za-z0-9_-]+$/);
    expect(bearerFromProtocols(`conveyor.logs.v1, ${protocol}`)).to.equal(token);
    expect(bearerFromProtocols('conveyor.logs.v1')).to.equal(undefined);
    expect(bearerFromProtocols('base64url.bearer.authorization.k8s.io.not+base64url')).to.equal(undefined);
    expect(chooseProtocol(new Set(['conveyor.logs.v1', protocol]))).to.equal('conveyor.logs.v1');
    expect(chooseProtocol(new Set([protocol]))).to.equal(false);
  });
});

describe('security: review cache', () => {
  it('forgets answers after their time to live and evicts the oldest beyond its bound', () => {
    let now = 0;
    const cache = new BoundedTtlCache<boolean>(2, () => now);
    cache.set('a', true, 100);
    cache.set('b', false, 10);
    expect(cache.get('b')).to.equal(false);
    now = 11;
    expect(cache.get('b')).to.equal(undefined);
    cache.set('c', true, 100);
    cache.set('d', true, 100);
    expect(cache.size).to.equal(2);
    expect(cache.get('a')).to.equal(undefined);
    expect(cache.get('d')).to.equal(true);
  });

  it('names the verb, resource and group in a 403', () => {
    expect(describeAccess({ verb: 'create', resource: 'pipelines' }, 'ci')).to.equal('create pipelines.conveyor.ci in namespace ci');
    expect(describeAccess({ verb: 'get', resource: 'runs', subresource: 'log' }, 'ci')).to.equal('get runs/log.conveyor.ci in namespace ci');
    expect(describeAccess({ verb: 'get', path: '/metrics' }, 'ci')).to.equal('get the non-resource URL /metrics');
  });
});

describe('security: settings', () => {
  it('tells a body by its length or chunked encoding', () => {
    expect(hasBody({ 'content-length': '0' })).to.equal(false);
    expect(hasBody({ 'content-length': '2' })).to.equal(true);
    expect(hasBody({ 'transfer-encoding': 'chunked' })).to.equal(true);
    expect(hasBody({})).to.equal(false);
  });

  it('reads the token from --token-file, CONVEYOR_TOKEN_FILE or CONVEYOR_TOKEN, and refuses short ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-unit-'));
    try {
      writeFileSync(join(dir, 't'), 'a-long-enough-token-value\n');
      writeFileSync(join(dir, 'short'), 'short');
      expect(resolveConfig({ tokenFile: join(dir, 't') }, {}).token).to.equal('a-long-enough-token-value');
      expect(resolveConfig({}, { CONVEYOR_TOKEN_FILE: join(dir, 't') }).token).to.equal('a-long-enough-token-value');
      expect(resolveConfig({}, { CONVEYOR_TOKEN: 'another-long-token-1234' }).token).to.equal('another-long-token-1234');
      expect(resolveConfig({}, {}).token).to.equal(undefined);
      expect(() => resolveConfig({ tokenFile: join(dir, 'short') }, {})).to.throw(/at least 16 characters/);
      expect(() => resolveConfig({ tokenFile: join(dir, 'none') }, {})).to.throw(/cannot read the token file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes allowed origins as origins only, and auth on unless set to false', () => {
    expect(resolveConfig({ allowedOrigin: ['https://ui.example.com/'] }, {}).allowedOrigins).to.deep.equal(['https://ui.example.com']);
    expect(resolveConfig({}, { CONVEYOR_ALLOWED_ORIGINS: 'https://a.example, http://b.example:8080' }).allowedOrigins).to.deep.equal(['https://a.example', 'http://b.example:8080']);
    expect(() => resolveConfig({ allowedOrigin: ['https://ui.example.com/path'] }, {})).to.throw(/scheme, host and optional port only/);
    expect(() => resolveConfig({ allowedOrigin: ['not a url'] }, {})).to.throw(/is not an origin/);
    expect(resolveConfig({}, {}).authEnabled).to.equal(true);
    expect(resolveConfig({}, { CONVEYOR_AUTH: 'false' }).authEnabled).to.equal(false);
    expect(() => resolveConfig({}, { CONVEYOR_AUTH: 'no' })).to.throw(/CONVEYOR_AUTH must be "true" or "false"/);
  });

  it('refuses local mode off loopback without a token, and turns the Host check off with one', () => {
    expect(() => localSecurity(resolveConfig({ host: '0.0.0.0' }, {}))).to.throw(/refusing to listen on 0\.0\.0\.0 without a token.*--token-file/);
    expect(localSecurity(resolveConfig({ host: '::1' }, {})).browser.checkHost).to.equal(true);
    const withToken = localSecurity(resolveConfig({ host: '0.0.0.0' }, { CONVEYOR_TOKEN: 'a-long-enough-token-value' }));
    expect(withToken.auth).to.not.equal(undefined);
    expect(withToken.browser.checkHost).to.equal(false);
  });
});
