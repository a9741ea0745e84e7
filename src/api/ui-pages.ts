// The web page at /ui/: the files `scripts/build-ui.ts` wrote into dist/ui, served from
// memory (only files found there are served, so no request path ever reaches the disk), and
// index.html for every other /ui/ path so that deep links (/ui/runs/<id>) load the page.
// `/` sends a browser (one that accepts HTML) to /ui/. The page uses the public API only.
import type { Context, Middleware } from 'koa';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';

export const UI_BUILD_DIR = join(import.meta.dirname, '../../dist/ui');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Everything from this server, nothing inline, no frames: a log line can never become script.
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

interface Asset {
  body: Buffer;
  type: string;
}

function readAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry);
      if (statSync(path).isDirectory()) walk(path);
      else assets.set(`/ui/${relative(dir, path).split(sep).join('/')}`, { body: readFileSync(path), type: TYPES[extname(entry)] ?? 'application/octet-stream' });
    }
  };
  walk(dir);
  return assets;
}

export function uiPages(dir: string = UI_BUILD_DIR): Middleware {
  let assets: Map<string, Asset> | undefined;
  // Read once the build exists; until then every request looks again, so a page built after
  // the server started is served without a restart.
  const load = () => (assets ??= existsSync(join(dir, 'index.html')) ? readAssets(dir) : undefined);
  // Synchronous, and an API path costs one string test: this runs before every route.
  return (ctx, next) => {
    const path = ctx.path;
    if (path !== '/ui' && !path.startsWith('/ui/')) {
      if (path === '/' && (ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.accepts('html') === 'html' && ctx.get('accept').includes('text/html')) {
        ctx.redirect('/ui/');
        return Promise.resolve();
      }
      return next();
    }
    servePage(ctx, path);
    return Promise.resolve();
  };

  function servePage(ctx: Context, path: string): void {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.body = { error: `${ctx.method} is not allowed on ${path}; the page is read-only` };
      return;
    }
    if (path === '/ui') {
      ctx.redirect('/ui/');
      return;
    }
    const built = load();
    if (!built) {
      ctx.status = 503;
      ctx.body = { error: 'the web page is not built: run `node scripts/build-ui.ts` (npm start does it)' };
      return;
    }
    ctx.set(SECURITY_HEADERS);
    const asset = built.get(path);
    if (asset) {
      // Asset names carry a content hash; index.html does not and must be checked each time.
      ctx.set('Cache-Control', path.startsWith('/ui/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      ctx.type = asset.type;
      ctx.body = asset.body;
      return;
    }
    if (path.startsWith('/ui/assets/')) {
      ctx.status = 404;
      ctx.body = { error: `no file ${path}` };
      return;
    }
    const index = built.get('/ui/index.html')!;
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = index.type;
    ctx.body = index.body;
  }
}
