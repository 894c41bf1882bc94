/**
 * ACD routing through a real drachtio-server (DESIGN.md sections 3, 5, 6 and 10): sipp callers
 * from a trunk dial queue numbers, SIP.js agent phones registered over WebSocket ring, answer,
 * reject or stay silent. The media port is the static-SDP fake, which records the conversation.
 */
import { Redis } from 'ioredis';
import type { App } from '../../app/createApp';
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent, QueueCallerEvent } from '../../lib/events';
import { FakeMediaServer } from '../../media/fake';
import type { DrachtioServer } from '../helpers/drachtio';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import type { Phone } from '../helpers/phone';
import type { RedisServer } from '../helpers/redisServer';
import { runSipp, type SippResult } from '../helpers/sipp';
import { parseOplog } from '../../lib/events';

describeLayer('sip', 'queue calls (ACD) with sipp callers and SIP.js agents', () => {
  let stack: SipStack;
  let redisServer: RedisServer;
  let drachtio: DrachtioServer;
  let app: App;
  let raw: Redis;
  let media: FakeMediaServer;

  beforeAll(async () => {
    stack = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: {
        '8000': { ringSeconds: 1.5, noAnswerLimit: 1, maxWaitSeconds: 60 },
        '8001': { strategy: 'ring_all', ringSeconds: 3, maxWaitSeconds: 60 },
      },
    });
    ({ redisServer, drachtio, app, raw, media } = stack);
  });
  afterAll(async () => {
    await stack?.close();
  });
  beforeEach(async () => {
    await stack.reset();
  });

  const agentPhone = (user: string): Promise<Phone> => stack.phone(user);
  const states = async (agent: string): Promise<Record<string, string>> =>
    Object.fromEntries((await app.engine.states('default', agent)).map((v) => [v.queue, v.state]));
  /** A trunk caller (sipp) that waits to be released by the far end. */
  const caller = (queue: string): Promise<SippResult> =>
    runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${drachtio.sipPort}`, service: queue, user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'] });
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  const event = (pred: (e: CcsEvent) => boolean): Promise<CcsEvent> => waitForEvent(redisServer.url, 'ccs:{default}:events', pred, 0, 15000);
  const callerEvent = async (reason: string): Promise<QueueCallerEvent> => (await event((e) => e.type === 'queue.caller' && e.reason === reason)) as QueueCallerEvent;
  /** The agent as `GET /callcenter/default/agent/{id}` shows it. */
  const getAgent = async (agent: string): Promise<{ reservation: Record<string, unknown> | null; acdCall: Record<string, unknown> | null }> => {
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const res = await fetch(`http://127.0.0.1:${port}/callcenter/default/agent/${agent}`, { headers: { authorization: 'Bearer test-token-0123456789' } });
    expect(res.status).toBe(200);
    return (await res.json()) as Awaited<ReturnType<typeof getAgent>>;
  };

  it('a caller to 8000 waits with music, is offered to the Ready agent, and both end up in one conversation; hang-up, wrap-up, Ready', async () => {
    await app.engine.login('default', '1001');
    const agent = await agentPhone('1001');
    const incoming = agent.nextIncoming();
    const sipp = caller('8000');
    const leg = await incoming;
    const answered = await callerEvent('answered');
    expect(answered).toMatchObject({ queue: '8000', caller: '5550100', agent: '1001' });
    expect(typeof (answered as { waitedMs?: unknown }).waitedMs).toBe('number');
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
    expect(await states('1001')).toEqual({ '8000': S.QueueCall });
    // The agent's view names the call: queue, task, caller and how long the caller waited.
    const view = await getAgent('1001');
    expect(view.acdCall).toEqual({ task: answered.task, queue: '8000', caller: '5550100', callId: expect.stringMatching(/^\d+-\d+@/), waitedMs: answered.waitedMs, answeredAt: answered.ts });
    expect(view.reservation).toBeNull();
    // The caller's SIP Call-ID (sipp's `<n>-<pid>@<ip>`) keys the agent's state and the call guard.
    const callId = String(view.acdCall!.callId);
    expect((await app.engine.states('default', '1001'))[0]!.callId).toBe(callId);
    expect(await raw.hget(`ccs:{default}:guard:${app.guard.incarnation}`, callId)).toBe(`1001|${answered.task}|8000`);
    const op = await raw.xrevrange('ccs:{default}:oplog', '+', '-', 'COUNT', 1);
    expect(parseOplog(op[0] as [string, string[]]).op).toBe(4); // talking
    // The agent's leg joins the conversation after its state changed: wait for its record.
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
    const confs = [...media.conferences.values()];
    expect(confs).toHaveLength(1);
    expect(confs[0]!.moh).toMatch(/^tone_stream:\/\//);
    expect([...confs[0]!.members.values()]).toEqual([1, 1]);

    await leg.hangup(); // the agent ends the call; the caller gets BYE
    expectOk(await sipp);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.WrapUp);
    expect((await getAgent('1001')).acdCall).toBeNull();
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.WrapUp);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready);
    const stats = await raw.hgetall('ccs:{default}:queue:8000:stats');
    expect(stats).toMatchObject({ entered: '1', answered: '1', handled: '1' });
    expect(media.endpoints).toBe(0);
  });

  it('an agent who does not answer within ringSeconds is passed over for the next; at the no-answer limit it goes Not Ready (2)', async () => {
    await app.engine.login('default', '1001'); // idle longest: offered first
    await app.engine.login('default', '1002');
    const silent = await agentPhone('1001');
    silent.policy = { ring: true };
    const answering = await agentPhone('1002');
    const rang = silent.nextIncoming();
    const incoming = answering.nextIncoming();
    const sipp = caller('8000');
    const missed = await rang;
    await missed.ended; // cancelled at the ring timeout
    const leg = await incoming;
    await callerEvent('answered');
    const nr = await app.engine.states('default', '1001');
    expect(nr.map((v) => [v.state, v.reason])).toEqual([[S.NotReady, 2]]);
    await leg.hangup();
    expectOk(await sipp);
  });

  it('an agent who rejects (486) goes Not Ready with reason 7 and the call goes to the next agent', async () => {
    await app.engine.login('default', '1001');
    await app.engine.login('default', '1002');
    const rejecting = await agentPhone('1001');
    rejecting.policy = { reject: 486 };
    const answering = await agentPhone('1002');
    const incoming = answering.nextIncoming();
    const sipp = caller('8000');
    const leg = await incoming;
    await callerEvent('answered');
    const nr = await app.engine.states('default', '1001');
    expect(nr.map((v) => [v.state, v.reason])).toEqual([[S.NotReady, 7]]);
    await leg.hangup();
    expectOk(await sipp);
  });

  it('ring_all: two agents answering at once — one is bridged, the other gets BYE and stays Ready', async () => {
    await app.engine.login('default', '1004');
    await app.engine.ready('default', '1004');
    await app.engine.login('default', '1005');
    await app.engine.ready('default', '1005');
    const p4 = await agentPhone('1004');
    const p5 = await agentPhone('1005');
    const in4 = p4.nextIncoming();
    const in5 = p5.nextIncoming();
    const sipp = caller('8001');
    const answered = await callerEvent('answered');
    const winner = await (answered.agent === '1004' ? in4 : in5);
    const loserId = answered.agent === '1004' ? '1005' : '1004';
    // The winner joins the conversation only after every other branch was released: the
    // loser got BYE, or CANCEL — which may reach drachtio before the INVITE was even
    // forwarded to its phone, so the test does not wait for the loser's phone to ring.
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === answered.agent);
    expect(await states(loserId)).toEqual({ '8001': S.Ready });
    expect(await states(String(answered.agent))).toEqual({ '8001': S.QueueCall });
    expect(await raw.get(`ccs:{default}:resv:${loserId}`)).toBeNull();
    await winner.hangup();
    expectOk(await sipp);
  });

  it('a caller who hangs up while the agent rings abandons: the agent leg is cancelled and the agent stays Ready', async () => {
    await app.engine.login('default', '1001');
    const agent = await agentPhone('1001');
    agent.policy = { ring: true };
    const callerPhone = await agentPhone('1003'); // any authenticated phone may dial a queue
    const ringing = agent.nextIncoming();
    const call = await callerPhone.dial('8000'); // answered at once: music on hold
    const offered = await ringing;
    // While it rings the agent is under a lease for the caller's task.
    const enqueued = await callerEvent('enqueued');
    const view = await getAgent('1001');
    expect(view.reservation).toMatchObject({ task: enqueued.task, queue: '8000', token: expect.any(Number) });
    expect(view.reservation!.expiresInMs).toBeGreaterThan(0);
    expect(view.acdCall).toBeNull();
    await call.hangup();
    await offered.ended;
    const abandoned = await callerEvent('abandoned');
    expect(abandoned).toMatchObject({ queue: '8000', caller: '1003' });
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    expect(await raw.get('ccs:{default}:resv:1001')).toBeNull();
    expect(await raw.hget('ccs:{default}:queue:8000:stats', 'abandoned')).toBe('1');
  });

  it('a trunk call with an enqueue document for agent 1002 rings only 1002 (not the longer-idle 1001), at the priority given', async () => {
    await app.engine.login('default', '1001'); // idle longest: would be first without conditions
    await app.engine.login('default', '1002');
    const other = await agentPhone('1001');
    other.policy = { reject: 486 }; // if it were rung, it would show as Not Ready (7)
    const target = await agentPhone('1002');
    const incoming = target.nextIncoming();
    const doc = encodeURIComponent('<enqueue queue="8000" priority="7" timeout="30"><agent id="1002"/></enqueue>');
    const sipp = runSipp({ scenario: 'trunk-call-enqueue.xml', replace: { __ENQUEUE__: doc }, target: `127.0.0.1:${drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'] });
    const leg = await incoming;
    const answered = await callerEvent('answered');
    expect(answered.agent).toBe('1002');
    const offered = await callerEvent('offered');
    expect(offered.agents).toEqual(['1002']);
    expect(await app.tasks.get('default', answered.task)).toMatchObject({ priority: 7, conditions: { agents: ['1002'] } });
    expect(await states('1001')).toEqual({ '8000': S.Ready });
    await leg.hangup();
    expectOk(await sipp);
  });

  it.each([
    ['a DTD', '<!DOCTYPE e [<!ENTITY x "y">]><enqueue queue="8000"/>'],
    ['another queue than the one dialed', '<enqueue queue="8001"/>'],
    ['an unknown agent', '<enqueue queue="8000"><agent id="9999"/></enqueue>'],
  ])('an enqueue document with %s is refused with 400 and nothing is queued', async (_what, xml) => {
    const r = await runSipp({ scenario: 'trunk-enqueue-final.xml', status: 400, replace: { __ENQUEUE__: encodeURIComponent(xml) }, target: `127.0.0.1:${drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2' });
    expectOk(r);
    expect(await raw.hget('ccs:{default}:queue:8000:stats', 'entered')).toBeNull();
    expect(media.endpoints).toBe(0);
  });
});
