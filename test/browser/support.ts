// Real Debian chromium driven by playwright-core (installed by scripts/deps/chromium.sh; no
// browser download), against a real local-mode server with the built page.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../support/server.ts';

export function chromiumPath(): string {
  const candidates = [process.env.CONVEYOR_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no chromium found (tried ${candidates.join(', ')}); scripts/deps/chromium.sh installs it`);
  return found;
}

/** Builds the page when its sources are newer than the build (as npm start does). */
export function ensureUiBuilt(): void {
  execFileSync(process.execPath, ['scripts/build-ui.ts', '--if-stale'], { cwd: repoRoot, stdio: 'inherit' });
}

export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // The sandbox needs user namespaces that CI containers (and root) often lack.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', ...extraArgs],
  });
}

export interface PageOptions {
  width?: number;
  height?: number;
  colorScheme?: 'light' | 'dark';
}

export async function openPage(browser: Browser, options: PageOptions = {}): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
    colorScheme: options.colorScheme ?? 'light',
    reducedMotion: 'reduce',
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // An answer of 4xx is the API speaking (the page shows it), not a script error.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console: ${msg.text()}`);
  });
  return { context, page, errors };
}
