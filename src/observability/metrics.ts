// Prometheus metrics. Gauges that mirror state (runs by phase, live followers) are read at
// scrape time from their owners, so they can never drift from the truth.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RUN_PHASES, type Run, type RunPhase } from '../domain/index.ts';

export interface MetricSources {
  runsByPhase: () => Promise<Record<RunPhase, number>>;
  logFollowers: () => number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  // Requests being answered: a plain count the HTTP middleware keeps, read at scrape time
  // like the gauges below (a prom-client inc and dec on every request cost more).
  httpInFlight = 0;
  readonly runDuration: Histogram<'phase'>;
  readonly logStreamsOpened: Counter;
  readonly backgroundErrors: Counter<'task'>;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time to answer an HTTP request.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being answered.',
      registers,
      collect() {
        this.set(metrics.httpInFlight);
      },
    });
    this.runDuration = new Histogram({
      name: 'conveyor_run_duration_seconds',
      help: 'Time from a run starting to its end, by final phase.',
      labelNames: ['phase'],
      buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.logStreamsOpened = new Counter({
      name: 'conveyor_log_streams_opened_total',
      help: 'Container log streams opened to the Kubernetes API server (one per step container unless a stream broke and resumed).',
      registers,
    });
    this.backgroundErrors = new Counter({
      name: 'conveyor_background_errors_total',
      help: 'Failures of background work (listeners, timers, log streams, clean-ups), by task; each is also logged once.',
      labelNames: ['task'],
      registers,
    });
    new Gauge({
      name: 'conveyor_runs',
      help: 'Runs in the store, by phase.',
      labelNames: ['phase'],
      registers,
      async collect() {
        const counts = await sources.runsByPhase();
        for (const phase of RUN_PHASES) this.set({ phase }, counts[phase]);
      },
    });
    new Gauge({
      name: 'conveyor_log_followers',
      help: 'Clients following a run log live (websocket and SSE).',
      registers,
      collect() {
        this.set(sources.logFollowers());
      },
    });
  }

  observeRunFinished(run: Run): void {
    if (!run.finishedAt) return;
    const started = Date.parse(run.startedAt ?? run.createdAt);
    this.runDuration.observe({ phase: run.phase }, Math.max(0, (Date.parse(run.finishedAt) - started) / 1000));
  }
}
