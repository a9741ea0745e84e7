// JSON bodies only, whatever Content-Type the client sent (curl -d sends a form type), with
// a size limit that answers 413 before the body is read in full. Methods that carry no body
// on this API (GET, HEAD, DELETE, OPTIONS) skip the parser: it is a cost on every read.
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

export function jsonBody(maxBodyBytes: number): Middleware {
  const parse = bodyParser({
    enableTypes: ['json'],
    extendTypes: { json: ['*/*'] },
    jsonLimit: maxBodyBytes,
    encoding: 'utf-8',
    jsonStrict: false,
  }) as Middleware;
  return (ctx, next) => (WITH_BODY.has(ctx.method) ? parse(ctx, next) : next());
}
