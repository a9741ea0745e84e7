// A body is read only as JSON, and only when it says it is JSON (`application/json` or a
// `+json` type): a browser may send text/plain or a form to any site without asking, and
// those must never be mistaken for an API call. Bodiless requests (a cancel) need no type.
import type { Middleware } from 'koa';
import { ConveyorError } from '../../domain/index.ts';

class UnsupportedMediaTypeError extends ConveyorError {
  constructor(message: string) {
    super(415, message);
  }
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;

export function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  const length = headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return headers['transfer-encoding'] !== undefined;
}

// Synchronous: a check of headers, no promise of its own.
export function jsonOnly(): Middleware {
  return (ctx, next) => {
    if (hasBody(ctx.req.headers)) {
      const type = (ctx.get('content-type').split(';')[0] ?? '').trim();
      if (!JSON_TYPE.test(type)) {
        throw new UnsupportedMediaTypeError(
          `Content-Type must be application/json (got ${type ? `"${type}"` : 'none'}); send the body with -H 'Content-Type: application/json'`,
        );
      }
    }
    return next();
  };
}
