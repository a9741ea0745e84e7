// JSON bodies only, whatever Content-Type the client sent (curl -d sends a form type), with
// a size limit that answers 413 before the body is read in full.
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';

export function jsonBody(maxBodyBytes: number): Middleware {
  return bodyParser({
    enableTypes: ['json'],
    extendTypes: { json: ['*/*'] },
    jsonLimit: maxBodyBytes,
    encoding: 'utf-8',
    jsonStrict: false,
  }) as Middleware;
}
