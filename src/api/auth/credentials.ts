// Where a request carries its bearer token: the Authorization header, or (browsers cannot
// set headers on a websocket) the subprotocol `base64url.bearer.authorization.k8s.io.<token>`,
// the API server's own convention. Never the URL: URLs end up in logs and browser history.
import { TOKEN_PROTOCOL_PREFIX } from './types.ts';

export function bearerFromHeader(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /^Bearer +(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

export function bearerFromProtocols(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const raw of header.split(',')) {
    const protocol = raw.trim();
    if (!protocol.startsWith(TOKEN_PROTOCOL_PREFIX)) continue;
    const encoded = protocol.slice(TOKEN_PROTOCOL_PREFIX.length);
    if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
    return Buffer.from(encoded, 'base64url').toString('utf8');
  }
  return undefined;
}

export function tokenProtocol(token: string): string {
  return TOKEN_PROTOCOL_PREFIX + Buffer.from(token, 'utf8').toString('base64url');
}
