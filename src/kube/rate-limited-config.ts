// client-node has no client-side rate limit (client-go's QPS/burst). Every request it makes
// (typed clients, watches, our log requests) asks the KubeConfig to authenticate it first,
// so a KubeConfig that waits for a token there limits them all in one place. The figures
// are deliberate: high enough that creation throughput is bounded by the API server (Tekton
// slowed at its defaults of 5/10 with 100 runs); measured with `npm run bench:cluster`, 100/200
// made the limiter, not the API server, the bound on a burst of 200 runs.
import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import type * as https from 'node:https';

import { DEFAULT_RATE_LIMIT, type RateLimit } from '../config.ts';

export { DEFAULT_RATE_LIMIT, type RateLimit };

// A token bucket: `burst` requests at once, then `qps` a second.
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly limit: RateLimit;
  private readonly now: () => number;

  constructor(limit: RateLimit, now: () => number = () => performance.now()) {
    this.limit = limit;
    this.now = now;
    this.tokens = limit.burst;
    this.last = now();
  }

  // How long the caller must wait for its token (0: go now); takes the token.
  reserve(): number {
    const t = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((t - this.last) / 1000) * this.limit.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.limit.qps) * 1000;
  }

  take(): Promise<void> {
    const wait = this.reserve();
    if (wait === 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, wait));
  }
}

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

export class RateLimitedKubeConfig extends KubeConfig {
  private readonly bucket: TokenBucket;
  // client-node makes a new connection pool (undici Agent) for every request, so each API
  // call pays a TCP and TLS handshake on both ends; under a burst those handshakes, not
  // the writes, were what the API server spent its CPU on. One pool per cluster and user,
  // kept alive, serves every request instead.
  private readonly pools = new Map<string, Dispatcher>();

  constructor(limit: RateLimit = DEFAULT_RATE_LIMIT) {
    super();
    this.bucket = new TokenBucket(limit);
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.bucket.take();
    await super.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (!made) return;
    const key = `${this.getCurrentCluster()?.server}|${this.getCurrentUser()?.name}`;
    const pool = this.pools.get(key);
    if (pool) context.setDispatcher(pool);
    else this.pools.set(key, made);
  }

  override async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    await this.bucket.take();
    return super.applyToHTTPSOptions(opts);
  }
}
