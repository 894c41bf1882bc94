/**
 * Calls placed for agents (seed 002 part 2) through a real drachtio-server: call_out (click-to-
 * dial, and from inside a queue call, where the agent's extension call is re-INVITEd into the
 * new conversation and held in the old one), its two limits as Redis deadlines (one fired by
 * another instance), xferOut and xfer_agent on a live queue call, and every refusal with its
 * status and code. The outside party is sipp behind the test trunk; agents and callers are
 * SIP.js phones; media is the static-SDP fake.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent, ConversationEvent, QueueCallerEvent } from '../../lib/events';
import { startApp, type RunningApp } from '../helpers/app';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { restClient, type Rest } from '../helpers/rest';
import type { Phone, PhoneCall } from '../helpers/phone';
import { freePort } from '../helpers/redisServer';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, udpPortTaken, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'call_out, xferOut and xfer_agent', () => {
  let s: SipStack;
  let outsidePort: number;
  beforeAll(async () => {
    outsidePort = await freePort();
    s = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${outsidePort}`, pingSeconds: 0 /* the far end is a one-call sipp, not a carrier answering OPTIONS */, callerIds: ['4930100', '4930200'] } } },
      wrapUpSeconds8000: 0.2,
      queues: { '8000': { ringSeconds: 20, maxWaitSeconds: 60 } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });

  const event = (pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> => waitForEvent(s.redisServer.url, 'ccs:{default}:events', pred, since, 15000);
  const rest: Rest = (method, path, json) => restClient(s.app)(method, path, json);
  const agentOp = (agent: string, op: string, json: unknown, cc = 'default') => rest('POST', `/callcenter/${cc}/agent/${agent}/${op}`, json);
  interface LegView { leg: string; kind: string; agent?: string; mode: number; state: string }
  const conversation = async (id: string): Promise<{ legs: LegView[] }> => (await rest('GET', `/callcenter/default/conversation/${id}`)).body as { legs: LegView[] };
  const ops = async (agent: string): Promise<number[]> => ((await rest('GET', `/callcenter/default/oplog?agent=${agent}`)).body.entries as { op: number }[]).map((e) => e.op);
  /**
   * The outside party: one sipp UAS behind the trunk address. Resolves once sipp has bound its
   * port (an INVITE sent before would meet a closed port: 503), with the run's result to await.
   */
  const outside = async (scenario: string, to: string, o: { from?: string; status?: number } = {}): Promise<{ done: Promise<SippResult> }> => {
    const run = runSipp({
      scenario, target: `127.0.0.1:${s.drachtio.sipPort}`, service: to, user: 'outside', localIp: '127.0.0.3',
      replace: { __TO__: to, __FROM__: o.from ?? '4930100' }, ...(o.status ? { status: o.status } : {}),
      extra: ['-p', String(outsidePort), '-recv_timeout', '20000'],
    });
    await udpPortTaken('127.0.0.3', outsidePort, run);
    return { done: run };
  };
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`outside party (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  const states = async (agent: string): Promise<string[]> => (await s.app.engine.states('default', agent)).map((v) => v.state);
  /** Counts the re-INVITEs (offers after the first) a phone's call receives. */
  const remoteSdps = (): { sdps: string[]; on: (sdp: string) => void } => {
    const sdps: string[] = [];
    return { sdps, on: (sdp) => sdps.push(sdp) };
  };

  /** A queue call from phone 1003 answered by `agent` (Ready in 8000); returns the conversation id and both calls. */
  async function queueCall(agent: Phone, agentId: string): Promise<{ id: string; caller: PhoneCall; agentCall: PhoneCall }> {
    const caller = await s.phone('1003');
    const incoming = agent.nextIncoming();
    const callerCall = await caller.dial('8000');
    const agentCall = await incoming;
    const answered = await event((e) => e.type === 'queue.caller' && e.reason === 'answered' && e.agent === agentId);
    await event((e) => e.type === 'conversation' && e.action === 'joined' && e.agent === agentId);
    return { id: String((answered as QueueCallerEvent).task), caller: callerCall, agentCall };
  }

  it('call_out from no conversation rings the agent first (click-to-dial), then the number with the trunk\'s first caller id; the agent is Other Call until it hangs up', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.ready('default', '1001');
    const agent = await s.phone('1001');
    const far = await outside('uas-outside.xml', '5557000');
    const incoming = agent.nextIncoming();
    const res = await agentOp('1001', 'call_out', { to: '5557000', max_answer_seconds: 60 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ agent: '1001', to: '5557000', state: 'ringing_agent' });
    const id = res.body.conversation as string;
    const agentCall = await incoming;
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    const c = await conversation(id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.mode])).toEqual([['agent', 1], ['external', 1]]);
    expect(await states('1001')).toEqual([S.OtherCall]);
    await agentCall.hangup();
    expectOk(await far.done); // the outside party got its BYE
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'ended');
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.Ready && e.prev === S.OtherCall);
  });

  it('call_out during a queue call re-INVITEs the agent\'s call into the new conversation: on hold in the queue call (the caller alone hears music), active in the new one; resume moves it back', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.ready('default', '1001');
    const sdp = remoteSdps();
    const agent = await s.phone('1001', { onRemoteSdp: sdp.on });
    const q = await queueCall(agent, '1001');
    const offersBefore = sdp.sdps.length;
    const queueConf = s.media.conferences.get(`ccs-${q.id}`)!;
    expect(queueConf.members.size).toBe(2);
    const far = await outside('uas-outside.xml', '5557001', { from: '4930200' });
    const res = await agentOp('1001', 'call_out', { to: '5557001', from: '4930200', max_answer_seconds: 60 });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('dialing');
    const id = res.body.conversation as string;
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    // One phone call, re-INVITEd (no second incoming call); held in the queue call, its media gone from there.
    expect(sdp.sdps.length).toBe(offersBefore + 1);
    const old = await conversation(q.id);
    expect(old.legs.find((l) => l.kind === 'agent')!.mode).toBe(4);
    expect(queueConf.members.size).toBe(1);
    const fresh = await conversation(id);
    expect(fresh.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.mode])).toEqual([['agent', 1], ['external', 1]]);
    const view = (await rest('GET', '/callcenter/default/agent/1001')).body as { conversations: { id: string; active: boolean }[] };
    expect(view.conversations.map((c) => [c.id, c.active]).sort()).toEqual([[id, true], [q.id, false]].sort());
    // Back to the caller: the line moves again, the call-out conversation holds the agent.
    const back = await agentOp('1001', 'resume', { conversation_id: q.id });
    expect(back.status).toBe(200);
    expect(sdp.sdps.length).toBe(offersBefore + 2);
    expect(queueConf.members.size).toBe(2);
    expect((await conversation(id)).legs.find((l) => l.kind === 'agent')!.mode).toBe(4);
    // The agent hangs up: both conversations lose it and end; the outside party gets its BYE.
    await q.agentCall.hangup();
    expectOk(await far.done);
    await q.caller.ended;
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'ended');
  });

  it('a queue call that ends while its agent is on a call-out leaves the agent Other Call, not Wrap Up or Ready, until the call-out ends', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.ready('default', '1001');
    const agent = await s.phone('1001');
    const q = await queueCall(agent, '1001');
    const far = await outside('uas-outside.xml', '5557006');
    const res = await agentOp('1001', 'call_out', { to: '5557006', max_answer_seconds: 60 });
    const id = res.body.conversation as string;
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    const since = Number(await s.raw.get('ccs:{default}:events:seq'));
    await q.caller.hangup();
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'ended');
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.OtherCall, since);
    expect(await states('1001')).toEqual([S.OtherCall]);
    await q.agentCall.hangup();
    expectOk(await far.done);
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'ended');
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.Ready);
  });

  it('max_dial_seconds cancels an unanswered number (a Redis deadline): the dial leaves with 408, the agent hears the error prompt and is released', async () => {
    const agent = await s.phone('1001');
    const far = await outside('uas-ring.xml', '5557002');
    const incoming = agent.nextIncoming();
    const res = await agentOp('1001', 'call_out', { to: '5557002', max_dial_seconds: 1, max_answer_seconds: 60 });
    expect(res.status).toBe(200);
    const id = res.body.conversation as string;
    const agentCall = await incoming;
    const left = await event((e) => e.type === 'conversation' && e.id === id && e.action === 'left' && e.kind === 'external');
    expect((left as ConversationEvent).cause).toBe('408 Ring Limit Reached');
    expectOk(await far.done); // CANCEL received
    await agentCall.ended;
    expect(s.media.played).toContain('error');
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'ended');
  });

  it('max_answer_seconds ends the call once answered, fired by another instance while the owner\'s timers are stopped', async () => {
    const other: RunningApp = await startApp({ redisUrl: s.redisServer.url, instanceId: 'test-b' });
    try {
      await s.app.worker.stop(); // only the other instance can fire it now
      const agent = await s.phone('1001');
      const far = await outside('uas-outside.xml', '5557003');
      const incoming = agent.nextIncoming();
      const res = await agentOp('1001', 'call_out', { to: '5557003', max_answer_seconds: 1 });
      const id = res.body.conversation as string;
      const agentCall = await incoming;
      await event((e) => e.type === 'conversation' && e.id === id && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
      await event((e) => e.type === 'conversation' && e.id === id && e.action === 'ended');
      expectOk(await far.done);
      await agentCall.ended;
      expect(await s.raw.zscore('ccs:{default}:deadlines', `maxtalk|${id}|${(await conversation(id)).legs.find((l) => l.kind === 'external')!.leg}`)).toBeNull();
    } finally {
      s.app.worker.start();
      await other.close();
    }
  });

  it('xferOut on a queue call: the agent leaves (BYE, Wrap Up, op 46), the caller is put through to the number; its hang-up releases the outside party', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.ready('default', '1001');
    const agent = await s.phone('1001');
    const q = await queueCall(agent, '1001');
    const far = await outside('uas-outside.xml', '5557004');
    const res = await agentOp('1001', 'xferOut', { conversation_id: q.id, to: '5557004', max_answer_seconds: 60 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ conversation: q.id, state: 'dialing' });
    await q.agentCall.ended;
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.WrapUp);
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    const c = await conversation(q.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => l.kind)).toEqual(['caller', 'external']);
    expect(await ops('1001')).toContain(46);
    await q.caller.hangup();
    expectOk(await far.done);
  });

  it('xferOut to a busy number: the caller hears the error prompt and is released', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.ready('default', '1001');
    const agent = await s.phone('1001');
    const q = await queueCall(agent, '1001');
    const far = await outside('uas-reject.xml', '5557005', { status: 486 });
    const before = s.media.played.length;
    const res = await agentOp('1001', 'xferOut', { conversation_id: q.id, to: '5557005', max_answer_seconds: 60 });
    expect(res.status).toBe(200);
    await q.caller.ended;
    expect(s.media.played.slice(before)).toContain('error');
    const left = await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'left' && e.kind === 'external');
    expect((left as ConversationEvent).cause).toMatch(/^486/);
    expect((await far.done).code).toBe(0);
  });

  it('xfer_agent queues the caller again before the agent leaves: 1001 goes to Wrap Up (op 45), 1002 joins the same conversation', async () => {
    for (const a of ['1001', '1002']) await s.app.engine.login('default', a);
    await s.app.engine.ready('default', '1001');
    const a1 = await s.phone('1001');
    const a2 = await s.phone('1002');
    const q = await queueCall(a1, '1001');
    const ringing2 = a2.nextIncoming();
    await s.app.engine.ready('default', '1002');
    const res = await agentOp('1001', 'xfer_agent', { conversation_id: q.id, queue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ conversation: q.id, queue: '8000' });
    await q.agentCall.ended;
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.WrapUp);
    const secondCall = await ringing2;
    const second = (await event((e) => e.type === 'queue.caller' && e.reason === 'answered' && e.agent === '1002' && e.task === res.body.task)) as QueueCallerEvent & { ts: number };
    // The caller's wait is carried across the transfer: counted from its first enqueue.
    const first = (await event((e) => e.type === 'queue.caller' && e.reason === 'enqueued' && e.task === q.id)) as QueueCallerEvent & { ts: number };
    expect(second.waitedMs).toBeGreaterThanOrEqual(second.ts - first.ts - 1);
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'joined' && e.agent === '1002');
    const c = await conversation(q.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.agent ?? null])).toEqual([['caller', null], ['agent', '1002']]);
    expect(await ops('1001')).toContain(45);
    await secondCall.hangup();
    await q.caller.ended;
  });

  it('xfer_agent of a trunk call to an extension: the task is queued on the conversation first, 1001 leaves (op 45), 1002 answers it in the same conversation (Queue Call)', async () => {
    for (const a of ['1001', '1002']) await s.app.engine.login('default', a);
    const a1 = await s.phone('1001');
    const a2 = await s.phone('1002');
    const in1 = a1.nextIncoming();
    const sipp = runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: '1001', user: '5551234', localIp: '127.0.0.3', extra: ['-recv_timeout', '20000'] });
    const c1 = await in1;
    const joined = (await event((e) => e.type === 'conversation' && e.action === 'joined' && e.agent === '1001')) as ConversationEvent;
    await event((e) => e.type === 'conversation' && e.id === joined.id && e.action === 'joined' && e.kind === 'caller');
    const in2 = a2.nextIncoming();
    const res = await agentOp('1001', 'xfer_agent', { conversation_id: joined.id, queue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ conversation: joined.id, queue: '8000' });
    await c1.ended;
    const c2 = await in2;
    await event((e) => e.type === 'queue.caller' && e.reason === 'answered' && e.agent === '1002' && (e as QueueCallerEvent).task === res.body.task);
    await event((e) => e.type === 'conversation' && e.id === joined.id && e.action === 'joined' && e.agent === '1002');
    const c = await conversation(joined.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.agent ?? null])).toEqual([['caller', null], ['agent', '1002']]);
    expect(await states('1002')).toEqual([S.QueueCall]);
    expect(await ops('1001')).toContain(45);
    await c2.hangup();
    expectOk(await sipp);
    await event((e) => e.type === 'agent.state' && e.agent === '1002' && e.prev === S.QueueCall);
  });

  it('call_agent rings the caller first, then the Ready colleague the enqueue document picks: both Other Call with operation 41, in one conversation', async () => {
    for (const a of ['1001', '1002']) await s.app.engine.login('default', a);
    await s.app.engine.ready('default', '1002');
    const caller = await s.phone('1001');
    const callee = await s.phone('1002');
    const callerRings = caller.nextIncoming();
    const calleeRings = callee.nextIncoming();
    const res = await agentOp('1001', 'call_agent', { enqueue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ agent: '1001', queue: '8000', state: 'ringing_agent' });
    const id = res.body.conversation as string;
    const mine = await callerRings;
    const theirs = await calleeRings;
    await event((e) => e.type === 'conversation' && e.id === id && e.action === 'joined' && e.agent === '1002');
    const c = await conversation(id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.agent, l.mode])).toEqual([['1001', 1], ['1002', 1]]);
    expect(await states('1001')).toEqual([S.OtherCall]);
    expect(await states('1002')).toEqual([S.OtherCall]);
    const o1 = await ops('1001');
    const o2 = await ops('1002');
    expect(o1[o1.length - 1]).toBe(41);
    expect(o2[o2.length - 1]).toBe(41);
    await theirs.hangup();
    await mine.ended;
    await event((e) => e.type === 'agent.state' && e.agent === '1002' && e.state === S.Ready);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.OtherCall);
  });

  it('call_agent never offers a colleague reserved for a ringing queue call: it waits, and at its timeout the caller hears the error prompt and is released', async () => {
    await s.app.engine.login('default', '1002'); // the only agent the queue caller can get
    const a1 = await s.phone('1001');
    const a2 = await s.phone('1002');
    a2.policy = { ring: true };
    const queued = await s.phone('1003');
    const offered = a2.nextIncoming();
    const waiting = queued.startDial('8000');
    await event((e) => e.type === 'queue.caller' && e.reason === 'offered');
    const ringingQueueCall = await offered; // 1002 reserved and ringing for the queue caller
    const mine = a1.nextIncoming();
    const res = await agentOp('1001', 'call_agent', { enqueue: '<enqueue queue="8000" timeout="1"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    const myCall = await mine;
    const timeout = await event((e) => e.type === 'queue.caller' && e.reason === 'timeout' && (e as QueueCallerEvent).task === res.body.task);
    expect(timeout).toMatchObject({ queue: '8000', caller: '1001' });
    // Never offered: 1002 stayed reserved for the queue caller the whole time.
    const all = (await s.raw.xrange('ccs:{default}:events', '-', '+')).map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!) as { task?: string; reason?: string });
    expect(all.filter((e) => e.task === res.body.task).map((e) => e.reason)).toEqual(['enqueued', 'timeout']);
    await myCall.ended;
    expect(s.media.played).toContain('error');
    await ringingQueueCall.hangup();
    await waiting.cancel().catch(() => undefined);
  });

  /** A queue call 1003 → 1001 and a consultation of 1002 from it, answered; returns both conversations. */
  async function consulting(): Promise<{ q: Awaited<ReturnType<typeof queueCall>>; b: string; colleague: PhoneCall; sdps: string[] }> {
    for (const a of ['1001', '1002']) await s.app.engine.login('default', a);
    const sdp = remoteSdps();
    const a1 = await s.phone('1001', { onRemoteSdp: sdp.on });
    const a2 = await s.phone('1002', { onRemoteSdp: (x) => sdp.sdps.push(`1002:${x}`) });
    const q = await queueCall(a1, '1001');
    await s.app.engine.ready('default', '1002');
    const rings = a2.nextIncoming();
    const res = await agentOp('1001', 'consult', { conversation_id: q.id, enqueue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ consulting: q.id, queue: '8000', state: 'queued' });
    const b = res.body.conversation as string;
    const colleague = await rings;
    await event((e) => e.type === 'conversation' && e.id === b && e.action === 'joined' && e.agent === '1002');
    // Meanwhile the caller waits on hold: the agent is on 4 in the caller's conversation.
    expect((await conversation(q.id)).legs.find((l) => l.agent === '1001')!.mode).toBe(4);
    return { q, b, colleague, sdps: sdp.sdps };
  }

  it('consult → transfer: the caller waits on hold while 1001 talks to 1002, then 1002 is handed to the caller (re-INVITE) and 1001 leaves (op 40 reason 3)', async () => {
    const { q, b, colleague, sdps } = await consulting();
    const before = sdps.filter((x) => x.startsWith('1002:')).length;
    const res = await agentOp('1001', 'consult_complete', { conversation_id: q.id, how: 'transfer' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ conversation: q.id, consultation: b, how: 'transfer' });
    await q.agentCall.ended; // 1001's phone got its BYE
    await event((e) => e.type === 'conversation' && e.id === b && e.action === 'ended');
    expect(sdps.filter((x) => x.startsWith('1002:')).length).toBe(before + 1); // re-INVITEd into the caller's conversation
    const c = await conversation(q.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.agent ?? null, l.mode])).toEqual([['caller', null, 1], ['agent', '1002', 1]]);
    expect(await states('1002')).toEqual([S.OtherCall]);
    // Still guarded: if this instance died now, another would end 1002's call.
    const guardKey = `ccs:{default}:guard:${s.app.guard.incarnation}`;
    expect(await s.raw.hget(guardKey, `callagent-${b}-callee`)).toMatch(/^1002\|/);
    expect(await ops('1001')).toContain(40);
    await q.caller.hangup();
    await colleague.ended;
    await event((e) => e.type === 'agent.state' && e.agent === '1002' && e.state === S.Ready && e.prev === S.OtherCall);
    expect(await s.raw.hget(guardKey, `callagent-${b}-callee`)).toBeNull();
  });

  it('consult → conference: the consulted colleague joins the caller and 1001 resumes, all three in mode 1 (op 10)', async () => {
    const { q, b, colleague } = await consulting();
    const res = await agentOp('1001', 'consult_complete', { conversation_id: q.id, how: 'conference' });
    expect(res.status).toBe(200);
    await event((e) => e.type === 'conversation' && e.id === b && e.action === 'ended');
    const c = await conversation(q.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.agent ?? null, l.mode])).toEqual([['caller', null, 1], ['agent', '1001', 1], ['agent', '1002', 1]]);
    expect(s.media.conferences.get(`ccs-${q.id}`)!.members.size).toBe(3);
    expect(await ops('1001')).toContain(10);
    // The caller leaves: the two agents stay together (two parties); the colleague leaves: over.
    await q.caller.hangup();
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'left' && e.kind === 'caller');
    expect((await conversation(q.id)).legs.filter((l) => l.state !== 'gone').map((l) => l.agent)).toEqual(['1001', '1002']);
    await colleague.hangup();
    await q.agentCall.ended;
  });

  it('consult → cancel: the consultation ends (1002 gets BYE) and 1001 is back with the caller in mode 1', async () => {
    const { q, b, colleague } = await consulting();
    const res = await agentOp('1001', 'consult_cancel', { conversation_id: q.id });
    expect(res.status).toBe(200);
    await colleague.ended;
    await event((e) => e.type === 'conversation' && e.id === b && e.action === 'ended');
    const c = await conversation(q.id);
    expect(c.legs.filter((l) => l.state !== 'gone').map((l) => [l.kind, l.agent ?? null, l.mode])).toEqual([['caller', null, 1], ['agent', '1001', 1]]);
    expect(s.media.conferences.get(`ccs-${q.id}`)!.members.size).toBe(2);
    expect(await agentOp('1001', 'consult_cancel', { conversation_id: q.id })).toMatchObject({ status: 409, body: { error: 'conflict' } });
    expect(await agentOp('1001', 'consult', { conversation_id: q.id })).toMatchObject({ status: 422, body: { error: 'invalid_request' } });
    await q.caller.hangup();
    await q.agentCall.ended;
  });

  it('refusals: no outbound trunk 409, a from the trunk does not allow 422, limits out of range 422, an unregistered agent 409, transfers of a conversation the agent is not in 404', async () => {
    expect(await agentOp('2001', 'call_out', { to: '5557000', max_answer_seconds: 60 }, 'other')).toMatchObject({ status: 409, body: { error: 'no_outbound_trunk' } });
    expect(await agentOp('1001', 'call_out', { to: '5557000', from: '5550000', max_answer_seconds: 60 })).toMatchObject({ status: 422, body: { error: 'from_not_allowed' } });
    expect(await agentOp('1001', 'call_out', { to: '5557000', max_answer_seconds: 0 })).toMatchObject({ status: 422, body: { error: 'invalid_request' } });
    expect(await agentOp('1001', 'call_out', { to: '5557000', max_dial_seconds: 301, max_answer_seconds: 60 })).toMatchObject({ status: 422, body: { error: 'invalid_request' } });
    expect(await agentOp('1001', 'call_out', { to: 'sip:evil@x', max_answer_seconds: 60 })).toMatchObject({ status: 422, body: { error: 'invalid_request' } });
    expect(await agentOp('1001', 'call_out', { to: '5557000' })).toMatchObject({ status: 400 });
    expect(await agentOp('1002', 'call_out', { to: '5557000', max_answer_seconds: 60 })).toMatchObject({ status: 409, body: { error: 'agent_unreachable' } });
    expect(await agentOp('1002', 'call_agent', { enqueue: '<enqueue queue="8000"/>' })).toMatchObject({ status: 409, body: { error: 'agent_unreachable' } });
    expect(await agentOp('1001', 'call_agent', { enqueue: '<enqueue queue="9999"/>' })).toMatchObject({ status: 404, body: { error: 'unknown_queue' } });
    expect(await agentOp('1001', 'call_agent', { enqueue: '<enqueue queue="8000"><agent id="nobody"/></enqueue>' })).toMatchObject({ status: 400, body: { error: 'malformed_enqueue' } });
    expect(await agentOp('1001', 'call_agent', { enqueue: '<!DOCTYPE x [<!ENTITY e "x">]><enqueue queue="8000"/>' })).toMatchObject({ status: 400, body: { error: 'malformed_enqueue' } });
    expect(await agentOp('1001', 'xferOut', { conversation_id: 'nope', to: '5557000', max_answer_seconds: 60 })).toMatchObject({ status: 404, body: { error: 'unknown_conversation' } });
    expect(await agentOp('1001', 'xfer_agent', { conversation_id: 'nope', queue: '<enqueue queue="8000"/>' })).toMatchObject({ status: 404, body: { error: 'unknown_conversation' } });
    expect(await agentOp('1001', 'xfer_agent', { conversation_id: 'nope', queue: '<enqueue queue="9999"/>' })).toMatchObject({ status: 404, body: { error: 'unknown_queue' } });
    // Nothing was left behind by the refusals.
    expect(await s.raw.zcard('ccs:{default}:convs')).toBe(0);
    expect(await states('1001')).toEqual([S.LoggedOut]);
  });
});
