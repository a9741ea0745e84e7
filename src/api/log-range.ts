// The ranged read of a run's log, `GET /logs?runid=&since=&limit=`: one page of lines after a
// seq, so that a client (the web page) can show any part of a log of any size without
// holding the whole of it. The `Conveyor-Last-Seq` header tells how long the log is now.
import type { Context } from 'koa';
import { BadRequestError, NotFoundError, upstreamEntry } from '../domain/index.ts';
import type { ApiDeps } from './context.ts';

export const MAX_LOG_PAGE = 5000;
const DEFAULT_LOG_PAGE = 1000;
export const LAST_SEQ_HEADER = 'Conveyor-Last-Seq';

/** True when the query asks for a page rather than upstream's whole list. */
export function isRangedLogRead(query: Record<string, unknown>): boolean {
  return query.since !== undefined || query.limit !== undefined || query.q !== undefined || query.step !== undefined;
}

function single(name: string, raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new BadRequestError(`${name} may be given once`);
  return raw;
}

function whole(name: string, raw: string | undefined, min: number, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || n < min || n > max) throw new BadRequestError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  return n;
}

export async function readLogRange(deps: ApiDeps, ctx: Context, runid: string): Promise<void> {
  const q = ctx.query;
  const after = whole('since', single('since', q.since), 0, Number.MAX_SAFE_INTEGER, 0);
  const limit = whole('limit', single('limit', q.limit), 1, MAX_LOG_PAGE, DEFAULT_LOG_PAGE);
  const contains = single('q', q.q);
  if (contains !== undefined && (contains.length === 0 || contains.length > 200)) throw new BadRequestError('q must be 1 to 200 characters');
  const step = single('step', q.step) || undefined;
  const driver = single('driver', q.driver) || undefined;
  // Upstream's list answers [] for an unknown run; a page names it, since a client paging
  // through a log it mistyped would otherwise wait for lines forever.
  if (!(await deps.store.getRun(runid))) throw new NotFoundError(`run ${runid} not found`);
  const lines = deps.archive.range({ runid, after, limit, step, driver, contains });
  ctx.set(LAST_SEQ_HEADER, String(deps.archive.lastSeq(runid)));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = lines.map(upstreamEntry);
}
