/**
 * Agent-to-agent calls through a real drachtio-server between SIP.js phones registered over
 * WebSocket (DESIGN.md sections 3, 5 and 10). The media port is the static-SDP fake, which
 * records the conversation's conference and members.
 */
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { App } from '../../app/createApp';
import type { InviteOutcome } from '../../app/sip/invite';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { FakeMediaServer } from '../../media/fake';
import type { DrachtioServer } from '../helpers/drachtio';
import { promptFor } from '../../fac/prompts';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { CallRefused, type Phone } from '../helpers/phone';
import type { RedisServer } from '../helpers/redisServer';
import { runSipp } from '../helpers/sipp';
import { waitForEvent } from '../helpers/events';
import { parseOplog } from '../../lib/events';

describeLayer('sip', 'agent-to-agent calls between SIP.js phones', () => {
  let stack: SipStack;
  let redisServer: RedisServer;
  let drachtio: DrachtioServer;
  let app: App;
  let raw: Redis;
  let media: FakeMediaServer;
  const settled = new EventEmitter();
  let stopped = false;

  beforeAll(async () => {
    stack = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } }, drainSeconds: 20 },
      onInviteSettled: (callId, outcome) => settled.emit('settled', callId, outcome),
    });
    ({ redisServer, drachtio, app, raw, media } = stack);
  });
  afterAll(async () => {
    await stack?.close({ appStopped: stopped });
  });
  beforeEach(async () => {
    await stack.reset();
  });

  const phone = (user: string): Promise<Phone> => stack.phone(user);
  const states = async (agent: string): Promise<Record<string, string>> =>
    Object.fromEntries((await app.engine.states('default', agent)).map((v) => [v.queue, v.state]));
  const oplog = async (): Promise<[string, string][]> => ((await raw.xrange('ccs:{default}:oplog', '-', '+')) as [string, string[]][]).map(parseOplog).map((e) => [e.agent, String(e.op)]);
  /** The next INVITE that ccswitch finished handling (other than a digest challenge), with its outcome. */
  const nextSettled = (): Promise<InviteOutcome> =>
    new Promise((resolve) => {
      const on = (_id: string, outcome: InviteOutcome): void => {
        if (outcome === 'challenged') return;
        settled.off('settled', on);
        resolve(outcome);
      };
      settled.on('settled', on);
    });

  it('a SIP.js phone registers over WebSocket and the binding shows its ws transport', async () => {
    await phone('1001');
    const b = await app.registrar.bindings('default', '1001');
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ transport: 'ws' });
  });

  it('an agent-to-agent call moves both agents to Other Call (operation 41) and back when it ends', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1003');
    await app.engine.notReady('default', '1003', { queue: '8000', reason: 4 });
    const a = await phone('1001');
    const b = await phone('1003');
    const logBefore = (await oplog()).length;

    const incoming = b.nextIncoming();
    const done = nextSettled();
    const call = await a.dial('1003');
    const answered = await incoming;

    expect(await states('1001')).toEqual({ '8000': S.OtherCall });
    expect(await states('1003')).toEqual({ '8000': S.OtherCall, '8001': S.OtherCall });
    // Both are held by the caller's SIP Call-ID, so only that call's end releases them.
    const callIds = [...(await app.engine.states('default', '1001')), ...(await app.engine.states('default', '1003'))].map((v) => v.callId);
    expect(new Set(callIds).size).toBe(1);
    expect(callIds[0]).toMatch(/\S{8,}/);
    expect((await oplog()).slice(logBefore)).toEqual([
      ['1001', '41'],
      ['1003', '41'],
      ['1003', '41'],
    ]);
    // One conversation on the media server with both legs listening and speaking (the callee's
    // leg joins after the caller's answer went out: wait for its record).
    await waitForEvent(redisServer.url, 'ccs:{default}:events', (e) => e.type === 'conversation' && e.action === 'joined' && e.agent === '1003');
    expect(media.conferences.size).toBe(1);
    const [conf] = [...media.conferences.values()];
    expect([...conf!.members.values()]).toEqual([1, 1]);

    await call.hangup();
    await answered.ended; // the callee got our BYE
    expect(await done).toBe('answered');
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    // Each queue returns to what it was before the call, reason included.
    const after = await app.engine.states('default', '1003');
    expect(after.map((v) => [v.queue, v.state, v.reason])).toEqual([
      ['8000', S.NotReady, 4],
      ['8001', S.NotReady, null],
    ]);
    expect(media.conferences.size).toBe(0);
    expect(media.endpoints).toBe(0);
  });

  it('when the callee hangs up, the caller gets BYE and both agents are restored', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1002');
    const a = await phone('1001');
    const b = await phone('1002');
    const incoming = b.nextIncoming();
    const done = nextSettled();
    const call = await a.dial('1002');
    const answered = await incoming;
    await answered.hangup();
    await call.ended;
    expect(await done).toBe('answered');
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(await states('1002')).toEqual({ '8000': S.Ready });
  });

  it('with a media server, a FAC is answered, the prompt of its outcome (logged in and ready, 1 queue) is played and the call released', async () => {
    const a = await phone('1001');
    const before = media.played.length;
    const done = nextSettled();
    const call = await a.dial('*38');
    await call.ended; // ccswitch hangs up after the prompt
    await done; // and has released the endpoint after the BYE
    expect(media.played.slice(before)).toEqual([{ kind: 'sound', sound: promptFor({ outcome: 'logged_in_ready', queues: 1, text: '', status: 200 }, undefined) }]);
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(media.endpoints).toBe(0);
  });

  it('with a media server, a refused FAC is answered with the prompt of its failure (not allowed) and changes nothing', async () => {
    const a = await phone('1001');
    const before = media.played.length;
    const call = await a.dial('*368000'); // logged out: illegal
    await call.ended;
    expect(media.played.slice(before)).toEqual([{ kind: 'sound', sound: promptFor({ outcome: 'not_allowed', queues: 0, text: '', status: 409 }, undefined) }]);
    expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
  });

  it('a callee that rejects with 486 makes the call fail with 486 and leaves both agents as they were', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1002');
    const a = await phone('1001');
    const b = await phone('1002');
    b.policy = { reject: 486 };
    const done = nextSettled();
    await expect(a.dial('1002')).rejects.toEqual(new CallRefused(486));
    expect(await done).toBe('refused');
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(await states('1002')).toEqual({ '8000': S.Ready });
    expect(media.endpoints).toBe(0);
  });

  it('calling an agent with no registered phone is refused with 480 and changes nothing', async () => {
    await app.engine.login('default', '1001');
    const a = await phone('1001');
    const events = await raw.xlen('ccs:{default}:events');
    await expect(a.dial('1004')).rejects.toEqual(new CallRefused(480));
    expect(await raw.xlen('ccs:{default}:events')).toBe(events);
  });

  it('calling an agent who is on a call is refused with 486 Busy Here', async () => {
    await app.engine.login('default', '1002');
    await app.engine.callStarted('default', '1002', { callId: 'elsewhere' });
    const a = await phone('1001');
    await phone('1002');
    await expect(a.dial('1002')).rejects.toEqual(new CallRefused(486));
  });

  it('a caller who hangs up while the callee rings cancels the callee and nothing changes', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1002');
    const a = await phone('1001');
    const b = await phone('1002');
    b.policy = { ring: true };
    const ringing = b.nextIncoming();
    const done = nextSettled();
    const dialing = a.startDial('1002');
    const failed = dialing.answered.catch((err: unknown) => err);
    const offered = await ringing;
    // The caller is already marked busy while it dials (no queue call is offered meanwhile).
    expect(await states('1001')).toEqual({ '8000': S.OtherCall });
    await dialing.cancel();
    await offered.ended; // CANCEL reached the callee's phone
    expect(await failed).toBeInstanceOf(Error);
    expect(await done).toBe('canceled');
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(await states('1002')).toEqual({ '8000': S.Ready });
    expect(media.endpoints).toBe(0);
  });

  it('dialing your own extension is refused with 482 Loop Detected', async () => {
    const a = await phone('1001');
    await expect(a.dial('1001')).rejects.toEqual(new CallRefused(482));
  });

  it('a call from a trunk to an extension rings the agent, puts only the agent on Other Call (operation 4) and restores it', async () => {
    await app.engine.login('default', '1002');
    const b = await phone('1002');
    const logBefore = (await oplog()).length;
    const incoming = b.nextIncoming();
    const done = nextSettled();
    const sipp = runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${drachtio.sipPort}`, service: '1002', user: '5551234', localIp: '127.0.0.2' });
    const answered = await incoming;
    // The phone is up once it has sent its 200; ccswitch records the call on receiving it.
    await waitForEvent(redisServer.url, 'ccs:{default}:events', (e) => e.type === 'agent.state' && e.agent === '1002' && e.state === S.OtherCall);
    expect(await states('1002')).toEqual({ '8000': S.OtherCall });
    expect((await oplog()).slice(logBefore)).toEqual([['1002', '4']]);
    await answered.hangup(); // the agent ends it; ccswitch sends BYE to the trunk
    const r = await sipp;
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
    expect(await done).toBe('answered');
    expect(await states('1002')).toEqual({ '8000': S.Ready });
  });

  // Last: it stops the instance.
  it('on stop (SIGTERM) new calls get 503 while a call in progress goes on, and the instance stops when it ends', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1002');
    const a = await phone('1001');
    const b = await phone('1002');
    const c = await phone('1003');
    const incoming = b.nextIncoming();
    const call = await a.dial('1002');
    const answered = await incoming;
    let done = false;
    const stopping = app.stop().then(() => (done = true));
    stopped = true;
    await expect(c.dial('1001')).rejects.toEqual(new CallRefused(503));
    expect(done).toBe(false); // still draining: the call is up
    expect(await states('1002')).toEqual({ '8000': S.OtherCall });
    await call.hangup();
    await answered.ended;
    await stopping;
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(await states('1002')).toEqual({ '8000': S.Ready });
  });
});
