import { expect } from 'chai';
import { TokenBucket } from '../../src/kube/rate-limited-config.ts';

describe('client rate limit (token bucket)', () => {
  it('lets a burst through at once, then spaces requests at the QPS', () => {
    let now = 0;
    const bucket = new TokenBucket({ qps: 10, burst: 3 }, () => now);
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).to.deep.equal([0, 0, 0]);
    expect(bucket.reserve()).to.be.closeTo(100, 0.001);
    expect(bucket.reserve()).to.be.closeTo(200, 0.001);
  });

  it('refills over time, never above the burst', () => {
    let now = 0;
    const bucket = new TokenBucket({ qps: 10, burst: 2 }, () => now);
    bucket.reserve();
    bucket.reserve();
    now = 10_000;
    expect([bucket.reserve(), bucket.reserve()]).to.deep.equal([0, 0]);
    expect(bucket.reserve()).to.be.closeTo(100, 0.001);
  });
});
