// The websocket upgrade's checks, before anything is served: Origin and Host as on every
// route, then the token (Authorization header, or the bearer subprotocol browsers use) and
// `get runs/log`. Errors carry their status (and WWW-Authenticate) for the refusal.
import type { IncomingMessage } from 'node:http';
import { authenticateToken, authorize } from './access.ts';
import { checkBrowserHeaders, type BrowserPolicy } from './browser.ts';
import { bearerFromHeader, bearerFromProtocols } from './credentials.ts';
import { LOG_PROTOCOL, type RequestAuth, type User } from './types.ts';

export interface UpgradeGuard {
  browser?: BrowserPolicy;
  auth?: RequestAuth;
}

const NO_POLICY: BrowserPolicy = { checkHost: false, allowedHosts: [], allowedOrigins: [] };

export async function checkLogUpgrade(deps: UpgradeGuard, req: IncomingMessage): Promise<User | undefined> {
  checkBrowserHeaders({ host: req.headers.host, origin: req.headers.origin }, deps.browser ?? NO_POLICY);
  if (!deps.auth) return undefined;
  const token = bearerFromHeader(req.headers.authorization) ?? bearerFromProtocols(req.headers['sec-websocket-protocol']);
  const user = await authenticateToken(deps.auth, token);
  await authorize(deps.auth, user, [{ verb: 'get', resource: 'runs', subresource: 'log' }]);
  return user;
}

// The subprotocol the server answers with: ours when the client offered it, else none
// (the token's own "protocol" is never echoed back).
export function chooseProtocol(protocols: Set<string>): string | false {
  return protocols.has(LOG_PROTOCOL) ? LOG_PROTOCOL : false;
}
