import { expect } from 'chai';
import { LogApiError, splitTimestamp } from '../../src/logs/sources/pod-log-stream.ts';

describe('a line of the Kubernetes log API', () => {
  it('splits the kubelet timestamp from the message', () => {
    expect(splitTimestamp('2026-12-01T22:04:10.123456789Z hello world')).to.deep.equal({ ts: '1796162650123456789', message: 'hello world' });
    expect(splitTimestamp('2026-12-01T22:04:10Z')).to.deep.equal({ ts: '1796162650000000000', message: '' });
  });

  it("takes the kubelet's own error text for a missing log (a 404), not for a line to retry forever", () => {
    const text = 'unable to retrieve container logs for containerd://0123abcd';
    let thrown: unknown;
    try {
      splitTimestamp(text);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.be.instanceOf(LogApiError);
    expect((thrown as LogApiError).status).to.equal(404);
    expect((thrown as LogApiError).message).to.include(text);
  });
});
