import Router, { type RouterMiddleware } from '@koa/router';
import { PassThrough, Readable } from 'node:stream';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  assertValid,
  compileBuiltIn,
  isTerminal,
  isUuid,
  upstreamEntry,
  type LogLine,
  type LogStream,
} from '../../domain/index.ts';
import { LogHubClosedError } from '../../logs/index.ts';
import type { ApiDeps } from '../context.ts';
import { requires } from '../auth/access.ts';
import { onRunLogs } from '../auth/route-access.ts';
import { logStreamRequest } from '../log-stream-request.ts';
import { background } from '../../observability/background.ts';
import { isRangedLogRead, readLogRange } from '../log-range.ts';

const postedLine = compileBuiltIn({
  type: 'object',
  required: ['runid', 'driver', 'message'],
  additionalProperties: false,
  properties: {
    runid: { type: 'string', minLength: 1 },
    driver: { type: 'string', minLength: 1 },
    message: { type: 'string' },
    pipeline: { type: 'string' },
    step: { type: 'string' },
    stream: { enum: ['stdout', 'stderr', 'system'] },
  },
});

interface PostedLine {
  runid: string;
  driver: string;
  message: string;
  pipeline?: string;
  step?: string;
  stream?: LogStream;
}

function queryString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function* jsonArray(pages: Iterable<LogLine[]>): Generator<string> {
  let first = true;
  yield '[';
  for (const page of pages) {
    let chunk = '';
    for (const line of page) {
      chunk += (first ? '' : ',') + JSON.stringify(upstreamEntry(line));
      first = false;
    }
    yield chunk;
  }
  yield ']';
}

// Resolves once `out` can take more, or when the client has gone (then nothing will drain
// it, and a follower waiting for 'drain' would be held forever).
function writable(out: PassThrough, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    if (signal.aborted) return resolve();
    out.once('drain', done);
    out.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function logRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/logs', requires(deps.auth, onRunLogs('get')), (ctx) => {
    const runid = queryString(ctx.query.runid);
    if (!runid) throw new BadRequestError('runid is required (GET /logs?runid=<run id>)');
    if (!isUuid(runid)) throw new BadRequestError(`runid "${runid}" is not a run id (a UUID)`);
    if (isRangedLogRead(ctx.query)) return readLogRange(deps, ctx, runid);
    const pages = deps.archive.pages({ runid, driver: queryString(ctx.query.driver), pipeline: queryString(ctx.query.pipeline) });
    // One JSON array, written a page at a time as the client reads: a log of any size is
    // served without holding it in memory.
    ctx.type = 'application/json';
    ctx.body = Readable.from(jsonArray(pages));
  });

  router.post('/logs', requires(deps.auth, onRunLogs('create')), async (ctx) => {
    assertValid(postedLine, ctx.request.body, '');
    const line = ctx.request.body as PostedLine;
    const run = isUuid(line.runid) ? await deps.store.getRun(line.runid) : undefined;
    if (!run) throw new NotFoundError(`run ${line.runid} not found`);
    if (isTerminal(run.phase)) throw new ConflictError(`run ${line.runid} has ended (${run.phase}); its log is closed`);
    const stored = deps.hub.append(run.runid, {
      driver: line.driver,
      pipeline: line.pipeline ?? run.name,
      step: line.step ?? null,
      stream: line.stream ?? 'stdout',
      message: line.message,
    });
    ctx.status = 201;
    ctx.body = { seq: stored.seq, timestamp: stored.ts };
  });

  const sse = (withDriver: boolean): RouterMiddleware => async (ctx) => {
    const driver = withDriver ? ctx.params.driver : undefined;
    const request = await logStreamRequest(deps, ctx.params.runid!, driver, ctx.query, ctx.get('last-event-id') || undefined);
    const out = new PassThrough();
    const abort = new AbortController();
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    ctx.body = out;
    ctx.res.once('close', () => abort.abort());
    const heartbeat = setInterval(() => out.write(': heartbeat\n\n'), deps.heartbeatMs);
    background('sse-log-stream', async () => {
      try {
        for await (const batch of deps.hub.follow(request.run.runid, { after: request.after, driver: request.driver, signal: abort.signal })) {
          let chunk = '';
          for (const line of batch) chunk += `id: ${line.seq}\ndata: ${JSON.stringify(upstreamEntry(line))}\n\n`;
          if (!out.write(chunk)) await writable(out, abort.signal);
          if (abort.signal.aborted) break;
        }
        // `end` only when the run's log has really ended: a stopping server just closes
        // the stream, and EventSource (or the CLI) reconnects with Last-Event-ID.
        if (!abort.signal.aborted) out.write('event: end\ndata: {}\n\n');
      } catch (err) {
        if (!(err instanceof LogHubClosedError)) deps.logger.warn({ err, runid: request.run.runid }, 'SSE log stream failed');
      } finally {
        clearInterval(heartbeat);
        out.end();
      }
    });
  };

  router.get('/logs/streams/:driver/:runid', requires(deps.auth, onRunLogs('get')), sse(true));
  router.get('/logs/pipeline/:runid', requires(deps.auth, onRunLogs('get')), sse(false));

  return router;
}
