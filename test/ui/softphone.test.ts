/**
 * The agent console's SIP.js softphone in real Chromium against a real drachtio-server,
 * FreeSWITCH and a sipp caller: agent 1001 signs in with its token, types its SIP password
 * into the Softphone panel and registers the browser over drachtio's WebSocket; a trunk
 * caller dials queue 8000; the call rings in the page, the agent answers it there, and the
 * browser's fake microphone (a 700 Hz tone from a WAV file) reaches the caller: decoded on
 * the caller's RTP (test/helpers/hearing.ts), not read from a flag. The browser hears the
 * caller too (the page's remote audio, analysed in the page). An agent-to-agent call from a
 * desk phone rings and is answered in the browser the same way. From inside a queue call the
 * agent calls out (REST): the browser's one FreeSWITCH channel moves into the new
 * conversation's conference (no re-INVITE, which a browser would refuse), measured on the
 * outside party's RTP and in the page, and `resume` moves it back. A browser without a
 * microphone keeps the softphone off and the console working.
 */
import { Redis } from 'ioredis';
import type { Page } from 'playwright-core';
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { builtUi, signIn } from '../helpers/browser';
import { waitForEvent } from '../helpers/events';
import { listenRtp, type RtpListener } from '../helpers/freeswitch';
import { hears, hearsNot } from '../helpers/hearing';
import { describeLayer } from '../helpers/layers';
import { browserHears, startMediaBrowser, type MediaBrowser } from '../helpers/mediaBrowser';
import { freePort } from '../helpers/redisServer';
import { restClient } from '../helpers/rest';
import { runSipp } from '../helpers/sipp';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { API_TOKENS, TOKENS } from '../helpers/tokens';
import { trunkCaller, type SippCaller } from '../helpers/trunkCaller';

/** The browser's fake microphone. */
const BROWSER_HZ = 700;
/** The caller's phone. */
const CALLER_HZ = 1000;
/** Agent 1002's desk phone (a SIP.js test phone whose RTP is the test's). */
const DESK_HZ = 1300;
/** Queue 8000's hold music, unlike either party. */
const MOH_HZ = 300;
/** The outside party the agent calls out to (a sipp UAS behind the trunk, its RTP the test's). */
const OUTSIDE_HZ = 1700;

describeLayer('softphone', 'the agent console softphone in Chromium (SIP.js, WebRTC to FreeSWITCH)', () => {
  let stack: FreeSwitchSipStack;
  let browser: MediaBrowser;
  let page: Page;
  let callerRtp: RtpListener | undefined;
  let caller: SippCaller | undefined;
  /** Where the trunk's outbound calls go (the outside party's sipp). */
  let outsidePort: number;

  beforeAll(async () => {
    outsidePort = await freePort();
    stack = await startSipStack({
      media: 'freeswitch',
      uiDir: builtUi(),
      softphone: true,
      apiTokens: API_TOKENS,
      sip: { trunks: { carrier: { addresses: ['127.0.0.2', '127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${outsidePort}`, pingSeconds: 0 /* a one-call sipp, not a carrier answering OPTIONS */ } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { moh: `tone_stream://%(1000,0,${MOH_HZ});loops=-1`, ringSeconds: 20, maxWaitSeconds: 120 } },
    });
    browser = await startMediaBrowser({ toneHz: BROWSER_HZ });
    page = await browser.page();
    await signIn(page, `${stack.base}/ui/agent`, TOKENS.agent1001);
  }, 120_000);

  afterAll(async () => {
    await caller?.abort();
    callerRtp?.close();
    await browser?.close();
    await stack?.close();
  }, 60_000);

  /** The first event after entry `since` (a sequence number of the stream's ids) matching `pred`. */
  const event = (what: string, pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, since, 20_000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const softphone = (status: string) => page.locator(`[data-testid="softphone"][data-status="${status}"]`).waitFor({ timeout: 15_000 });

  it('tells the page where to register and no secret: GET me has the WebSocket URL and the SIP domain only', async () => {
    const res = await fetch(`${stack.base}/callcenter/default/me`, { headers: { authorization: `Bearer ${TOKENS.agent1001}` } });
    const me = (await res.json()) as { softphone: unknown };
    expect(me.softphone).toEqual({ wsUrl: `ws://127.0.0.1:${stack.drachtio.wsPort}`, domain: 'ccswitch' });
    expect(JSON.stringify(me)).not.toContain('secret-1001');
  });

  it('refuses a wrong SIP password with the registrar\'s answer and stays off', async () => {
    await page.getByTestId('sip-password').fill('not-the-password');
    await page.locator('button[data-op="softphone-start"]').click();
    await softphone('failed');
    expect(await page.getByTestId('softphone-status').textContent()).toMatch(/refused|Could not register/);
    const agent = (await stack.app.registrar.bindings('default', '1001')).length;
    expect(agent).toBe(0);
  });

  it('registers the browser with the typed password, as a WebRTC binding over the WebSocket', async () => {
    await page.getByTestId('sip-password').fill('secret-1001');
    await page.locator('button[data-op="softphone-start"]').click();
    await softphone('registered');
    const bindings = await stack.app.registrar.bindings('default', '1001');
    expect(bindings).toHaveLength(1);
    expect(bindings[0]!.contact).toMatch(/;ccs-webrtc=1/);
    expect(bindings[0]!.transport).toMatch(/^wss?$/);
  });

  it("rings on a queue call, answers in the browser, and the caller's RTP carries the browser's microphone", async () => {
    await page.locator('button[data-op="login"][data-queue="all"]').click();
    await page.locator('tr[data-queue="8000"][data-state="ready"]').waitFor({ timeout: 5000 });
    callerRtp = await listenRtp({ toneHz: CALLER_HZ });
    caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    await softphone('ringing');
    const answer = page.locator('button[data-op="answer-browser"]:not([disabled])');
    await answer.waitFor({ timeout: 10_000 });
    const onCall = agentOnCall();
    await answer.click();
    await softphone('in_call');
    await onCall;
    // What the caller receives from FreeSWITCH is the browser's tone: Opus from Chromium,
    // decrypted (DTLS-SRTP), mixed in the conference, re-encoded as PCMU.
    await hears(callerRtp, 'the caller', BROWSER_HZ);
    // And the browser hears the caller: the softphone's remote stream, analysed in the page.
    expect(await browserHears(page, CALLER_HZ)).toBe(true);
    await caller.hangUp();
    const r = await caller.result;
    expect(r.code).toBe(0);
    await softphone('registered');
    expect(browser.errors).toEqual([]);
  }, 90_000);

  it('rings on an agent-to-agent call too: a colleague on a desk phone hears the browser and the browser hears the colleague', async () => {
    const deskRtp = await listenRtp({ toneHz: DESK_HZ });
    try {
      const desk = await stack.phone('1002', { rtp: deskRtp });
      const dialing = desk.dial('1001');
      await softphone('ringing');
      await page.locator('button[data-op="softphone-answer"]').click();
      const call = await dialing;
      await softphone('in_call');
      await hears(deskRtp, 'agent 1002', BROWSER_HZ);
      expect(await browserHears(page, DESK_HZ)).toBe(true);
      await call.hangup();
      await softphone('registered');
    } finally {
      deskRtp.close();
    }
  }, 60_000);

  it("calls out from inside a queue call: the browser's leg moves, the outside party hears the browser, the held caller music; resume moves it back", async () => {
    const rest = restClient(stack.app, TOKENS.agent1001);
    // Events of this call only: the earlier tests' queue call was answered too.
    const since = await lastEvent();
    const callerRtp2 = await listenRtp({ toneHz: CALLER_HZ });
    const outsideRtp = await listenRtp({ toneHz: OUTSIDE_HZ });
    const caller2 = await trunkCaller(stack.drachtio.sipPort, callerRtp2);
    try {
      await page.locator('tr[data-queue="8000"][data-state="ready"]').waitFor({ timeout: 10_000 });
      const answered = event('answered', (e) => e.type === 'queue.caller' && e.reason === 'answered', since);
      await softphone('ringing');
      const answer = page.locator('button[data-op="answer-browser"]:not([disabled])');
      await answer.waitFor({ timeout: 10_000 });
      await answer.click();
      await softphone('in_call');
      const queueConv = String((await answered as { task?: string }).task);
      await hears(callerRtp2, 'the caller', BROWSER_HZ);

      const far = runSipp({
        scenario: 'uas-outside-media.xml', target: `127.0.0.1:${stack.drachtio.sipPort}`, service: '5557100', user: 'outside', localIp: '127.0.0.3',
        replace: { __TO__: '5557100' },
        extra: ['-p', String(outsidePort), '-key', 'rtp_ip', outsideRtp.ip, '-key', 'rtp_port', String(outsideRtp.port), '-recv_timeout', '90000', '-timeout', '120s'],
      });
      const out = await rest('POST', '/callcenter/default/agent/1001/call_out', { to: '5557100', max_answer_seconds: 120 });
      expect(out.status).toBe(200);
      await event('outside answered', (e) => e.type === 'conversation' && e.id === out.body.conversation && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
      // The browser's channel is in the call-out's conference now: the outside party hears the
      // browser's microphone, the browser hears the outside party, the held caller the music.
      await Promise.all([hears(outsideRtp, 'the outside party', BROWSER_HZ), hears(callerRtp2, 'the held caller', MOH_HZ)]);
      expect(await browserHears(page, OUTSIDE_HZ)).toBe(true);
      await hearsNot(callerRtp2, 'the held caller', BROWSER_HZ);

      expect((await rest('POST', '/callcenter/default/agent/1001/resume', { conversation_id: queueConv })).status).toBe(200);
      await hears(callerRtp2, 'the caller, resumed', BROWSER_HZ);
      expect(await browserHears(page, CALLER_HZ)).toBe(true);
      await hearsNot(outsideRtp, 'the outside party, its agent on hold', BROWSER_HZ);

      // The caller hangs up: the line is still in the call-out (on hold there); the browser
      // hangs up, which ends the call-out and sends the outside party its BYE.
      await caller2.hangUp();
      expect((await caller2.result).code).toBe(0);
      await page.locator('button[data-op="softphone-hangup"]').click();
      await softphone('registered');
      const r = await far;
      if (r.code !== 0) throw new Error(`outside party (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
      expect(browser.errors).toEqual([]);
    } finally {
      await caller2.abort();
      callerRtp2.close();
      outsideRtp.close();
    }
  }, 120_000);

  it('without a microphone keeps the softphone off and the console working as a CTI panel', async () => {
    const bare = await startMediaBrowser({ microphone: false });
    try {
      const p = await bare.page();
      await signIn(p, `${stack.base}/ui/agent`, TOKENS.agent1001);
      await p.getByTestId('sip-password').fill('secret-1001');
      await p.locator('button[data-op="softphone-start"]').click();
      await p.locator('[data-testid="softphone"][data-status="failed"]').waitFor({ timeout: 15_000 });
      expect(await p.getByTestId('softphone-status').textContent()).toMatch(/^No microphone \(\w+\): the softphone stays off/);
      expect(await p.locator('button[data-op="answer-browser"]').count()).toBe(0);
      // The browser of the previous test is still registered; this one added nothing.
      expect((await stack.app.registrar.bindings('default', '1001')).map((b) => b.contact)).toHaveLength(1);
      await p.locator('button[data-op="not_ready"][data-queue="8000"]').click();
      await p.locator('tr[data-queue="8000"][data-state="not_ready"]').waitFor({ timeout: 5000 });
      const res = await fetch(`${stack.base}/callcenter/default/agent/1001`, { headers: { authorization: `Bearer ${TOKENS.agent1001}` } });
      expect(((await res.json()) as { queues: { state: string }[] }).queues[0]!.state).toBe('not_ready');
    } finally {
      await bare.close();
    }
  }, 60_000);

  /** The sequence number of the event stream's newest entry (its ids are `<seq>-0`). */
  async function lastEvent(): Promise<number> {
    const r = new Redis(stack.redisServer.url, { maxRetriesPerRequest: 1 });
    try {
      const [newest] = await r.xrevrange('ccs:{default}:events', '+', '-', 'COUNT', 1);
      return newest === undefined ? 0 : Number(newest[0].split('-')[0]);
    } finally {
      r.disconnect();
    }
  }

  /** Resolves once agent 1001 is on the queue call (Queue Call in 8000). */
  function agentOnCall(): Promise<CcsEvent> {
    return event('1001 on the call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.queue === '8000' && e.state === S.QueueCall);
  }
});
