/**
 * Real headless Chromium for the UI layer (test/ui): Debian's `chromium` driven by
 * playwright-core (no browser download), a fresh profile per browser, no network beyond the
 * app on loopback. Pages are signed in by typing the token into the sign-in form, as a
 * person would.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** The browser's executable (DESIGN.md section 10: Debian's package). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags for a quiet, self-contained headless run. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];

/**
 * Where a test writes the screenshot `name` (e.g. `wallboard.png`): the README's
 * docs/screenshots/ when `CCS_UPDATE_SCREENSHOTS=1`, else a temp folder, so an ordinary test
 * run leaves the working tree as it found it. The folder exists on return.
 */
export function screenshotPath(name: string): string {
  const dir = process.env.CCS_UPDATE_SCREENSHOTS === '1' ? join(__dirname, '..', '..', 'docs', 'screenshots') : join(tmpdir(), 'ccswitch-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/** Takes a full-page screenshot of `page` into {@link screenshotPath} and checks a PNG was written. */
export async function writeScreenshot(page: Page, name: string): Promise<string> {
  const path = screenshotPath(name);
  rmSync(path, { force: true });
  await page.screenshot({ path, fullPage: true });
  if (statSync(path).size < 1000) throw new Error(`screenshot ${path} is empty`);
  return path;
}

/** A running browser with its own profile. */
export interface Browser {
  context: BrowserContext;
  /** A new tab. */
  page(): Promise<Page>;
  /** Messages the pages logged as errors and uncaught exceptions (a test expects none). */
  readonly errors: string[];
  close(): Promise<void>;
}

/**
 * Starts Chromium with a fresh user-data-dir. `args` are added to {@link CHROMIUM_ARGS}
 * (test/helpers/mediaBrowser.ts: fake media devices); `cleanup` is removed on close as well.
 */
export async function startBrowser(o: { width?: number; height?: number; args?: readonly string[]; cleanup?: string } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'ccs-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(o.args ?? [])],
    viewport: { width: o.width ?? 1600, height: o.height ?? 1000 },
    timeout: 60_000,
  });
  const errors: string[] = [];
  const watch = (p: Page): void => {
    p.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
  };
  context.on('page', watch);
  for (const p of context.pages()) watch(p);
  return {
    context,
    errors,
    page: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      if (o.cleanup !== undefined) rmSync(o.cleanup, { recursive: true, force: true });
    },
  };
}

/** Opens `url` and signs in with `token` through the page's form (call center `cc`). */
export async function signIn(page: Page, url: string, token: string, cc = 'default'): Promise<void> {
  await page.goto(url);
  await page.locator('#cc').fill(cc);
  await page.locator('#token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('body[data-conn="live"]').waitFor({ timeout: 15_000 });
}

/** The directory of the UI built by the test run's global setup. */
export function builtUi(): string {
  const dir = process.env.CCS_UI_DIR;
  if (dir === undefined || dir === '') throw new Error('CCS_UI_DIR is not set: the UI is built by test/helpers/layers.globalSetup.js when chromium is on PATH');
  return dir;
}
