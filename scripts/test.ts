// Runs test tiers with mocha's programmatic API and closes with the one line CI reads:
// `N passed, N failed` (plus `, N skipped` when any test was pending).
// Usage: node scripts/test.ts [unit] [integration] [cluster]   (default: unit integration)
// The cluster tier also runs the integration scenarios that do not depend on local
// processes against servers in Kubernetes mode (CONVEYOR_TEST_MODE=kubernetes).
import Mocha from 'mocha';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const tiers = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const selected = tiers.length > 0 ? tiers : ['unit', 'integration'];

function testFiles(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (entry.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const mocha = new Mocha({
  timeout: Number(process.env.CONVEYOR_TEST_TIMEOUT ?? 30_000),
  reporter: process.env.CONVEYOR_TEST_REPORTER ?? 'spec',
  grep: process.env.CONVEYOR_TEST_GREP,
});
// Integration files whose scenarios hold in both modes (where the modes differ, they say so).
const BOTH_MODES = ['api.test.ts', 'logs.test.ts', 'openapi.test.ts', 'edges.test.ts', 'drivers.test.ts', 'upstream-client.test.ts'];
for (const tier of selected) {
  for (const file of testFiles(join(root, 'test', tier))) mocha.addFile(file);
}
if (selected.includes('cluster') && !selected.includes('integration')) {
  process.env.CONVEYOR_TEST_MODE = 'kubernetes';
  for (const file of BOTH_MODES) mocha.addFile(join(root, 'test', 'integration', file));
}
// A failed test shows the errors the servers it talked to logged (their 500s say why).
const { serverErrors } = await import('../test/support/server.ts');
const shown = new Set<string>();
mocha.rootHooks({
  afterEach(this: Mocha.Context) {
    const fresh = serverErrors().filter((line) => !shown.has(line));
    fresh.forEach((line) => shown.add(line));
    if (this.currentTest?.state === 'failed' && fresh.length > 0) console.log(`    server errors:\n${fresh.slice(-5).map((l) => `      ${l.slice(0, 2000)}`).join('\n')}`);
  },
});
await mocha.loadFilesAsync();
const runner = mocha.run();
runner.on('end', () => {
  const { passes = 0, failures = 0, pending = 0 } = runner.stats ?? {};
  const line = `${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}`;
  if (process.env.CONVEYOR_TEST_SUMMARY) writeFileSync(process.env.CONVEYOR_TEST_SUMMARY, `${passes} ${failures} ${pending}\n`);
  console.log(line);
  // Servers or sockets a failed test left open must not keep CI waiting.
  setTimeout(() => process.exit(failures > 0 ? 1 : 0), 200).unref();
  process.exitCode = failures > 0 ? 1 : 0;
});
