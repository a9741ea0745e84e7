// Builds the web page (src/ui) with esbuild into dist/ui, which the server serves at /ui/.
// Usage: node scripts/build-ui.ts [--if-stale]
//   --if-stale  build only when dist/ui is missing or older than a source (npm start/test)
// Output: dist/ui/index.html and dist/ui/assets/app-<hash>.{js,css}; nothing loaded from a CDN.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const sources = join(root, 'src/ui');
const out = join(root, 'dist/ui');
const stamp = join(out, 'index.html');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestSource(path) : stat.mtimeMs);
  }
  return newest;
}

function isStale(): boolean {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return newestSource(sources) > built || statSync(join(root, 'package-lock.json')).mtimeMs > built || statSync(import.meta.filename).mtimeMs > built;
}

function page(script: string, style: string): string {
  // The server answers this file for every /ui/ deep link, so asset paths are absolute.
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Conveyor</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/${style}">
<script type="module" src="/ui/assets/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>Conveyor's page needs JavaScript; the API at /openapi.json does not.</noscript>
</body>
</html>
`;
}

export async function buildUi(): Promise<void> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: { app: join(sources, 'main.tsx') },
    bundle: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: join(out, 'assets'),
    entryNames: '[name]-[hash]',
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const script = outputs.find((f) => /^app-.*\.js$/.test(f));
  const style = outputs.find((f) => /^app-.*\.css$/.test(f));
  if (!script || !style) throw new Error(`esbuild produced no app script or style: ${outputs.join(', ')}`);
  writeFileSync(stamp, page(script, style));
}

if (import.meta.main) {
  const ifStale = process.argv.includes('--if-stale');
  if (!ifStale || isStale()) {
    const started = Date.now();
    await buildUi();
    process.stderr.write(`conveyor: built the web page into dist/ui in ${Date.now() - started} ms\n`);
  }
}
