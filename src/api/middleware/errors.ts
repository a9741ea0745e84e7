// Every error becomes `{"error": "..."}` here, once, at the top of the stack. Handlers
// throw typed errors; nothing below this middleware writes an error body itself.
import type { Middleware } from 'koa';
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import { ConveyorError, asUnavailable } from '../../domain/index.ts';
import { ensureRequestId } from './request-id.ts';

interface HttpishError extends Error {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
}

// The status and message an error is answered with.
export function describe(err: HttpishError, maxBodyBytes: number): { status: number; error: string } {
  if (err instanceof ConveyorError) return { status: err.status, error: err.message };
  if (err.type === 'entity.too.large') return { status: 413, error: `request body is larger than the limit of ${maxBodyBytes} bytes` };
  if (err.type === 'entity.parse.failed' || (err.status === 400 && /JSON|json|Unexpected/.test(err.message))) {
    return { status: 400, error: 'Invalid request payload: the body is not valid JSON' };
  }
  const status = err.status ?? err.statusCode ?? 500;
  if (status >= 400 && status < 500 && err.expose !== false) return { status, error: err.message };
  return { status: 500, error: 'internal server error' };
}

export function errorHandler(logger: Logger, maxBodyBytes: number): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: `no route for ${ctx.method} ${ctx.path}` };
      } else if (ctx.status === 405 && ctx.body === undefined) {
        ctx.body = { error: `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow')}` };
      } else if (ctx.status >= 400 && ctx.body === undefined) {
        ctx.body = { error: STATUS_CODES[ctx.status] ?? 'error' };
      }
      // Error answers written below (the page's own 404/405/503) carry an id too.
      if (ctx.status >= 400) ensureRequestId(ctx);
    } catch (caught) {
      const requestId = ensureRequestId(ctx);
      const err = caught as HttpishError;
      // An outage of the API server is expected and passes: 503 with Retry-After, and a
      // warning without a stack, not an error.
      const unavailable = asUnavailable(err);
      if (unavailable) {
        logger.warn({ path: ctx.path, method: ctx.method, requestId, cause: err.message }, unavailable.message);
        ctx.status = 503;
        ctx.set('Retry-After', String(unavailable.retryAfterSeconds));
        ctx.body = { error: unavailable.message };
        return;
      }
      const { status, error } = describe(err, maxBodyBytes);
      if (status >= 500) logger.error({ err, path: ctx.path, method: ctx.method, requestId }, 'request failed');
      ctx.status = status;
      ctx.body = { error };
    }
  };
}
