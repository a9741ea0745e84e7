// What keeps a web page the user merely visits from driving a local server: a browser
// sends `Origin` on every cross-site POST, form and websocket, and a DNS-rebinding page
// reaches the loopback address under its own name, which shows in `Host`. Pure checks,
// shared by the HTTP middleware and the websocket upgrade.
import { ConveyorError } from '../../domain/index.ts';

export interface BrowserPolicy {
  // Local mode: only loopback names and addresses (and `allowedHosts`) are served.
  checkHost: boolean;
  // Exact `host` or `host:port` values; `*` accepts any Host.
  allowedHosts: string[];
  // Exact origins (`https://ui.example:8443`) a browser page may call from, with CORS.
  allowedOrigins: string[];
}

export class ForbiddenError extends ConveyorError {
  constructor(message: string) {
    super(403, message);
  }
}

// `Host` without its port: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:80` → `::1`.
export function hostName(host: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return host.replace(/:\d+$/, '').toLowerCase();
}

export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function hostAllowed(host: string, policy: BrowserPolicy): boolean {
  if (policy.allowedHosts.includes('*')) return true;
  const name = hostName(host);
  if (isLoopbackName(name)) return true;
  return policy.allowedHosts.some((allowed) => allowed.toLowerCase() === host.toLowerCase() || allowed.toLowerCase() === name);
}

// The origin a page served by this server has: the scheme is not known behind a TLS proxy,
// so the host and port are compared (a page elsewhere cannot claim this server's Host).
function sameOrigin(origin: string, host: string): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}

export function isAllowedOrigin(origin: string, policy: BrowserPolicy): boolean {
  return policy.allowedOrigins.includes(origin);
}

// Throws 403 for a request a browser page of another site (or a rebinding name) made.
export function checkBrowserHeaders(headers: { host?: string; origin?: string }, policy: BrowserPolicy): void {
  const host = headers.host ?? '';
  if (policy.checkHost && !hostAllowed(host, policy)) {
    throw new ForbiddenError(
      `Host "${host}" is not served: only loopback names and addresses are, unless allowed with --allowed-host (a guard against DNS rebinding)`,
    );
  }
  const origin = headers.origin;
  if (origin === undefined) return;
  if (sameOrigin(origin, host) || isAllowedOrigin(origin, policy)) return;
  throw new ForbiddenError(`Origin "${origin}" may not call this server: allow it with --allowed-origin (a guard against other web pages)`);
}
