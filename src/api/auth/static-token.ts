// Local mode with a token (`--token-file`, CONVEYOR_TOKEN): one shared secret, compared in
// constant time; whoever holds it may do everything, as the machine's owner can.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Access, Authenticator, Authorizer, RequestAuth, User } from './types.ts';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function staticTokenAuth(token: string, userName: string): RequestAuth {
  const expected = digest(token);
  const user: User = { name: userName, groups: [] };
  const authenticator: Authenticator = {
    async authenticate(given) {
      return timingSafeEqual(digest(given), expected) ? user : null;
    },
  };
  const authorizer: Authorizer = {
    async allowed() {
      return true;
    },
    describe: (access: Access) => ('path' in access ? `${access.verb} ${access.path}` : `${access.verb} ${access.resource}`),
  };
  return { authenticator, authorizer, publicPaths: new Set(['/health', '/ping']) };
}
