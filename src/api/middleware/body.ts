// JSON bodies only, whatever Content-Type the client sent (curl -d sends a form type), with
// a size limit that answers 413 before the body is read in full, and a nesting limit that
// answers 400 before any recursive code sees the body. Methods that carry no body
// on this API (GET, HEAD, DELETE, OPTIONS) skip the parser: it is a cost on every read.
import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware, Next } from 'koa';
import { BadRequestError, MAX_JSON_DEPTH, tooDeepAt } from '../../domain/index.ts';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

export function jsonBody(maxBodyBytes: number): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    extendTypes: { json: ['*/*'] },
    jsonLimit: maxBodyBytes,
    encoding: 'utf-8',
    jsonStrict: false,
  }) as Middleware;
  // A bodiless method passes synchronously; only a body costs a promise.
  return (ctx, next) => (WITH_BODY.has(ctx.method) ? parseJson(ctx, next) : next());

  async function parseJson(ctx: Context, next: Next): Promise<void> {
    let read = false;
    try {
      await parse(ctx, () => {
        read = true;
        const at = tooDeepAt(ctx.request.body);
        if (at !== undefined) throw new BadRequestError(`${at} nests objects and arrays deeper than the limit of ${MAX_JSON_DEPTH} levels`);
        return next();
      });
    } catch (err) {
      // Reading the body failed in a way the parser gave no HTTP status for: a body that is
      // not what its Content-Encoding says (zlib's errors) is the client's mistake, not ours.
      const status = (err as { status?: number }).status;
      if (!read && status === undefined) throw new BadRequestError(`the request body could not be read (Content-Encoding: ${ctx.get('content-encoding') || 'none'}): ${(err as Error).message}`);
      throw err;
    }
  }
}
