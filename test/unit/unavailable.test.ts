// Which failures are an outage of the API server (503 and retry) and which are bugs (500).
import { ApiException } from '@kubernetes/client-node';
import { expect } from 'chai';
import { ServiceUnavailableError, asUnavailable } from '../../src/domain/index.ts';

const status = (code: number, details: Record<string, unknown> = {}) => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, details });

describe('outages of the API server', () => {
  it("are client-node's fetch failures with a socket error as their cause", () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) });
    expect(asUnavailable(refused)).to.be.instanceOf(ServiceUnavailableError).and.include({ status: 503, retryAfterSeconds: 5 });
    const reset = new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    expect(asUnavailable(reset)?.message).to.match(/UND_ERR_SOCKET/);
  });

  it("are the API server's own 503, 504 and 429, with its retryAfterSeconds", () => {
    expect(asUnavailable(new ApiException(503, 'not ready', status(503, { retryAfterSeconds: 5 }), {}))).to.include({ status: 503, retryAfterSeconds: 5 });
    expect(asUnavailable(new ApiException(429, 'slow down', status(429, { retryAfterSeconds: 2 }), { 'retry-after': '2' }))).to.include({ retryAfterSeconds: 2 });
    expect(asUnavailable(new ApiException(504, 'timeout', status(504), {}))).to.include({ retryAfterSeconds: 5 });
  });

  it('are not answers that retrying will not change, nor bugs', () => {
    for (const code of [400, 403, 404, 409, 422, 500]) expect(asUnavailable(new ApiException(code, 'x', status(code), {})), String(code)).to.equal(undefined);
    expect(asUnavailable(new TypeError("Cannot read properties of undefined (reading 'x')"))).to.equal(undefined);
    expect(asUnavailable(Object.assign(new Error('not there'), { code: 'ENOENT' }))).to.equal(undefined);
  });
});
