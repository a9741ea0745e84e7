import Router, { type RouterMiddleware } from '@koa/router';
import { PassThrough } from 'node:stream';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  assertValid,
  compileBuiltIn,
  isTerminal,
  isUuid,
  upstreamEntry,
  type LogStream,
} from '../../domain/index.ts';
import type { ApiDeps } from '../context.ts';
import { logStreamRequest } from '../log-stream-request.ts';
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

export function logRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/logs', async (ctx) => {
    const runid = queryString(ctx.query.runid);
    if (!runid) throw new BadRequestError('runid is required (GET /logs?runid=<run id>)');
    if (!isUuid(runid)) throw new BadRequestError(`runid "${runid}" is not a run id (a UUID)`);
    if (isRangedLogRead(ctx.query)) return readLogRange(deps, ctx, runid);
    const lines = deps.archive.query({ runid, driver: queryString(ctx.query.driver), pipeline: queryString(ctx.query.pipeline) });
    ctx.body = lines.map(upstreamEntry);
  });

  router.post('/logs', async (ctx) => {
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
    void (async () => {
      try {
        for await (const batch of deps.hub.follow(request.run.runid, { after: request.after, driver: request.driver, signal: abort.signal })) {
          let chunk = '';
          for (const line of batch) chunk += `id: ${line.seq}\ndata: ${JSON.stringify(upstreamEntry(line))}\n\n`;
          if (!out.write(chunk)) await new Promise((resolve) => out.once('drain', resolve));
          if (abort.signal.aborted) break;
        }
        if (!abort.signal.aborted) out.write('event: end\ndata: {}\n\n');
      } catch (err) {
        deps.logger.warn({ err, runid: request.run.runid }, 'SSE log stream failed');
      } finally {
        clearInterval(heartbeat);
        out.end();
      }
    })();
  };

  router.get('/logs/streams/:driver/:runid', sse(true));
  router.get('/logs/pipeline/:runid', sse(false));

  return router;
}
