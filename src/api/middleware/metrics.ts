// Counts and times requests by route template (never by raw path, which would give every
// run id its own series). The labelled children are looked up once per label set and kept:
// prom-client hashes a labels object on every call otherwise, a cost on every request.
// This middleware is the outermost one, above the error handler: the status it records is
// the one the client gets, and the time includes answering an error.
import type { Middleware } from 'koa';
import type { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../../observability/metrics.ts';

interface Series {
  requests: ReturnType<Counter<string>['labels']>;
  duration: ReturnType<Histogram<string>['labels']>;
}

export function requestMetrics(metrics: Metrics): Middleware {
  // Bounded: methods x route templates x status codes.
  const series = new Map<string, Series>();
  const seriesFor = (method: string, route: string, status: number): Series => {
    const key = `${method} ${status} ${route}`;
    let found = series.get(key);
    if (!found) {
      const labels = { method, route, status_code: String(status) };
      found = { requests: metrics.httpRequests.labels(labels), duration: metrics.httpDuration.labels(labels) };
      series.set(key, found);
    }
    return found;
  };
  return async (ctx, next) => {
    const start = performance.now();
    metrics.httpInFlight++;
    try {
      await next();
    } finally {
      metrics.httpInFlight--;
      const route = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
      const s = seriesFor(ctx.method, route === undefined ? 'unmatched' : String(route), ctx.status);
      s.requests.inc();
      s.duration.observe((performance.now() - start) / 1000);
    }
  };
}
