// Decides, from the mode and the configuration, how requests are guarded (see
// docs/security.md): local mode checks Host and Origin and needs a token off loopback;
// Kubernetes mode checks every caller with TokenReview and SubjectAccessReview.
import { userInfo } from 'node:os';
import type { Logger } from 'pino';
import { isLoopbackName, type BrowserPolicy } from '../api/auth/browser.ts';
import { staticTokenAuth } from '../api/auth/static-token.ts';
import type { RequestAuth, User } from '../api/auth/types.ts';
import type { Config } from '../config.ts';

export interface Security {
  browser: BrowserPolicy;
  auth?: RequestAuth;
  defaultUser?: User;
}

function localUser(): User {
  try {
    return { name: `local:${userInfo().username}`, groups: [] };
  } catch {
    return { name: 'local', groups: [] };
  }
}

export function localSecurity(config: Config): Security {
  const browser: BrowserPolicy = { checkHost: true, allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins };
  // With a token, a rebinding page has nothing to send: the Host check would only turn away
  // the other machines the token is meant for.
  if (config.token) return { browser: { ...browser, checkHost: false }, auth: staticTokenAuth(config.token, localUser().name) };
  if (!isLoopbackName(config.host.replace(/^\[|\]$/g, '').toLowerCase())) {
    throw new Error(
      `refusing to listen on ${config.host} without a token: anyone who can reach it could run commands as you. ` +
        'Set one with --token-file FILE (or CONVEYOR_TOKEN_FILE, or CONVEYOR_TOKEN), e.g. ' +
        '`openssl rand -hex 32 > ~/.conveyor-token && conveyor serve --host 0.0.0.0 --token-file ~/.conveyor-token`, ' +
        'and give clients the same token with --token or CONVEYOR_TOKEN; or keep the default --host 127.0.0.1',
    );
  }
  return { browser, defaultUser: localUser() };
}

export function kubernetesSecurity(config: Config, auth: RequestAuth | undefined, logger: Logger): Security {
  const browser: BrowserPolicy = { checkHost: false, allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins };
  if (!config.authEnabled || !auth) {
    logger.warn(
      { auth: false },
      'WARNING: AUTHENTICATION IS OFF (CONVEYOR_AUTH=false / auth.enabled=false): anyone who can reach this server can run any image ' +
        'and command in its namespace. Only for a trusted development cluster; see docs/security.md',
    );
    return { browser, defaultUser: { name: 'anonymous (auth disabled)', groups: [] } };
  }
  return { browser, auth };
}
