/**
 * The wallboard (`/ui/wallboard`) in real headless Chromium against a real instance and
 * Redis: signing in through the page, a caller's wait counting up and an agent's state change
 * made through REST shown within a second, and the page saying "reconnecting" while the
 * event stream is gone, then resuming with `since` so that a change made meanwhile appears.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { startApp, type RunningApp } from '../helpers/app';
import { builtUi, signIn, startBrowser, writeScreenshot, type Browser } from '../helpers/browser';
import { describeLayer } from '../helpers/layers';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, TOKENS } from '../helpers/tokens';
import { answeredCaller, registerPhone } from '../helpers/uiData';


describeLayer('ui', 'wallboard in Chromium', () => {
  let server: RedisServer;
  let raw: Redis;
  let a: RunningApp;
  let browser: Browser;
  let page: Page;
  /** While set, the page's event-stream connections are refused (the server is "gone"). */
  let blocked = false;
  /** Frames the page sent on its event stream. */
  const sent: Record<string, unknown>[] = [];

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
    a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: builtUi(), queueStatsMs: 500, queues: { '8000': { slaSeconds: 15 } } });
    browser = await startBrowser();
    page = await browser.page();
    // Every event-stream connection of the page goes through here: forwarded to the server,
    // or refused while `blocked`, and the page's frames are recorded.
    await page.routeWebSocket(/\/callcenter\/default\/events$/, (ws) => {
      if (blocked) {
        void ws.close({ code: 1013, reason: 'blocked by the test' });
        return;
      }
      const upstream = ws.connectToServer();
      ws.onMessage((m) => {
        if (typeof m === 'string') sent.push(JSON.parse(m) as Record<string, unknown>);
        upstream.send(m);
      });
    });
    await signIn(page, `${a.base}/ui/wallboard`, TOKENS.admin);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await a?.close();
    raw?.disconnect();
    await server?.stop();
  });

  const rest = async (path: string, json: unknown = {}): Promise<void> => {
    const res = await a.call('POST', `/callcenter/default/${path}`, { json });
    expect([path, res.status]).toEqual([path, 200]);
  };
  const agentRow = (queue: string, agent: string) => page.locator(`section.board[data-queue="${queue}"] tr[data-agent="${agent}"]`);
  const enqueue = async (caller: string, queue = '8000'): Promise<string> => {
    const id = randomUUID();
    await a.app.tasks.enqueue('default', { id, queue, priority: 0, callId: `call-${id}`, caller, owner: 'ui-test', maxWaitMs: 600_000 });
    return id;
  };

  it('signs in with the token typed into the page and keeps it out of the address and out of localStorage', async () => {
    expect(page.url()).toBe(`${a.base}/ui/wallboard`);
    expect(await page.evaluate('({ local: localStorage.length, session: sessionStorage.getItem("ccswitch.session") })')).toEqual({ local: 0, session: JSON.stringify({ cc: 'default', token: TOKENS.admin }) });
    await expect(page.locator('section.board[data-queue="8000"] h2').textContent()).resolves.toContain('Sales');
  });

  it("shows an agent's state change made through REST within a second, with its reason", async () => {
    await rest('agent/1002/login');
    await agentRow('8000', '1002').and(page.locator('[data-state="ready"]')).waitFor({ timeout: 1000 });
    await rest('agent/1002/not_ready', { queue: '8000', reason: 4 });
    const row = agentRow('8000', '1002').and(page.locator('[data-state="not_ready"]'));
    await row.waitFor({ timeout: 1000 });
    expect(await row.locator('.reason').textContent()).toBe('Rest');
    expect(await row.locator('.state-label').textContent()).toBe('Not Ready');
  });

  it("shows a caller within a second of joining the queue, its wait counting up", async () => {
    const task = await enqueue('+15550123');
    const row = page.locator(`section.board[data-queue="8000"] tr[data-task="${task}"]`);
    await row.waitFor({ timeout: 1000 });
    expect(await row.locator('.caller').textContent()).toBe('+15550123');
    const first = await row.locator('.wait').textContent();
    expect(first).toMatch(/^0:0[0-2]$/);
    // The wait counts up by itself, with no event: wait for the next second to show.
    // (A function, not a string: the page's Content-Security-Policy forbids eval.)
    await page.waitForFunction(([t, before]) => (globalThis as any).document.querySelector(`tr[data-task="${t}"] .wait`)?.textContent !== before, [task, first] as const, { timeout: 3000 });
    expect(await row.locator('.wait').textContent()).toMatch(/^0:0[1-4]$/);
    expect(await page.locator('section.board[data-queue="8000"] [data-kpi="waiting"] .value').textContent()).toBe('1');
    await a.app.tasks.end('default', task, '8000', 'abandoned');
    await row.waitFor({ state: 'detached', timeout: 1000 });
    await page.locator('section.board[data-queue="8000"] [data-kpi="abandoned"] .value', { hasText: '1' }).waitFor({ timeout: 1000 });
  });

  it('says "reconnecting" while the server has closed the stream, then resumes with since and shows what changed meanwhile', async () => {
    const before = sent.filter((f) => f.op === 'subscribe').length;
    blocked = true;
    const sockets = [...a.app.http.websocketServer.clients];
    expect(sockets.length).toBeGreaterThan(0);
    for (const ws of sockets) ws.terminate();
    await page.locator('body[data-conn="reconnecting"]').waitFor({ timeout: 5000 });
    const banner = page.getByTestId('banner');
    await banner.waitFor({ state: 'visible' });
    expect(await banner.textContent()).toMatch(/Reconnecting .*may be out of date/);
    // A change while the page cannot hear of it: the page must not pretend to be current.
    await rest('agent/1001/login');
    expect(await agentRow('8000', '1001').getAttribute('data-state')).toBe('logged_out');
    expect(await page.getByTestId('conn').textContent()).not.toBe('● live');
    blocked = false;
    await page.locator('body[data-conn="live"]').waitFor({ timeout: 10_000 });
    await agentRow('8000', '1001').and(page.locator('[data-state="ready"]')).waitFor({ timeout: 1000 });
    expect(await banner.isHidden()).toBe(true);
    const resumed = sent.filter((f) => f.op === 'subscribe').slice(before);
    expect(resumed.at(-1)).toEqual({ op: 'subscribe', topics: ['queue:8000', 'queue:8001'], since: expect.any(Number) });
    // The resume was an event replay, not a fresh snapshot.
    expect(resumed.at(-1)!.since).toBeGreaterThan(0);
  });

  it('counts answered callers and the service level within its threshold, and writes a screenshot of a busy wallboard', async () => {
    for (const ag of ['1003', '1004', '1005']) await rest(`agent/${ag}/login`);
    await rest('agent/1005/not_ready', { reason: 1 });
    for (const ag of ['1001', '1003']) await registerPhone(a, ag);
    await answeredCaller(a, '1001', '+15550101');
    await answeredCaller(a, '1003', '+15550102');
    await page.locator('section.board[data-queue="8000"] [data-kpi="answered"] .value', { hasText: '2' }).waitFor({ timeout: 1000 });
    // Two answered at once, one abandoned after 0-2 s (within 15 s: a short abandon): 2 of 2.
    await page.locator('section.board[data-queue="8000"] [data-kpi="sla"] .value', { hasText: '100%' }).waitFor({ timeout: 3000 });
    expect(await page.locator('section.board[data-queue="8000"] [data-kpi="sla"] .extra').textContent()).toBe('answered ≤ 15 s');
    // Sample traffic of the hour before, for the picture's chart (the last minutes are real).
    const minute = Math.floor(Date.now() / 60000);
    const fields: string[] = [];
    for (let m = 1; m < 45; m++) fields.push(`a:${minute - m}`, String(Math.round(3 + 2 * Math.sin(m / 4))), `w:${minute - m}`, String(Math.round(2 + 2 * Math.cos(m / 6))));
    await raw.hset('ccs:{default}:queue:8000:history', ...fields);
    await page.reload();
    await page.locator('body[data-conn="live"]').waitFor({ timeout: 10_000 });
    // Callers who have waited a while already (as transferred callers keep their wait).
    const [sec] = await raw.time();
    const waiting = async (caller: string, queue: string, seconds: number) => {
      const id = randomUUID();
      await a.app.tasks.enqueue('default', { id, queue, priority: 0, callId: `call-${id}`, caller, owner: 'ui-test', maxWaitMs: 600_000, waitingSince: (Number(sec) - seconds) * 1000 });
    };
    await waiting('+15550188', '8000', 95);
    await waiting('+15550166', '8000', 12);
    await waiting('+15550177', '8001', 41);
    await page.locator('section.board[data-queue="8001"] tr[data-task]').waitFor({ timeout: 2000 });
    await writeScreenshot(page, 'wallboard.png');
    expect(browser.errors).toEqual([]);
  });
});
