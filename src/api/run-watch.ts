// `GET /runs?watch=true`: every change of a run as a Server-Sent Event `run` whose data is
// the run as `GET /runs/{runid}` shows it. A client opens the watch, then lists, then applies
// the events it got (in order) over the list: no change between the two is missed.
// Filters: `resource` and `name`, as for the list. A phase filter is not applied to the
// stream, since a run leaving the phase must still reach a client to leave its list.
import type { Context } from 'koa';
import { PassThrough } from 'node:stream';
import { toPublicRun, type RunRecord } from '../domain/index.ts';
import type { ApiDeps } from './context.ts';

// A client this far behind is cut off rather than buffered without bound; it lists again.
const MAX_BUFFERED_BYTES = 1024 * 1024;

export interface RunWatchFilter {
  resource?: string;
  name?: string;
}

export function watchRuns(deps: ApiDeps, ctx: Context, filter: RunWatchFilter): void {
  const out = new PassThrough();
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.status = 200;
  ctx.set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  ctx.body = out;
  const send = (chunk: string) => {
    if (out.writableLength > MAX_BUFFERED_BYTES) {
      deps.logger.warn('run watch client too slow; closing its stream');
      stop();
      return;
    }
    out.write(chunk);
  };
  const unsubscribe = deps.store.onRunChange((run: RunRecord) => {
    if (filter.resource && run.resource !== filter.resource) return;
    if (filter.name && run.name !== filter.name) return;
    send(`event: run\ndata: ${JSON.stringify(toPublicRun(run))}\n\n`);
  });
  const heartbeat = setInterval(() => send(': heartbeat\n\n'), deps.heartbeatMs);
  let stopped = false;
  function stop() {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    clearInterval(heartbeat);
    out.end();
  }
  ctx.res.once('close', stop);
  // The subscription is live from here: say so, so that a client can list without a gap.
  out.write('retry: 2000\nevent: ready\ndata: {}\n\n');
}
