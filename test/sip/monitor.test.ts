/**
 * Supervisors through a real drachtio-server (DESIGN.md section 12): a supervisor's SIP.js
 * phone registers with digest auth like an agent's; `*63<extension>[*<mode>]` from it joins
 * the agent's queue call as a supervisor leg; DTMF (SIP INFO) switches the mode; intercept
 * takes the call over; the leg is released when the agent's call ends; every refusal is heard
 * (prompt, then BYE with the reason) or answered with 403. Media is the static-SDP fake, whose
 * conference records each member's mode and who does not hear whom.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent, ConversationEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { CallRefused, type Phone, type PhoneCall } from '../helpers/phone';
import { restClient, type Rest } from '../helpers/rest';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { connectEvents, type Frame } from '../helpers/wsClient';

/** The monitored agent's own token (DESIGN.md section 12: role agent). */
const AGENT_TOKEN = 'agent-1001-token-0123456789';

describeLayer('sip', 'supervisor monitoring (*63)', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({
      wrapUpSeconds8000: 0.2,
      queues: { '8000': { ringSeconds: 20, maxWaitSeconds: 60 } },
      apiTokens: ['test-token-0123456789', { token: AGENT_TOKEN, name: 'desk-1001', role: 'agent', agent: '1001', callcenter: 'default' }],
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
  interface LegView { leg: string; kind: string; agent?: string; supervisor?: string; monitor?: string; mode: number; state: string }
  const legs = async (id: string): Promise<LegView[]> => ((await rest('GET', `/callcenter/default/conversation/${id}`)).body as { legs: LegView[] }).legs.filter((l) => l.state !== 'gone');
  const oplog = async (agent: string): Promise<{ op: number; object: number; reason: number; by?: string }[]> => (await rest('GET', `/callcenter/default/oplog?agent=${agent}`)).body.entries as { op: number; object: number; reason: number; by?: string }[];
  const states = async (agent: string): Promise<string[]> => (await s.app.engine.states('default', agent)).map((v) => v.state);
  const supEvent = (id: string, action: string, monitor: string, since = 0): Promise<ConversationEvent> =>
    event((e) => e.type === 'conversation' && e.id === id && e.action === action && e.kind === 'supervisor' && (e as ConversationEvent & { monitor?: string }).monitor === monitor, since) as Promise<ConversationEvent>;
  /** Sends one DTMF digit as SIP INFO (application/dtmf-relay), as desk phones do. */
  const dtmf = async (call: PhoneCall, digit: string): Promise<void> => {
    await call.session.info({ requestOptions: { body: { contentDisposition: 'render', contentType: 'application/dtmf-relay', content: `Signal=${digit}\r\nDuration=160\r\n` } } });
  };

  /** A queue call from phone 1003 to 8000 answered by 1001; returns the conversation id and both calls. */
  async function queueCall(): Promise<{ id: string; caller: PhoneCall; agentCall: PhoneCall; agent: Phone }> {
    await s.app.engine.login('default', '1001', { queue: '8000' });
    await s.app.engine.ready('default', '1001', { queue: '8000' });
    const agent = await s.phone('1001');
    const caller = await s.phone('1003');
    const incoming = agent.nextIncoming();
    const callerCall = await caller.dial('8000');
    const agentCall = await incoming;
    await event((e) => e.type === 'queue.caller' && e.reason === 'answered' && e.agent === '1001');
    const joined = (await event((e) => e.type === 'conversation' && e.action === 'joined' && e.agent === '1001')) as ConversationEvent;
    return { id: joined.id, caller: callerCall, agentCall, agent };
  }

  it('a supervisor phone registers with digest auth and GET supervisors shows it registered', async () => {
    const before = await rest('GET', '/callcenter/default/supervisors');
    expect(before.status).toBe(200);
    expect(before.body.supervisors).toEqual([
      { id: 's1', name: 'Sales lead', extension: '1901', queues: ['8000'], registered: false, monitoring: null },
      { id: 's2', name: 'Support lead', extension: '1902', queues: ['8001'], registered: false, monitoring: null },
    ]);
    await s.phone('s1');
    const after = await rest('GET', '/callcenter/default/supervisors');
    expect(after.body.supervisors[0]).toMatchObject({ id: 's1', registered: true });
    expect(after.body.supervisors[1]).toMatchObject({ id: 's2', registered: false });
  });

  it('*631001 during 1001\'s queue call joins the conversation as a supervisor leg in listen (muted, op 20); DTMF 3 switches it to barge (op 10)', async () => {
    const q = await queueCall();
    const sup = await s.phone('s1');
    const call = await sup.dial('*631001');
    const joined = await supEvent(q.id, 'joined', 'listen');
    expect(joined).toMatchObject({ kind: 'supervisor', mode: 2, state: 'up' });
    expect(await legs(q.id)).toEqual([
      expect.objectContaining({ kind: 'caller', mode: 1 }),
      expect.objectContaining({ kind: 'agent', agent: '1001', mode: 1 }),
      expect.objectContaining({ kind: 'supervisor', supervisor: 's1', monitor: 'listen', mode: 2 }),
    ]);
    const conf = s.media.conferences.get(`ccs-${q.id}`)!;
    expect([...conf.members.values()].sort()).toEqual([1, 1, 2]);
    expect((await oplog('1001')).at(-1)).toMatchObject({ op: 20, object: 1901, reason: 0, by: 's1' });
    // The agent is told nothing: its own event stream has no supervisor leg event.
    expect((await rest('GET', '/callcenter/default/supervisors')).body.supervisors[0].monitoring).toEqual({ conversation: q.id, monitor: 'listen' });

    await dtmf(call, '3');
    const barge = await supEvent(q.id, 'mode', 'barge', joined.seq);
    expect(barge.mode).toBe(1);
    expect([...conf.members.values()].sort()).toEqual([1, 1, 1]);
    expect((await oplog('1001')).at(-1)).toMatchObject({ op: 10, object: 1901, by: 's1' });
    await q.caller.hangup();
    // The agent's call ended: the supervisor's leg is released with it.
    await call.ended;
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'ended');
  });

  it('*631001*2 whispers: the supervisor speaks, heard by the agent and not by the caller', async () => {
    const q = await queueCall();
    const sup = await s.phone('s1');
    await sup.dial('*631001*2');
    await supEvent(q.id, 'joined', 'whisper');
    const conf = s.media.conferences.get(`ccs-${q.id}`)!;
    const l = await legs(q.id);
    expect(l.find((x) => x.kind === 'supervisor')).toMatchObject({ monitor: 'whisper', mode: 1 });
    // Exactly one speaker-listener pair is cut: the supervisor towards the caller.
    expect(conf.unheard.size).toBe(1);
    const supMember = [...conf.members.keys()].find((k) => ![...conf.unheard].some((p) => p.endsWith(`>${k}`)) && [...conf.unheard].some((p) => p.startsWith(`${k}>`)));
    expect(supMember).toBeDefined();
    expect((await oplog('1001')).at(-1)).toMatchObject({ op: 20, by: 's1' });
    await q.agentCall.hangup();
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'ended');
  });

  it('DTMF 4 intercepts: the agent\'s phone gets BYE and the agent goes through its call end, the supervisor stays with the caller (op 43)', async () => {
    const q = await queueCall();
    const sup = await s.phone('s1');
    const call = await sup.dial('*631001');
    const joined = await supEvent(q.id, 'joined', 'listen');
    await dtmf(call, '4');
    await supEvent(q.id, 'mode', 'intercept', joined.seq);
    await q.agentCall.ended;
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'left' && e.agent === '1001');
    // Queue 8000 has 0.2 s wrap-up and auto-ready: the agent's normal call end.
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.QueueCall && e.state === S.WrapUp, joined.seq);
    expect((await legs(q.id)).map((l) => [l.kind, l.monitor ?? null, l.mode])).toEqual([['caller', null, 1], ['supervisor', 'intercept', 1]]);
    expect((await oplog('1001')).map((e) => e.op)).toContain(43);
    await q.caller.hangup();
    await call.ended;
    await event((e) => e.type === 'conversation' && e.id === q.id && e.action === 'ended');
  });

  it('*631001 on an agent that is on no call is answered with the prompt and released with Reason 409', async () => {
    await s.app.engine.login('default', '1001');
    const sup = await s.phone('s1');
    const call = await sup.dial('*631001');
    expect(await call.byeReason).toMatch(/cause=409;text="agent 1001 is not on a call"/);
    expect(s.media.playedTo.length).toBeGreaterThan(0);
  });

  it('*631004 (an agent of 8001 only) from s1 (queue 8000) is refused with Reason 403, and nobody joins', async () => {
    const sup = await s.phone('s1');
    const call = await sup.dial('*631004');
    expect(await call.byeReason).toMatch(/cause=403;text="agent 1004 is not in your queues"/);
  });

  it('an agent phone dialing *631002 is refused with 403 and nothing joins', async () => {
    const q = await queueCall();
    const other = await s.phone('1002');
    await expect(other.dial('*631001')).rejects.toEqual(new CallRefused(403));
    expect((await legs(q.id)).map((l) => l.kind)).toEqual(['caller', 'agent']);
    await q.caller.hangup();
  });

  it('a supervisor phone dialing a queue or a feature code is refused with 403', async () => {
    const sup = await s.phone('s1');
    await expect(sup.dial('8000')).rejects.toEqual(new CallRefused(403));
    await expect(sup.dial('*38')).rejects.toEqual(new CallRefused(403));
  });

  it('REST monitor rings the supervisor\'s phone; answered, it whispers; a second monitor changes the mode; monitor/stop releases it', async () => {
    const q = await queueCall();
    const sup = await s.phone('s1');
    const incoming = sup.nextIncoming();
    const res = await rest('POST', '/callcenter/default/supervisor/s1/monitor', { agent: '1001', mode: 'whisper' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ conversation: q.id, agent: '1001', supervisor: 's1', mode: 'whisper', state: 'ringing_supervisor' });
    const call = await incoming;
    const joined = await supEvent(q.id, 'joined', 'whisper');
    const again = await rest('POST', '/callcenter/default/supervisor/s1/monitor', { agent: '1001', mode: 'barge' });
    expect(again.body).toMatchObject({ state: 'monitoring', mode: 'barge' });
    await supEvent(q.id, 'mode', 'barge', joined.seq);
    expect(s.media.conferences.get(`ccs-${q.id}`)!.unheard.size).toBe(0);
    const stop = await rest('POST', '/callcenter/default/supervisor/s1/monitor/stop', {});
    expect(stop.status).toBe(200);
    await call.ended;
    expect((await legs(q.id)).map((l) => l.kind)).toEqual(['caller', 'agent']);
    const none = await rest('POST', '/callcenter/default/supervisor/s1/monitor/stop', {});
    expect(none).toMatchObject({ status: 409, body: { error: 'not_monitoring' } });
    await q.caller.hangup();
  });

  it('REST monitor of an agent on no call is 409 not_on_call, of an agent outside the supervisor\'s queues 403, of an unknown supervisor 404', async () => {
    await s.app.engine.login('default', '1001');
    expect(await rest('POST', '/callcenter/default/supervisor/s1/monitor', { agent: '1001', mode: 'listen' })).toMatchObject({ status: 409, body: { error: 'not_on_call' } });
    expect(await rest('POST', '/callcenter/default/supervisor/s1/monitor', { agent: '1004', mode: 'listen' })).toMatchObject({ status: 422, body: { error: 'invalid_request' } });
    expect(await rest('POST', '/callcenter/default/supervisor/nobody/monitor', { agent: '1001', mode: 'listen' })).toMatchObject({ status: 404, body: { error: 'unknown_supervisor' } });
    expect(await rest('POST', '/callcenter/default/supervisor/s1/monitor', { agent: '1001', mode: 'shout' })).toMatchObject({ status: 400 });
  });

  it('a forced logout during a queue call logs the agent out (ops 29, 0/257) and keeps the call up until it ends', async () => {
    const q = await queueCall();
    const res = await rest('POST', '/callcenter/default/agent/1001/force_logout', { supervisor: 's1' });
    expect(res.status).toBe(200);
    expect(await states('1001')).toEqual([S.LoggedOut]);
    expect((await oplog('1001')).slice(-2)).toEqual([expect.objectContaining({ op: 29, object: 1901, by: 's1' }), expect.objectContaining({ op: 0, reason: 257 })]);
    expect((await legs(q.id)).map((l) => l.kind)).toEqual(['caller', 'agent']);
    expect(q.agentCall.session.state).toBe('Established');
    await q.caller.hangup();
    await q.agentCall.ended;
    expect(await states('1001')).toEqual([S.LoggedOut]);
  });

  it('the monitored agent is not told of a supervisor listening in: its token sees no supervisor leg, by REST or events, until the supervisor barges in', async () => {
    const q = await queueCall();
    const addr = s.app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const ws = await connectEvents(`ws://127.0.0.1:${port}/callcenter/default/events`, { token: AGENT_TOKEN });
    try {
      ws.send({ op: 'subscribe', topics: [`conversation:${q.id}`, 'agent:1001'] });
      const snap = await ws.next('conversation snapshot', (f) => f.op === 'snapshot' && f.topic === `conversation:${q.id}`);
      expect(((snap.data as { conversation: { legs: unknown[] } }).conversation.legs).length).toBe(2);
      const sup = await s.phone('s1');
      const call = await sup.dial('*631001');
      const joined = await supEvent(q.id, 'joined', 'listen');
      const mine = restClient(s.app, AGENT_TOKEN);
      const seen = await mine('GET', `/callcenter/default/conversation/${q.id}`);
      expect(seen.status).toBe(200);
      expect((seen.body.legs as LegView[]).map((l) => l.kind)).toEqual(['caller', 'agent']);
      expect((await legs(q.id)).map((l) => l.kind)).toEqual(['caller', 'agent', 'supervisor']);
      await dtmf(call, '3');
      await supEvent(q.id, 'mode', 'barge', joined.seq);
      const isSup = (f: Frame): boolean => f.op === 'event' && (f.event as { kind?: string }).kind === 'supervisor';
      const barge = await ws.next('the barge event', (f) => isSup(f) && (f.event as { monitor?: string }).monitor === 'barge');
      expect(ws.frames.filter(isSup)).toEqual([barge]);
      expect(((await mine('GET', `/callcenter/default/conversation/${q.id}`)).body.legs as LegView[]).map((l) => l.kind)).toEqual(['caller', 'agent', 'supervisor']);
    } finally {
      await ws.close();
    }
    await q.caller.hangup();
  });
});
