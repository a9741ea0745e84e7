// `npm run bench:ui`: the web page's log viewer in real chromium on a 1,000,000-line log,
// against a plain <pre> of 10,000 lines of the same kind (the way a page without
// virtualization shows a log) measured in the same run. Prints medians of --rounds (default 3):
// time to the first lines, time to the end of the log (End pressed, last line shown), and the
// page's JS heap after a garbage collection. Nothing here fails on a figure.
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { chromiumPath, ensureUiBuilt, launchBrowser, openPage } from '../test/browser/support.ts';
import { startServer } from './lib/server.ts';
import { fmt, mb, median } from './lib/stats.ts';

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, lines: { type: 'string', default: '1000000' } } });
const rounds = Number(flags.rounds);
const bigLines = Number(flags.lines);
const BASELINE_LINES = 10_000;

async function post(base: string, name: string, command: string): Promise<string> {
  const res = await fetch(`${base}/resources/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, resource: 'pipeline', spec: { steps: [{ name: 'count', command }] } }),
  });
  const body = (await res.json()) as { runid: string };
  for (;;) {
    const run = (await (await fetch(`${base}/runs/${body.runid}`)).json()) as { phase: string };
    if (run.phase === 'Succeeded') return body.runid;
    if (run.phase === 'Failed' || run.phase === 'Cancelled') throw new Error(`${name}: run ${run.phase}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function heapAfterGc(page: Page): Promise<number> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === 'JSHeapUsedSize')!.value;
}

interface Sample {
  first: number;
  end: number;
  heap: number;
  domNodes: number;
}

async function viewer(page: Page, base: string, runid: string, last: number): Promise<Sample> {
  const t0 = performance.now();
  await page.goto(`${base}/ui/runs/${runid}`);
  await page.locator('.line[data-seq="2"] .msg').waitFor();
  const first = performance.now() - t0;
  await page.locator('[data-testid=log-view]').focus();
  await page.keyboard.press('End');
  await page.locator(`.line[data-seq="${last}"] .msg`).waitFor();
  const end = performance.now() - t0;
  return { first, end, heap: await heapAfterGc(page), domNodes: await page.evaluate(() => document.getElementsByTagName('*').length) };
}

// The baseline: the whole log fetched at once (upstream's GET /logs) into one <pre>.
async function plainPre(page: Page, base: string, runid: string): Promise<Sample> {
  const t0 = performance.now();
  await page.goto(`${base}/health`);
  await page.evaluate(async (id) => {
    const lines = (await (await fetch(`/logs?runid=${id}`)).json()) as { message: string }[];
    document.documentElement.innerHTML = '<body></body>';
    const pre = document.createElement('pre');
    pre.id = 'log';
    pre.textContent = lines.map((l) => l.message).join('\n');
    document.body.append(pre);
    await new Promise((r) => requestAnimationFrame(() => r(null)));
  }, runid);
  await page.locator('#log').waitFor();
  const first = performance.now() - t0;
  await page.evaluate(async () => {
    window.scrollTo(0, document.body.scrollHeight);
    await new Promise((r) => requestAnimationFrame(() => r(null)));
  });
  const end = performance.now() - t0;
  return { first, end, heap: await heapAfterGc(page), domNodes: await page.evaluate(() => document.getElementsByTagName('*').length) };
}

ensureUiBuilt();
const server = await startServer({ label: 'ui' });
const browser = await launchBrowser();
try {
  process.stdout.write(`chromium ${chromiumPath()}, ${rounds} rounds; writing the logs...\n`);
  const big = await post(server.url, 'bench-million', `seq ${bigLines}`);
  const small = await post(server.url, 'bench-baseline', `seq ${BASELINE_LINES}`);
  const samples: Record<'viewer' | 'pre', Sample[]> = { viewer: [], pre: [] };
  for (let i = 0; i < rounds; i++) {
    // Alternating, each in a fresh browser context, so neither gets a warmer cache.
    for (const kind of ['pre', 'viewer'] as const) {
      const { page } = await openPage(browser);
      samples[kind].push(kind === 'viewer' ? await viewer(page, server.url, big, bigLines + 2) : await plainPre(page, server.url, small));
      await page.context().close();
    }
  }
  const m = (kind: 'viewer' | 'pre', key: keyof Sample) => median(samples[kind].map((s) => s[key]));
  const rows = [
    ['time to first lines', `${fmt(m('viewer', 'first'), 0)} ms`, `${fmt(m('pre', 'first'), 0)} ms`, fmt(m('viewer', 'first') / m('pre', 'first'))],
    ['time to the end', `${fmt(m('viewer', 'end'), 0)} ms`, `${fmt(m('pre', 'end'), 0)} ms`, fmt(m('viewer', 'end') / m('pre', 'end'))],
    ['JS heap after GC', mb(m('viewer', 'heap')), mb(m('pre', 'heap')), fmt(m('viewer', 'heap') / m('pre', 'heap'))],
    ['DOM elements', fmt(m('viewer', 'domNodes'), 0), fmt(m('pre', 'domNodes'), 0), fmt(m('viewer', 'domNodes') / m('pre', 'domNodes'))],
  ];
  const header = ['median', `viewer, ${bigLines.toLocaleString('en-US')} lines`, `<pre>, ${BASELINE_LINES.toLocaleString('en-US')} lines`, 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(`\n${line(header)}\n${rows.map(line).join('\n')}\n`);
} finally {
  await browser.close();
  await server.stop();
}
