// The web page against a server in Kubernetes mode on the real cluster, in real chromium:
// the API needs a Kubernetes token (TokenReview, SubjectAccessReview), so the page asks for
// one, and with it shows a run whose steps run as containers, its log arriving live over
// the websocket (token as subprotocol), each step turning green.
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { ensureUiBuilt, launchBrowser, openPage } from '../browser/support.ts';
import { pipeline, request } from '../support/http.ts';
import type { TestServer } from '../support/server.ts';
import { startKubernetesServer } from './support/conveyor.ts';
import { createScenarioNamespace, deleteScenarioNamespace } from './support/namespaces.ts';

describe('web page in chromium (kubernetes mode)', function () {
  this.timeout(180_000);
  let namespace: string;
  let server: TestServer;
  let browser: Browser;
  let token: string;

  before(async () => {
    ensureUiBuilt();
    namespace = await createScenarioNamespace();
    server = await startKubernetesServer(namespace);
    // The token the test helpers send this server: a ServiceAccount's, from TokenRequest.
    token = server.token!;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    server?.cleanup();
    if (namespace) deleteScenarioNamespace(namespace);
  });

  it('asks for a token, then follows a run live to its end with each step green', async () => {
    const created = await request(server.url, 'POST', '/resources', pipeline('ui-on-kubernetes', [
      ['first', 'echo first-from-a-container'],
      ['second', 'sleep 2; echo second-from-a-container'],
    ]));
    expect(created.status).to.equal(201);
    const { page, errors } = await openPage(browser);
    let frames = 0;
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    page.on('websocket', (ws) => ws.on('framereceived', () => frames++));
    await page.goto(`${server.url}/ui/runs/${created.body.runid}`);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const step = (name: string, phase: string) => page.locator(`[data-testid=steps] [data-step="${name}"][data-phase="${phase}"]`);
    await step('first', 'Succeeded').waitFor({ timeout: 120_000 });
    await page.locator('.line .msg', { hasText: 'first-from-a-container' }).waitFor({ timeout: 60_000 });
    await step('second', 'Succeeded').waitFor({ timeout: 120_000 });
    await page.locator('.line .msg', { hasText: 'second-from-a-container' }).waitFor({ timeout: 60_000 });
    await page.locator('[data-testid=run-phase] [data-phase=Succeeded]').waitFor();
    expect(frames, 'log frames over the websocket').to.be.above(0);
    for (const url of urls) expect(url).not.to.include(token.slice(-20));
    expect(errors).to.deep.equal([]);
    await page.context().close();
  });
});
