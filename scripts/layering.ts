// The folder roles of docs/DESIGN (src/ one folder per role) as dependency-cruiser rules:
// a role imports only roles below it, `domain` imports nothing of ours (nor Node's I/O
// modules), and no module imports itself round a cycle. Run: node scripts/layering.ts
//
// dependency-cruiser reads TypeScript through the `typescript` package's JavaScript API,
// which TypeScript 7 (the native compiler this project uses) no longer has. So the sources
// are first turned into JavaScript by esbuild (keeping every import statement, as
// verbatimModuleSyntax does) in a temporary mirror, and cruised there. Type-only imports
// vanish in that step: the rules are about what runs.
import { cruise, type IForbiddenRuleType, type IReporterOutput } from 'dependency-cruiser';
import { transformSync } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

// Highest first. A module may import its own role and any role listed after it.
export const ROLES: readonly { role: string; path: string; why: string }[] = [
  { role: 'ui', path: '^src/ui/', why: 'the web page, a browser bundle: nothing of the server (own rule below)' },
  { role: 'entry', path: '^src/(main[.]ts$|cli/)', why: 'the conveyor command and its wiring' },
  { role: 'serve', path: '^src/serve/', why: 'assembles an engine per mode and runs the server' },
  { role: 'api', path: '^src/api/', why: 'the Koa app, websocket and SSE endpoints' },
  { role: 'controller', path: '^src/controller/', why: 'queues, reconcilers, the local scheduler, leader election' },
  { role: 'log-sources', path: '^src/logs/sources/', why: 'pod log followers: read step status through the driver' },
  { role: 'drivers', path: '^src/drivers/', why: 'turn runs into work: processes, Jobs, external drivers' },
  { role: 'logs', path: '^src/logs/(?!sources/)', why: 'the log hub and archive' },
  { role: 'store', path: '^src/store/', why: 'the Store and its two implementations' },
  { role: 'kube', path: '^src/kube/', why: 'Kubernetes plumbing: names, client config, reviews' },
  { role: 'observability', path: '^src/observability/', why: 'metrics and supervision of background work' },
  { role: 'config', path: '^src/config[.]ts$', why: 'flags, environment, defaults' },
  { role: 'domain', path: '^src/domain/', why: 'types, validation, rules: no I/O' },
];

const NODE_IO = ['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'child_process', 'dgram', 'dns', 'tls', 'sqlite', 'worker_threads', 'cluster'];

export function layeringRules(): IForbiddenRuleType[] {
  const rules: IForbiddenRuleType[] = ROLES.slice(1).map(({ role, path }, i) => ({
    name: `${role}-imports-no-higher-role`,
    comment: `${role} may import only the roles below it: ${ROLES.slice(i + 2).map((r) => r.role).join(', ') || 'none'}`,
    severity: 'error',
    from: { path },
    to: { path: ROLES.slice(0, i + 1).map((r) => `(${r.path})`).join('|') },
  }));
  rules.push(
    {
      name: 'domain-imports-nothing-of-ours',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'domain-does-no-io',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { dependencyTypes: ['core'], path: `^(node:)?(${NODE_IO.join('|')})$` },
    },
    {
      name: 'ui-imports-only-ui',
      comment: 'the web page uses only the public API, never server code',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/', pathNot: '^src/ui/' },
    },
    { name: 'no-cycles', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
  );
  return rules;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? tsFiles(path) : /\.tsx?$/.test(path) && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** src/ files that belong to no role (a new folder must be given its place in ROLES). */
export function unassigned(): string[] {
  return tsFiles(join(root, 'src'))
    .map((f) => relative(root, f))
    .filter((f) => !ROLES.some((r) => new RegExp(r.path).test(f)));
}

/** Every violation, as `rule: from → to` lines naming the .ts sources. */
export async function checkLayering(): Promise<string[]> {
  const mirror = mkdtempSync(join(tmpdir(), 'conveyor-layering-'));
  try {
    for (const file of tsFiles(join(root, 'src'))) {
      const loader = file.endsWith('.tsx') ? 'tsx' : 'ts';
      const { code } = transformSync(readFileSync(file, 'utf8'), { loader, format: 'esm', jsx: 'automatic', jsxImportSource: 'preact', tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } } });
      const js = code.replace(/(['"])(\.{1,2}\/[^'"\n]*)\.tsx?\1/g, '$1$2.js$1');
      const target = join(mirror, relative(root, file)).replace(/\.tsx?$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, js);
    }
    const result: IReporterOutput = await cruise(['src'], {
      baseDir: mirror,
      ruleSet: { forbidden: layeringRules() },
      validate: true,
      doNotFollow: { path: 'node_modules' },
      outputType: 'json',
    });
    const output = typeof result.output === 'string' ? JSON.parse(result.output) : result.output;
    const named = (p: string) => (existsSync(join(root, p.replace(/\.js$/, '.tsx'))) ? p.replace(/\.js$/, '.tsx') : p.replace(/\.js$/, '.ts'));
    const modules: number = output.summary.totalCruised;
    if (modules < tsFiles(join(root, 'src')).length) throw new Error(`dependency-cruiser read ${modules} modules, fewer than src/ has`);
    return (output.summary.violations as { rule: { name: string }; from: string; to: string; cycle?: { name: string }[] }[]).map(
      (v) => `${v.rule.name}: ${named(v.from)} → ${named(v.to)}${v.cycle ? ` (cycle: ${v.cycle.map((c) => named(c.name)).join(' → ')})` : ''}`,
    );
  } finally {
    rmSync(mirror, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const problems = [...unassigned().map((f) => `no role for ${f}: add its folder to ROLES in scripts/layering.ts`), ...(await checkLayering())];
  for (const p of problems) console.log(p);
  console.log(problems.length === 0 ? 'layering: ok' : `layering: ${problems.length} violation(s)`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
