// Counts and times requests by route template (never by raw path, which would give every
// run id its own series).
import type { Middleware } from 'koa';
import type { Metrics } from '../../observability/metrics.ts';
import { describe } from './errors.ts';

export function requestMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const stop = metrics.httpDuration.startTimer();
    metrics.httpInFlight.inc();
    // A thrown error is answered by the error middleware above this one, after this one has
    // run: until then ctx.status is still Koa's default 404, so the status is the one that
    // middleware will answer with. (The body size limit only shapes the message.)
    let status: number | undefined;
    try {
      await next();
    } catch (err) {
      status = describe(err as Error, 0).status;
      throw err;
    } finally {
      metrics.httpInFlight.dec();
      const labels = { method: ctx.method, route: String((ctx as { _matchedRoute?: string | RegExp })._matchedRoute ?? 'unmatched'), status_code: String(status ?? ctx.status) };
      metrics.httpRequests.inc(labels);
      stop(labels);
    }
  };
}
