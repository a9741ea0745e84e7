// Background work is supervised: failures reach the log and a metric, never an unhandled
// rejection (which ends the process), and the sources keep it so.
import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { background, reportBackgroundError, retrying, superviseWith } from '../../src/observability/background.ts';

const srcRoot = resolve(import.meta.dirname, '../../src');

// The server's sources; src/ui/ is the browser page, which reports its own errors.
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (path === join(srcRoot, 'ui')) return [];
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

// `void f()` (or `void (async () => ...)()`) drops a promise's rejection on the floor;
// `.catch(() => undefined)` hides the error it handles. Neither is allowed in src/ unless
// the line says where the error is handled (`// handled: ...`).
// (`void` as a type, `(): void`, `Promise<void>`, is not an expression and is not matched.)
const floating = /(^|[^\w:<|])void\s+[\w$(.#]/;
const swallowed = /\.catch\(\s*\(\)\s*=>\s*(undefined|\{\s*\})\s*\)/;

function offences(pattern: RegExp, allow: (line: string) => boolean = () => false): string[] {
  const found: string[] = [];
  for (const file of sources(srcRoot)) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        // A line may say where its error is handled instead: `// handled: <where>`.
        if (pattern.test(code) && !allow(code) && !/\/\/ handled: \S/.test(line)) found.push(`src/${relative(srcRoot, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  return found;
}

class Recorder {
  errors: { task: string; err: unknown }[] = [];
  counts = new Map<string, number>();
  readonly logger = {
    error: (obj: { task: string; err: unknown }) => this.errors.push(obj),
    warn: () => undefined,
  };
  readonly counter = { inc: ({ task }: { task: string }) => this.counts.set(task, (this.counts.get(task) ?? 0) + 1) };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('supervision of background work', () => {
  let rec: Recorder;
  beforeEach(() => {
    rec = new Recorder();
    superviseWith({ logger: rec.logger as never, counter: rec.counter });
  });

  it('no `void promise` in src/: background work goes through background()', () => {
    expect(offences(floating)).to.deep.equal([]);
  });

  it('no `.catch(() => undefined)` in src/ (an aborted sleep excepted): errors are reported', () => {
    expect(offences(swallowed, (line) => /sleep\(/.test(line))).to.deep.equal([]);
  });

  it('a rejected background promise is logged once and counted by task, not raised', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      background('listener', Promise.reject(new Error('boom')));
      background('listener', () => {
        throw new Error('sync boom');
      });
      background('listener', async () => 'fine');
      await settle();
      await settle();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).to.deep.equal([]);
    expect(rec.errors.map((e) => (e.err as Error).message)).to.deep.equal(['boom', 'sync boom']);
    expect(rec.counts.get('listener')).to.equal(2);
  });

  it('retrying() backs off exponentially, and reports only the final failure', async () => {
    const waits: number[] = [];
    const sleep = async (ms: number) => {
      waits.push(ms);
    };
    let calls = 0;
    const value = await retrying('flaky', async () => (++calls < 3 ? Promise.reject(new Error('again')) : 'ok'), { baseMs: 100, sleep });
    expect(value).to.equal('ok');
    expect(calls).to.equal(3);
    expect(waits).to.have.lengthOf(2);
    expect(waits[0]).to.be.within(50, 100);
    expect(waits[1]).to.be.within(100, 200);
    expect(rec.errors).to.deep.equal([]);

    const failing = retrying('broken', async () => Promise.reject(new Error('never')), { attempts: 3, baseMs: 10, maxMs: 15, sleep });
    await failing.catch((err: Error) => expect(err.message).to.equal('never'));
    expect(rec.counts.get('broken')).to.equal(1);
    expect(waits.slice(2).every((ms) => ms <= 15)).to.equal(true);
  });

  it('a failure retrying() reported is not reported again by background()', async () => {
    background('outer', retrying('inner', async () => Promise.reject(new Error('once')), { attempts: 2, baseMs: 1, sleep: async () => undefined }));
    await settle();
    await settle();
    expect(rec.errors.map((e) => e.task)).to.deep.equal(['inner']);
    expect(rec.counts.get('outer')).to.equal(undefined);
  });

  it('reportBackgroundError counts each failure under its task', () => {
    reportBackgroundError('a', new Error('x'));
    reportBackgroundError('a', new Error('y'));
    reportBackgroundError('b', new Error('z'));
    expect([...rec.counts]).to.deep.equal([
      ['a', 2],
      ['b', 1],
    ]);
  });
});
