/**
 * The supervisor view (`/ui/supervisor`) in real headless Chromium, signed in with supervisor
 * s1's token (queue 8000): it lists s1's agents only, its forced changes reach the agent
 * (checked through REST) and are logged as s1's, and a refused monitoring request shows its
 * error.
 */
import type { Page } from 'playwright-core';
import { startApp, type RunningApp } from '../helpers/app';
import { builtUi, signIn, startBrowser, writeScreenshot, type Browser } from '../helpers/browser';
import { describeLayer } from '../helpers/layers';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, TOKENS } from '../helpers/tokens';


describeLayer('ui', 'supervisor view in Chromium', () => {
  let server: RedisServer;
  let a: RunningApp;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    server = await startRedis();
    a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: builtUi() });
    for (const ag of ['1001', '1002', '1003']) expect((await a.call('POST', `/callcenter/default/agent/${ag}/login`)).status).toBe(200);
    browser = await startBrowser({ width: 1500, height: 900 });
    page = await browser.page();
    await signIn(page, `${a.base}/ui/supervisor`, TOKENS.s1);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await a?.close();
    await server?.stop();
  });

  const stateOf = async (agent: string, queue = '8000'): Promise<{ state: string; reason: number | null }> => {
    const res = await a.call('GET', `/callcenter/default/agent/${agent}`);
    const q = res.body.queues.find((x: { queue: string }) => x.queue === queue);
    return { state: q.state, reason: q.reason };
  };
  const row = (agent: string) => page.locator(`tr[data-agent="${agent}"]`);
  const shown = (agent: string, state: string) => row(agent).locator(`[data-queue="8000"][data-state="${state}"]`).waitFor({ timeout: 2000 });

  it("lists the agents of the supervisor's queues only", async () => {
    await row('1003').waitFor();
    const ids = await Promise.all((await page.locator('tr[data-agent]').all()).map((r) => r.getAttribute('data-agent')));
    expect(ids).toEqual(['1001', '1002', '1003']);
  });

  it('forces an agent Not Ready with the QC reason, Ready and logged out, each reaching the agent as REST reads it', async () => {
    await row('1002').locator('button[data-op="force_not_ready"]').click();
    await shown('1002', 'not_ready');
    expect(await stateOf('1002')).toEqual({ state: 'not_ready', reason: 3 });
    await row('1002').locator('button[data-op="force_ready"]').click();
    await shown('1002', 'ready');
    expect(await stateOf('1002')).toEqual({ state: 'ready', reason: null });
    await row('1002').locator('button[data-op="force_logout"]').click();
    await shown('1002', 'logged_out');
    expect((await stateOf('1002')).state).toBe('logged_out');
    const log = await a.call('GET', '/callcenter/default/oplog?agent=1002');
    expect(log.body.entries.filter((e: { op: number }) => [29, 30, 31].includes(e.op)).map((e: { op: number; by: string }) => [e.op, e.by])).toEqual([[31, 's1'], [30, 's1'], [29, 's1']]);
  });

  it("shows why monitoring an agent on no call is refused", async () => {
    await row('1001').locator('button[data-op="monitor_listen"]').click();
    await page.locator('[data-testid="outcome"][data-kind="error"]').waitFor({ timeout: 5000 });
    expect(await page.getByTestId('outcome').textContent()).toMatch(/^Listen refused: 409 (not_on_call|supervisor_unreachable): /);
  });

  it('writes a screenshot of the supervisor view', async () => {
    expect((await a.call('POST', '/callcenter/default/agent/1003/not_ready', { json: { queue: '8000', reason: 4 } })).status).toBe(200);
    await shown('1003', 'not_ready');
    await writeScreenshot(page, 'supervisor.png');
    expect(browser.errors.filter((e) => !/status of 409/.test(e))).toEqual([]);
  });
});
