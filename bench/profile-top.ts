// Prints the hottest functions of a V8 .cpuprofile (from `npm run bench -- --profile`):
// self time and total (inclusive) time, as a share of the sampled time.
// Usage: node bench/profile-top.ts FILE.cpuprofile [N]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { repoRoot } from './lib/server.ts';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

export function profileTop(file: string, n = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const key = (f: CallFrame) => {
    const where = f.url ? relative(repoRoot, f.url.replace(/^file:\/\//, '')) : '';
    return `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (const [id, us] of selfUs) {
    all += us;
    const node = byId.get(id)!;
    self.set(key(node.callFrame), (self.get(key(node.callFrame)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const idle = self.get('(idle) ') ?? 0;
  const busy = all - idle;
  const table = (m: Map<string, number>) =>
    [...m]
      .filter(([k]) => !['(idle) ', '(root) ', '(program) '].includes(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return (
    `sampled ${(all / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s (idle ${(idle / 1e6).toFixed(2)} s, program/GC ${((self.get('(program) ') ?? 0) / 1e6 + (self.get('(garbage collector) ') ?? 0) / 1e6).toFixed(2)} s)\n` +
    `self time, % of busy:\n${table(self)}\ntotal time (inclusive), % of busy:\n${table(total)}`
  );
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/profile-top.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  console.log(profileTop(file, n ? Number(n) : 25));
}
