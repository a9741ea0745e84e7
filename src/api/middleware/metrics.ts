// Counts and times requests by route template (never by raw path, which would give every
// run id its own series).
import type { Middleware } from 'koa';
import type { Metrics } from '../../observability/metrics.ts';

export function requestMetrics(metrics: Metrics): Middleware {
  return async (ctx, next) => {
    const stop = metrics.httpDuration.startTimer();
    metrics.httpInFlight.inc();
    try {
      await next();
    } finally {
      metrics.httpInFlight.dec();
      const labels = { method: ctx.method, route: String((ctx as { _matchedRoute?: string | RegExp })._matchedRoute ?? 'unmatched'), status_code: String(ctx.status) };
      metrics.httpRequests.inc(labels);
      stop(labels);
    }
  };
}
