// The page behind the API's authentication: a server with a bearer token asks the page for
// it, the page keeps it for the tab only, sends it as a header and as the websocket
// subprotocol, never in a URL, and asks again when it is refused.
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { pipeline, request } from '../support/http.ts';
import { startServer, type TestServer } from '../support/server.ts';
import { ensureUiBuilt, launchBrowser, openPage } from './support.ts';

const TOKEN = 'ui-test-token-0123456789abcdef';

describe('web page with a token (local mode)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;

  before(async function () {
    this.timeout(120_000);
    ensureUiBuilt();
    server = await startServer({ env: { CONVEYOR_TOKEN: TOKEN } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('asks for the token, keeps it for the tab, sends it by header and subprotocol, never in a URL', async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const created = await request(server.url, 'POST', '/resources', pipeline('behind-auth', [['hello', 'while [ ! -f "$CONVEYOR_WORKSPACE/go" ]; do sleep 0.05; done; echo hello-through-the-subprotocol']]), auth);
    expect(created.status).to.equal(201);
    const { page, errors } = await openPage(browser);
    const urls: string[] = [];
    let frames = 0;
    page.on('request', (r) => urls.push(r.url()));
    page.on('websocket', (ws) => {
      urls.push(ws.url());
      ws.on('framereceived', () => frames++);
    });
    await page.goto(`${server.url}/ui/runs/${created.body.runid}`);
    // 401: the login comes up. A wrong token is refused and it comes up again.
    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('the one given was refused').waitFor();
    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The run, then its log live over the websocket (the token as its subprotocol).
    await page.locator('[data-testid=run-phase] [data-phase=Running]').waitFor();
    await page.locator('[data-testid=log-status]', { hasText: 'live' }).waitFor();
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    writeFileSync(join(server.dataDir, 'workspaces', created.body.runid, 'go'), '');
    await page.locator('.line .msg', { hasText: 'hello-through-the-subprotocol' }).waitFor();
    await page.locator('[data-testid=run-phase] [data-phase=Succeeded]').waitFor();
    expect(frames, 'log frames over the websocket').to.be.above(0);
    expect(await page.evaluate(() => sessionStorage.getItem('conveyor.token'))).to.equal(TOKEN);
    expect(await page.evaluate(() => localStorage.length)).to.equal(0);
    expect(urls.length).to.be.above(3);
    for (const url of urls) expect(url).not.to.include(TOKEN).and.not.to.include(Buffer.from(TOKEN).toString('base64url'));
    // A tab of its own (a new browser context) does not have it.
    const other = await openPage(browser);
    await other.page.goto(`${server.url}/ui/`);
    await other.page.getByLabel('Token').waitFor();
    await other.page.context().close();
    // Signing out forgets it.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('conveyor.token'))).to.equal(null);
    expect(errors).to.deep.equal([]);
    await page.context().close();
  });
});
