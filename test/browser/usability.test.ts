// Usable by everyone: keyboard only, visible focus, WCAG AA contrast in the light and the
// dark theme, no sideways scrolling from 360 px wide; and the README's screenshots, taken
// from real runs (`npm run screenshots` writes them to docs/images).
import { expect } from 'chai';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { ensureUiBuilt, launchBrowser, openPage } from './support.ts';

// Text elements whose contrast against what is behind them must be at least 4.5:1.
const TEXT = 'h1, h2, th, td, a, button, label, .badge, .muted, .step-name, .step-meta, .log-status, .ln, .msg span, .msg, dt, dd, p';

// Runs in the page: the WCAG contrast of each visible text element against the first
// opaque background behind it; answers the failing ones.
function lowContrast(selector: string): { checked: number; failing: string[] } {
  const parse = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
  const lum = ([r, g, b]: number[]) => {
    const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
  };
  const background = (el: Element | null): number[] => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3]! > 0.5)) return c.slice(0, 3);
    }
    return parse(getComputedStyle(document.body).backgroundColor).slice(0, 3);
  };
  const failing: string[] = [];
  let checked = 0;
  for (const el of document.querySelectorAll(selector)) {
    const rect = el.getBoundingClientRect();
    if (!rect.width || !rect.height || !el.textContent?.trim()) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || (el as HTMLButtonElement).disabled) continue;
    checked++;
    const fg = lum(parse(style.color));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) failing.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
  }
  return { checked, failing };
}

describe('web page usability in chromium (local mode)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  let runid: string;
  let failedRunid: string;

  before(async function () {
    this.timeout(120_000);
    ensureUiBuilt();
    server = await startServer();
    browser = await launchBrowser();
    const colours = `printf '\\033[32mgreen\\033[0m \\033[1;31mbold red\\033[0m see https://conveyor.example/docs\\n'`;
    const ok = await request(server.url, 'POST', '/resources', pipeline('build-and-test', [
      ['checkout', 'echo "Cloning into workspace..."; echo "HEAD is now at 3f2c1d0"'],
      ['build', `${colours}; for i in 1 2 3 4 5 6; do echo "compiling module $i of 6"; done`],
      ['test', 'echo "42 passing"; echo "0 failing"'],
    ]));
    runid = ok.body.runid;
    const bad = await request(server.url, 'POST', '/resources', pipeline('nightly-lint', [['lint', 'echo "src/app.ts:3 unused variable" >&2; exit 1']]));
    failedRunid = bad.body.runid;
    await waitForRun(server.url, runid);
    await waitForRun(server.url, failedRunid);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
  });

  async function open(path: string, options: Parameters<typeof openPage>[1] = {}): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await openPage(browser, options);
    await page.goto(server.url + path);
    return { page, errors };
  }

  it('is usable with the keyboard alone, with a visible focus ring', async () => {
    const { page, errors } = await open('/ui/');
    await page.locator(`tr[data-runid="${runid}"]`).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).to.equal('Skip to content');
    const ring = await page.evaluate(() => {
      const s = getComputedStyle(document.activeElement!);
      return `${s.outlineStyle} ${s.outlineWidth}`;
    });
    expect(ring).to.equal('solid 3px');
    // Tab along to the run's link and open it with Enter.
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const label = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '');
      if (label.startsWith(`Run ${runid}`)) break;
    }
    await page.keyboard.press('Enter');
    await page.waitForURL(`**/ui/runs/${runid}`);
    await page.locator('.line .msg', { hasText: '42 passing' }).waitFor();
    // The log takes the focus and End/Home move through it.
    await page.locator('[data-testid=log-view]').focus();
    await page.keyboard.press('Home');
    await page.locator('.line[data-seq="1"]').waitFor();
    expect(errors).to.deep.equal([]);
    await page.context().close();
  });

  for (const colorScheme of ['light', 'dark'] as const) {
    it(`meets WCAG AA contrast in the ${colorScheme} theme, on the run list and a run page`, async () => {
      for (const path of ['/ui/', `/ui/runs/${runid}`, `/ui/runs/${failedRunid}`, '/ui/pipelines']) {
        const { page, errors } = await open(path, { colorScheme });
        await page.locator(path.includes('/runs/') ? '.line .msg' : 'tbody tr').first().waitFor();
        const bodyBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        expect(bodyBg).to.equal(colorScheme === 'dark' ? 'rgb(13, 17, 23)' : 'rgb(255, 255, 255)');
        const { checked, failing } = await page.evaluate(lowContrast, TEXT);
        expect(checked, 'text elements checked').to.be.above(15);
        expect(failing, `${colorScheme} ${path}`).to.deep.equal([]);
        expect(errors).to.deep.equal([]);
        await page.context().close();
      }
    });
  }

  it('renders ANSI colours and links, and fits 360 px without sideways scrolling', async () => {
    const { page } = await open(`/ui/runs/${runid}`, { width: 360, height: 740 });
    const green = page.locator('.line .msg span.fg-c2', { hasText: 'green' });
    await green.waitFor();
    expect(await page.locator('.line .msg span.fg-c1.b', { hasText: 'bold red' }).count()).to.equal(1);
    const link = page.locator('.line .msg a[href="https://conveyor.example/docs"]');
    expect(await link.getAttribute('rel')).to.equal('noopener noreferrer');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(360);
    await page.goto(`${server.url}/ui/`);
    await page.locator(`tr[data-runid="${runid}"]`).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(360);
    await page.context().close();
  });

  it('folds a step, searches, and downloads the raw log', async () => {
    const { page, errors } = await open(`/ui/runs/${runid}`);
    await page.locator('.line .msg', { hasText: 'compiling module 3 of 6' }).waitFor();
    const fold = page.locator('.line[data-seq="5"] button.fold');
    await fold.click();
    await page.locator('.line[data-seq="5"] .folded', { hasText: '8 lines folded' }).waitFor();
    expect(await page.locator('.line .msg', { hasText: 'compiling module' }).count()).to.equal(0);
    expect(await page.locator('.line[data-seq="14"]').isVisible()).to.equal(true);
    // A search that finds a folded line unfolds its step.
    await page.getByLabel('Search the log').fill('MODULE 4');
    await page.keyboard.press('Enter');
    await page.locator('.line.selected[data-seq="10"] mark', { hasText: 'module 4' }).waitFor();
    expect(await page.locator('.line .msg', { hasText: 'compiling module' }).count()).to.equal(6);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    const { readFileSync } = await import('node:fs');
    const text = readFileSync((await download.path())!, 'utf8');
    const lines = (await request(server.url, 'GET', `/logs?runid=${runid}`)).body.map((l: { message: string }) => `${l.message}\n`).join('');
    expect(text).to.equal(lines);
    expect(text).to.include('\x1b[32mgreen');
    expect(errors).to.deep.equal([]);
    await page.context().close();
  });

  it('takes the screenshots of the run list and a run page', async () => {
    const dir = process.env.CONVEYOR_SCREENSHOTS_DIR ? resolve(repoRoot, process.env.CONVEYOR_SCREENSHOTS_DIR) : mkdtempSync(join(tmpdir(), 'conveyor-shots-'));
    mkdirSync(dir, { recursive: true });
    const list = await open('/ui/', { width: 1100, height: 420 });
    await list.page.locator(`tr[data-runid="${runid}"] [data-phase=Succeeded]`).waitFor();
    await list.page.screenshot({ path: join(dir, 'run-list.png') });
    await list.page.context().close();
    const run = await open(`/ui/runs/${runid}#L7`, { width: 1100, height: 860 });
    await run.page.locator('.line .msg', { hasText: '0 failing' }).waitFor();
    await run.page.getByLabel('Timestamps').check();
    await run.page.screenshot({ path: join(dir, 'run-page.png') });
    await run.page.context().close();
  });
});
