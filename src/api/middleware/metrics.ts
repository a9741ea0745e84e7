// Counts and times requests by route template (never by raw path, which would give every
// run id its own series). The labelled children are looked up once per label set and kept:
// prom-client hashes a labels object on every call otherwise, a cost on every request.
import type { Middleware } from 'koa';
import type { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../../observability/metrics.ts';
import { describe } from './errors.ts';

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
      const route = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
      const s = seriesFor(ctx.method, route === undefined ? 'unmatched' : String(route), status ?? ctx.status);
      s.requests.inc();
      s.duration.observe((performance.now() - start) / 1000);
    }
  };
}
