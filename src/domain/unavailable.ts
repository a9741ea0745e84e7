// Tells an outage of the Kubernetes API server (refused or cut connections, its own 503
// "not ready", a gateway timeout, throttling) from a bug: the first is an expected, passing
// condition that clients should retry, the second a 500. Recognized by shape, so that the
// API layer needs no Kubernetes client: client-node throws undici's `TypeError: fetch
// failed` with the socket error as its cause, and ApiException with `code` and `headers`.
import { ServiceUnavailableError } from './errors.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);
const UNAVAILABLE_STATUSES = new Set([429, 502, 503, 504]);
const DEFAULT_RETRY_AFTER_SECONDS = 5;

interface ErrorLike {
  code?: unknown;
  cause?: unknown;
  headers?: unknown;
  body?: unknown;
}

function networkCode(err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 4) return undefined;
  const { code, cause } = err as ErrorLike;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
  return networkCode(cause, depth + 1);
}

// The API server says how long to wait in a Retry-After header and in its Status object's
// details.retryAfterSeconds; either is honoured, within reason.
function retryAfterOf(err: ErrorLike): number {
  const headers = (err.headers ?? {}) as Record<string, unknown>;
  const fromHeader = Number(headers['retry-after'] ?? headers['Retry-After']);
  let body = err.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const fromBody = Number((body as { details?: { retryAfterSeconds?: unknown } } | undefined)?.details?.retryAfterSeconds);
  const seconds = [fromHeader, fromBody].find((n) => Number.isInteger(n) && n > 0 && n <= 300);
  return seconds ?? DEFAULT_RETRY_AFTER_SECONDS;
}

/** The outage `err` reports, as a 503 to answer, or undefined if it is not an outage. */
export function asUnavailable(err: unknown): ServiceUnavailableError | undefined {
  if (err instanceof ServiceUnavailableError) return err;
  const code = networkCode(err);
  if (code) return new ServiceUnavailableError(`the Kubernetes API server is unreachable (${code}); retry later`);
  const like = err as ErrorLike | null;
  if (typeof like === 'object' && like !== null && typeof like.code === 'number' && 'headers' in like && UNAVAILABLE_STATUSES.has(like.code)) {
    return new ServiceUnavailableError(`the Kubernetes API server is not ready (HTTP ${like.code}); retry later`, retryAfterOf(like));
  }
  return undefined;
}
