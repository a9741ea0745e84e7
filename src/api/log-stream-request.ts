// What the websocket and SSE endpoints share: checking that the run (and driver) exist, and
// reading where to resume (`?since=`, or SSE's Last-Event-ID) and which frame format to send.
import { BadRequestError, NotFoundError, isUuid, type FrameFormat, type RunRecord } from '../domain/index.ts';
import type { ApiDeps } from './context.ts';

export interface LogStreamRequest {
  run: RunRecord;
  driver?: string;
  after: number;
  format: FrameFormat;
}

function seqParam(name: string, raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw new BadRequestError(`${name} must be a log line's seq, a whole number (got "${raw}")`);
  return Number(raw);
}

export async function logStreamRequest(
  deps: ApiDeps,
  runid: string,
  driver: string | undefined,
  query: Record<string, string | string[] | undefined>,
  lastEventId?: string,
): Promise<LogStreamRequest> {
  const run = isUuid(runid) ? await deps.store.getRun(runid) : undefined;
  if (!run) throw new NotFoundError(`run ${runid} not found`);
  // A run's lines come from its own driver, or from drivers that posted to it; any other
  // name is almost surely a typo that would otherwise stream nothing, silently.
  // External drivers' runs also take a driver of their steps, or any while none is known yet.
  const externalStep = run.steps.some((s) => s.event !== undefined && (s.driver === driver || !s.driver));
  if (driver !== undefined && driver !== run.driver && !externalStep && !deps.archive.hasDriver(runid, driver)) {
    throw new NotFoundError(`run ${runid} has no logs from driver "${driver}" (its driver is "${run.driver}")`);
  }
  const since = typeof query.since === 'string' ? query.since : undefined;
  let after = 0;
  if (since !== undefined) after = seqParam('since', since);
  else if (lastEventId) after = seqParam('Last-Event-ID', lastEventId);
  const format = query.format ?? 'array';
  if (format !== 'array' && format !== 'json') throw new BadRequestError(`format must be "array" or "json" (got "${String(format)}")`);
  return { run, driver, after, format };
}
