// Bearer tokens of the servers tests started, by origin: the helpers (request,
// collectFrames, readSse) send a server's token to it without every test passing it. In
// Kubernetes mode each server gets a token of its own test client (a ServiceAccount with
// the RBAC the scenarios need); local mode on loopback needs none.
const tokens = new Map<string, string>();

const originOf = (url: string) => {
  const u = new URL(url);
  return `${u.protocol.replace(/^ws/, 'http')}//${u.host}`;
};

export function registerToken(url: string, token: string): void {
  tokens.set(originOf(url), token);
}

export function forgetToken(url: string): void {
  tokens.delete(originOf(url));
}

export function tokenFor(url: string): string | undefined {
  return tokens.get(originOf(url));
}

export function authHeadersFor(url: string): Record<string, string> {
  const token = tokenFor(url);
  return token ? { authorization: `Bearer ${token}` } : {};
}
