/**
 * The agent console (`/ui/agent`) in real headless Chromium, signed in with agent 1001's own
 * token: its buttons change the agent's state (checked through REST, not through the page),
 * a refused action shows the server's error and changes nothing, and a call ringing for the
 * agent shows with its caller.
 */
import type { Page } from 'playwright-core';
import { LegKind, LegState } from '../../lib/conversation/model';
import { startApp, type RunningApp } from '../helpers/app';
import { builtUi, signIn, startBrowser, writeScreenshot, type Browser } from '../helpers/browser';
import { describeLayer } from '../helpers/layers';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, TOKENS } from '../helpers/tokens';
import { registerPhone, ringingCaller } from '../helpers/uiData';


describeLayer('ui', 'agent console in Chromium', () => {
  let server: RedisServer;
  let a: RunningApp;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startRedis();
    a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: builtUi(), callcenter: { busyReasons: { '201': 'Training', '202': 'Team meeting' } } });
    browser = await startBrowser({ width: 1500, height: 1000 });
    page = await browser.page();
    await signIn(page, `${a.base}/ui/agent`, TOKENS.agent1001);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await a?.close();
    await server?.stop();
  });

  /** Agent 1001's state per queue, from REST. */
  const states = async (): Promise<{ queue: string; state: string; reason: number | null }[]> => {
    const res = await a.call('GET', '/callcenter/default/agent/1001');
    expect(res.status).toBe(200);
    const queues = res.body.queues as { queue: string; state: string; reason: number | null }[];
    return queues.map(({ queue, state, reason }) => ({ queue, state, reason }));
  };
  const click = (op: string, queue = 'all') => page.locator(`button[data-op="${op}"][data-queue="${queue}"]`).first().click();
  const shown = (queue: string, state: string) => page.locator(`tr[data-queue="${queue}"][data-state="${state}"]`).waitFor({ timeout: 2000 });
  const outcome = () => page.getByTestId('outcome');

  it("offers the table's Not Ready reasons an agent may choose and the site's 200-250 codes", async () => {
    const options = await page.locator('#reason option').allTextContents();
    expect(options).toEqual(['1 Busy', '4 Rest', '5 Phone unavailable', '201 Training (site)', '202 Team meeting (site)']);
  });

  it('logs in, goes Not Ready with the chosen reason, Ready, and logs out: each through REST, as REST then reads it', async () => {
    await click('login');
    await shown('8000', 'ready');
    expect(await states()).toEqual([{ queue: '8000', state: 'ready', reason: null }]);
    await page.locator('#reason').selectOption('201');
    await click('not_ready', '8000');
    await shown('8000', 'not_ready');
    expect(await states()).toEqual([{ queue: '8000', state: 'not_ready', reason: 201 }]);
    expect(await page.locator('tr[data-queue="8000"] .reason').textContent()).toBe('Training');
    await click('ready', '8000');
    await shown('8000', 'ready');
    expect(await states()).toEqual([{ queue: '8000', state: 'ready', reason: null }]);
    await click('logout');
    await shown('8000', 'logged_out');
    expect((await states())[0]!.state).toBe('logged_out');
    expect(await outcome().textContent()).toBe('Logged out: all queues');
  });

  it("shows the server's refusal of an illegal move and changes nothing", async () => {
    expect((await states())[0]!.state).toBe('logged_out');
    await click('ready', '8000');
    await page.locator('[data-testid="outcome"][data-kind="error"]').waitFor({ timeout: 2000 });
    expect(await outcome().textContent()).toMatch(/^Ready refused: 409 illegal_transition: /);
    expect((await states())[0]!.state).toBe('logged_out');
  });

  it('shows the call ringing for the agent with its caller and queue, and a refused reject with its error', async () => {
    await click('login');
    await shown('8000', 'ready');
    await registerPhone(a, '1001');
    const task = await ringingCaller(a, '1001', '+15550142');
    await page.getByTestId('offer').waitFor({ timeout: 2000 });
    expect(await page.getByTestId('offer').textContent()).toBe('+15550142 · queue 8000 Sales');
    // The caller's call is held by no running instance here, so the reject cannot be carried out.
    await page.getByTestId('reject-data').fill('press 2 for billing');
    await page.locator('button[data-op="reject"]').click();
    await page.locator('[data-testid="outcome"][data-kind="error"]').waitFor({ timeout: 10_000 });
    expect(await outcome().textContent()).toMatch(/^Reject refused: 503 owner_unreachable: /);
    await a.app.tasks.end('default', task, '8000', 'abandoned');
    await page.getByTestId('no-offer').waitFor({ timeout: 2000 });
    // The caller's instance would release the lease; there is none here.
    await a.redis.del(a.app.tasks.keys('default').reservation('1001'));
  });

  it("shows a conversation the agent joins with its parties and mode, and sends Hold as the REST pause", async () => {
    // A conversation written straight to the store, held by no running instance.
    const store = a.app.conversations;
    await store.create('default', { id: 'conv-ui-1', owner: 'ghost-instance', queue: '8000' });
    await store.join('default', 'conv-ui-1', { leg: 'leg-caller', kind: LegKind.Caller, mode: 1, state: LegState.Up });
    await store.join('default', 'conv-ui-1', { leg: 'leg-1001', kind: LegKind.Agent, agent: '1001', mode: 1, state: LegState.Up });
    const card = page.locator('[data-conversation="conv-ui-1"]');
    await card.waitFor({ timeout: 2000 });
    await card.locator('.legs', { hasText: 'caller' }).waitFor({ timeout: 2000 });
    expect(await card.locator('.legs').textContent()).toBe('Parties: caller (talking (listen + speak)), agent 1001 (talking (listen + speak))');
    expect(await card.locator('.mode').getAttribute('data-mode')).toBe('1');
    await card.locator('button[data-op="pause"]').click();
    await page.locator('[data-testid="outcome"][data-kind="error"]', { hasText: 'Hold refused' }).waitFor({ timeout: 10_000 });
    expect(await outcome().textContent()).toMatch(/^Hold refused: 503 owner_unreachable: /);
  });

  it('writes a screenshot of the console with a call ringing and a conversation', async () => {
    await ringingCaller(a, '1001', '+15550177');
    await page.getByTestId('offer').waitFor({ timeout: 2000 });
    await writeScreenshot(page, 'agent.png');
    expect(browser.errors.filter((e) => !/status of (409|503)/.test(e))).toEqual([]);
  });
});
