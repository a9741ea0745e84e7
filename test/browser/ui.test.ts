// The web page in real Debian chromium (playwright-core) against a real local-mode server:
// the seed tutorial through the page, a live log, a failing step, cancel, a deep link to a
// line, a 1,000,000-line log, keyboard use, contrast, narrow and dark layouts, screenshots.
import { expect } from 'chai';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { pipeline, request, waitForRun } from '../support/http.ts';
import { repoRoot, startServer, type TestServer } from '../support/server.ts';
import { ensureUiBuilt, launchBrowser, openPage } from './support.ts';

const GREEN_BADGE = 'rgb(17, 99, 41)'; // --ok-fg in the light theme

async function createFromForm(page: Page, base: string, source: string): Promise<string> {
  await page.goto(`${base}/ui/pipelines/-/new`);
  await page.getByLabel('Pipeline as JSON or YAML').fill(source);
  await page.getByRole('button', { name: 'Create and run' }).click();
  await page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}$/);
  return page.url().split('/').at(-1)!;
}

const stepPhase = (page: Page, step: string) => page.locator(`[data-testid=steps] [data-step="${step}"]`);
const logLine = (page: Page, text: string) => page.locator('[data-testid=log-view] .line .msg', { hasText: text });

describe('web page in chromium (local mode)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  before(async function () {
    this.timeout(120_000);
    ensureUiBuilt();
    server = await startServer({ args: ['--concurrency', '4'] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
  });
  beforeEach(async () => {
    ({ page, errors } = await openPage(browser));
  });
  afterEach(async () => {
    await page.context().close();
    expect(errors, 'no script errors on the page').to.deep.equal([]);
  });

  it('runs the seed tutorial: the seed pipeline created from the form, its log, each step green', async () => {
    await page.goto(`${server.url}/`);
    expect(new URL(page.url()).pathname).to.equal('/ui/');
    await page.getByRole('link', { name: 'New pipeline' }).click();
    const seed = readFileSync(join(repoRoot, 'examples/seed-pipeline.json'), 'utf8');
    const runid = await createFromForm(page, server.url, seed);
    for (const step of ['print-working-directory', 'list-files', 'show-os-info']) {
      await stepPhase(page, step).and(page.locator('[data-phase=Succeeded]')).waitFor();
      expect(await stepPhase(page, step).locator('.badge').evaluate((el) => getComputedStyle(el).color)).to.equal(GREEN_BADGE);
      await logLine(page, `Executing step: ${step}`).waitFor();
    }
    await page.locator('[data-testid=run-phase] [data-phase=Succeeded]').waitFor();
    await logLine(page, runid).first().waitFor(); // pwd prints the run's workspace
    expect(await page.locator('[data-testid=log-view] .line .msg', { hasText: 'Step completed successfully' }).count()).to.equal(3);
    // The run list shows it, newest first, with its pipeline.
    await page.getByRole('link', { name: 'Runs', exact: true }).click();
    const row = page.locator(`[data-testid=runs] tr[data-runid="${runid}"]`);
    await row.locator('[data-phase=Succeeded]').waitFor();
    expect(await row.textContent()).to.include('ubuntu-pipeline-6');
  });

  it('shows the log arriving live and steps turning green one by one, without a reload', async () => {
    const started = await request(server.url, 'POST', '/resources', pipeline('live-log', [
      ['first', 'echo first-line-live'],
      ['second', `while [ ! -f "$CONVEYOR_WORKSPACE/go" ]; do sleep 0.05; done; echo second-line-live`],
    ]));
    const runid = started.body.runid as string;
    await page.goto(`${server.url}/ui/runs/${runid}`);
    await logLine(page, 'first-line-live').waitFor();
    await stepPhase(page, 'first').and(page.locator('[data-phase=Succeeded]')).waitFor();
    await stepPhase(page, 'second').and(page.locator('[data-phase=Running]')).waitFor();
    expect(await logLine(page, 'second-line-live').count()).to.equal(0);
    // Let the second step finish: its line and its state reach the open page by themselves.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(server.dataDir, 'workspaces', runid, 'go'), '');
    await logLine(page, 'second-line-live').waitFor();
    await stepPhase(page, 'second').and(page.locator('[data-phase=Succeeded]')).waitFor();
    await page.locator('[data-testid=run-phase] [data-phase=Succeeded]').waitFor();
    await page.locator('[data-testid=log-status]', { hasText: 'complete' }).waitFor();
  });

  it('shows a failing step red with its exit code, later steps skipped', async () => {
    const runid = await createFromForm(page, server.url, 'name: fails\nresource: pipeline\nspec:\n  steps:\n    - name: ok\n      command: "true"\n    - name: boom\n      command: echo about to fail; exit 3\n    - name: never\n      command: echo not run\n');
    await stepPhase(page, 'boom').and(page.locator('[data-phase=Failed]')).waitFor();
    expect(await stepPhase(page, 'boom').textContent()).to.include('exit 3');
    await stepPhase(page, 'never').and(page.locator('[data-phase=Skipped]')).waitFor();
    await page.locator('[data-testid=run-phase] [data-phase=Failed]').waitFor();
    await logLine(page, 'Step failed with exit code 3').waitFor();
    expect(await logLine(page, 'not run').count()).to.equal(0);
    expect((await request(server.url, 'GET', `/runs/${runid}`)).body.phase).to.equal('Failed');
  });

  it('shows the server\'s validation error at the field it names', async () => {
    await page.goto(`${server.url}/ui/pipelines/-/new`);
    await page.getByLabel('Pipeline as JSON or YAML').fill('name: bad-steps\nresource: pipeline\nspec:\n  steps:\n    - name: one\n      command: echo\n    - name: two\n');
    await page.getByRole('button', { name: 'Create and run' }).click();
    const error = page.locator('#pipeline-error');
    await error.waitFor();
    expect(await error.getAttribute('data-field')).to.equal('spec.steps[1].command');
    expect(await error.getAttribute('data-line')).to.equal('7');
    expect(await error.textContent()).to.include('command is required');
    expect(await page.getByLabel('Pipeline as JSON or YAML').getAttribute('aria-invalid')).to.equal('true');
    expect(new URL(page.url()).pathname).to.equal('/ui/pipelines/-/new');
  });

  it('cancels a running run from its page', async () => {
    const started = await request(server.url, 'POST', '/resources', pipeline('to-cancel', [['wait', 'echo waiting; sleep 60'], ['after', 'echo never']]));
    await page.goto(`${server.url}/ui/runs/${started.body.runid}`);
    await logLine(page, 'waiting').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('[data-testid=run-phase] [data-phase=Cancelled]').waitFor();
    await page.locator('[data-testid=log-view] .line .msg', { hasText: /^Run cancelled$/ }).waitFor();
    await stepPhase(page, 'after').and(page.locator('[data-phase=Skipped]')).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).to.equal(0);
  });

  it('opens a deep link to a line: in view, marked, and only the lines in view in the DOM', async () => {
    const started = await request(server.url, 'POST', '/resources', pipeline('deep-link', [['count', 'seq 5000']]));
    await waitForRun(server.url, started.body.runid);
    await page.goto(`${server.url}/ui/runs/${started.body.runid}#L4321`);
    const line = page.locator('.line.selected[data-seq="4321"]');
    await line.waitFor();
    // The row is there at once; its text once its page of lines has come.
    await line.locator('.msg', { hasText: /^4320$/ }).waitFor();
    expect(await line.isVisible()).to.equal(true);
    const box = (await line.boundingBox())!;
    const view = (await page.locator('[data-testid=log-view]').boundingBox())!;
    expect(box.y).to.be.within(view.y, view.y + view.height - box.height);
    expect(await page.locator('.line').count()).to.be.below(150);
    // A line number is a link to its line.
    await page.locator('.line[data-seq="4325"] .ln').click();
    expect(new URL(page.url()).hash).to.equal('#L4325');
    await page.locator('.line.selected[data-seq="4325"]').waitFor();
  });

  it('keeps the run list live, filters it by pipeline and phase, and pages through it', async () => {
    await page.goto(`${server.url}/ui/`);
    await page.locator('[data-testid=runs]').waitFor();
    // A run started elsewhere appears on the open page and moves on to its end.
    const live = await request(server.url, 'POST', '/resources', pipeline('list-live', [['s', 'sleep 0.3']]));
    await page.locator(`tr[data-runid="${live.body.runid}"] [data-phase=Running], tr[data-runid="${live.body.runid}"] [data-phase=Pending]`).first().waitFor();
    await page.locator(`tr[data-runid="${live.body.runid}"] [data-phase=Succeeded]`).waitFor();
    expect(await page.locator('[data-testid=runs] tbody tr').first().getAttribute('data-runid')).to.equal(live.body.runid);
    // 27 runs of one pipeline, 2 of them failed: a page of 25, then the rest.
    let last = '';
    for (let i = 0; i < 27; i++) {
      const res = await request(server.url, i < 25 ? (i === 0 ? 'POST' : 'PUT') : 'PUT', i === 0 ? '/resources' : '/resources/pipeline/paged', i === 0 ? pipeline('paged', [['s', 'true']]) : { spec: pipeline('x', [['s', i >= 25 ? 'exit 2' : 'true']]).spec });
      last = res.body.runid;
    }
    await waitForRun(server.url, last);
    await page.getByLabel('Pipeline').fill('paged');
    await page.getByLabel('Pipeline').press('Enter');
    await page.waitForURL(/pipeline=paged/);
    await page.locator(`tr[data-runid="${last}"]`).waitFor();
    expect(await page.locator('[data-testid=runs] tbody tr').count()).to.equal(25);
    await page.getByRole('button', { name: 'Older' }).click();
    await page.locator('.pager', { hasText: 'Page 2' }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=runs] tbody tr').length === 2);
    await page.getByRole('button', { name: 'Newer' }).click();
    await page.locator(`tr[data-runid="${last}"]`).waitFor();
    await page.getByLabel('Phase').selectOption('Failed');
    await page.waitForURL(/phase=Failed/);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=runs] tbody tr').length === 2);
    expect(await page.locator('[data-testid=runs] tbody [data-phase=Failed]').count()).to.equal(2);
  });

  it('lists pipelines with their last run, edits one, and re-runs a run', async () => {
    const first = await request(server.url, 'POST', '/resources', pipeline('editable', [['hello', 'echo version-one']]));
    await waitForRun(server.url, first.body.runid);
    await page.goto(`${server.url}/ui/pipelines`);
    const row = page.locator('[data-testid=pipelines] tr', { hasText: 'editable' });
    await row.locator(`a[href="/ui/runs/${first.body.runid}"] [data-phase=Succeeded]`).waitFor();
    await row.getByRole('link', { name: 'editable', exact: true }).click();
    await page.waitForURL('**/ui/pipelines/editable');
    await page.getByText('Definition, version 1').click();
    const editor = page.getByLabel('Pipeline as JSON or YAML');
    await editor.fill((await editor.inputValue()).replace('echo version-one', 'echo version-two'));
    await page.getByRole('button', { name: 'Save and run' }).click();
    await page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}$/);
    await logLine(page, 'version-two').waitFor();
    const second = page.url().split('/').at(-1)!;
    expect((await request(server.url, 'GET', `/runs/${second}`)).body.version).to.equal(2);
    // Re-running the first run runs its own spec (version 1's) again, as version 3.
    await page.goto(`${server.url}/ui/runs/${first.body.runid}`);
    await page.getByRole('button', { name: 'Re-run' }).click();
    await page.waitForURL((url) => /\/ui\/runs\/[0-9a-f-]{36}$/.test(url.pathname) && !url.pathname.endsWith(first.body.runid));
    await logLine(page, 'version-one').waitFor();
    const third = page.url().split('/').at(-1)!;
    expect((await request(server.url, 'GET', `/runs/${third}`)).body.version).to.equal(3);
  });

  it('opens a 1,000,000-line log and stays responsive: paged, virtualized, searchable', async function () {
    this.timeout(120_000);
    const started = await request(server.url, 'POST', '/resources', pipeline('million', [['count', 'seq 1000000'], ['after', 'echo the end']]));
    await waitForRun(server.url, started.body.runid, undefined, 100_000);
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`${server.url}/ui/runs/${started.body.runid}`);
    await page.locator('.line[data-seq="2"] .msg', { hasText: /^1$/ }).waitFor();
    expect(await page.locator('[data-testid=log-count]').textContent()).to.equal('1000005');
    // End jumps to the tail; the lines there are fetched as one page, not the whole log.
    await page.locator('[data-testid=log-view]').focus();
    await page.keyboard.press('End');
    await page.locator('.line[data-seq="1000004"] .msg', { hasText: 'the end' }).waitFor();
    // The middle, by dragging the scroll position there.
    await page.locator('[data-testid=log-view]').evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await page.locator('.line[data-seq="500002"] .msg', { hasText: /^500001$/ }).waitFor();
    // Search finds a line far away through the server.
    await page.getByLabel('Search the log').fill('999999');
    await page.getByRole('button', { name: 'Find next' }).click();
    await page.locator('.line.selected[data-seq="1000000"]').waitFor();
    expect(await page.locator('.line').count(), 'rows in the DOM').to.be.below(150);
    const logReads = requests.filter((u) => u.includes('/logs?'));
    expect(logReads.length).to.be.below(20);
    for (const url of logReads) expect(Number(new URL(url).searchParams.get('limit'))).to.be.at.most(1000);
    const heap = await page.evaluate(() => (performance as unknown as { memory: { usedJSHeapSize: number } }).memory.usedJSHeapSize);
    // A million lines held as objects would be far above this (each line ~150 bytes and more).
    expect(heap, 'JS heap').to.be.below(50 * 1024 * 1024);
    // Still responsive: a click on a line number answers.
    await page.locator('.line[data-seq="1000001"] .ln').click();
    await page.locator('.line.selected[data-seq="1000001"]').waitFor();
  });
});
