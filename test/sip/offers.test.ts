/**
 * Seed 002 agent operations on a live queue call through a real drachtio-server, with sipp
 * callers and SIP.js agents (media: the static-SDP fake): reject with data (back to the trunk's
 * IVR in the BYE, or to the next agent), forward_agent (re-queued to other agents, the first
 * not penalised), and pause / resume while the call is up, with the conversation events in order.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import { parseEvent, type CcsEvent, type QueueCallerEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { restClient, type Rest } from '../helpers/rest';
import type { PhoneCall } from '../helpers/phone';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'reject, forward_agent, pause and resume on live queue calls', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.2,
      queues: { '8000': { ringSeconds: 20, noAnswerLimit: 3, maxWaitSeconds: 60 } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });

  const event = (pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> => waitForEvent(s.redisServer.url, 'ccs:{default}:events', pred, since, 15000);
  const callerEvent = async (reason: string): Promise<QueueCallerEvent> => (await event((e) => e.type === 'queue.caller' && e.reason === reason)) as QueueCallerEvent;
  const rest: Rest = (method, path, json) => restClient(s.app)(method, path, json);
  const agentOp = (agent: string, op: string, json: unknown) => rest('POST', `/callcenter/default/agent/${agent}/${op}`, json);
  const trunkCaller = (scenario: string, replace?: Record<string, string>): Promise<SippResult> =>
    runSipp({ scenario, target: `127.0.0.1:${s.drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'], ...(replace ? { replace } : {}) });
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  const states = async (agent: string): Promise<string[]> => (await s.app.engine.states('default', agent)).map((v) => v.state);

  it('reject with data: the trunk caller is released with a BYE carrying X-CCS-Reject-Data and Reason, queue.caller rejected carries the data, the agent is Not Ready (7)', async () => {
    await s.app.engine.login('default', '1001');
    const agent = await s.phone('1001');
    agent.policy = { ring: true };
    const ringing = agent.nextIncoming();
    const data = 'order=42&lang=fr é';
    const sipp = trunkCaller('trunk-call-rejected.xml', { __REJECT_DATA__: encodeURIComponent(data) });
    const offered = await callerEvent('offered');
    const leg = await ringing;
    const res = await agentOp('1001', 'reject', { queue_task_id: offered.task, data });
    expect(res).toEqual({ status: 200, body: { task: offered.task, agent: '1001', outcome: 'applied' } });
    expectOk(await sipp);
    const rejected = await callerEvent('rejected');
    expect(rejected).toMatchObject({ task: offered.task, queue: '8000', caller: '5550100', data });
    await leg.ended; // the ringing phone was cancelled
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.NotReady && (e as { reason?: unknown }).reason === 7);
    expect(await s.raw.hget('ccs:{default}:queue:8000:stats', 'rejected')).toBe('1');
    expect(await s.raw.zcard('ccs:{default}:queue:8000:tasks')).toBe(0);
  });

  it('reject of a caller who did not come through a trunk (no IVR) offers it to the next agent', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.login('default', '1002');
    const first = await s.phone('1001');
    first.policy = { ring: true };
    const second = await s.phone('1002');
    const caller = await s.phone('1003');
    const ringing = first.nextIncoming();
    const answeredBySecond = second.nextIncoming();
    const call = await caller.dial('8000'); // answered at once onto its conversation, with music
    const offered = await callerEvent('offered');
    expect(offered.agents).toEqual(['1001']);
    await ringing;
    expect((await agentOp('1001', 'reject', { queue_task_id: offered.task })).status).toBe(200);
    const leg = await answeredBySecond;
    const answered = await callerEvent('answered');
    expect(answered).toMatchObject({ task: offered.task, agent: '1002' });
    expect(await states('1001')).toEqual([S.NotReady]);
    await leg.hangup();
    await call.ended;
  });

  it('forward_agent re-queues the task to the agents of the enqueue document: the other agent rings and answers, the first is not penalised', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.login('default', '1002');
    const first = await s.phone('1001');
    first.policy = { ring: true };
    const second = await s.phone('1002');
    const ringing = first.nextIncoming();
    const secondGets = second.nextIncoming();
    const sipp = trunkCaller('trunk-call.xml');
    const offered = await callerEvent('offered');
    expect(offered.agents).toEqual(['1001']);
    const leg1 = await ringing;
    const res = await agentOp('1001', 'forward_agent', { queue_task_id: offered.task, enqueue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    const forwarded = await callerEvent('forwarded');
    expect(forwarded).toMatchObject({ task: offered.task, agent: '1001', position: 1 });
    await leg1.ended;
    const leg2: PhoneCall = await secondGets;
    expect(await callerEvent('answered')).toMatchObject({ task: offered.task, agent: '1002' });
    // Not penalised: still Ready, no no-answer counted.
    expect(await states('1001')).toEqual([S.Ready]);
    expect(await s.raw.hget('ccs:{default}:queue:8000:agent:1001', 'noAnswer')).toBeNull();
    await leg2.hangup();
    expectOk(await sipp);
  });

  it('refusals: a task not offered to this agent 409, a malformed, foreign-queue or unknown-agent enqueue 400, data too long 400; the task stays offered', async () => {
    await s.app.engine.login('default', '1001');
    await s.app.engine.login('default', '1002');
    const first = await s.phone('1001');
    first.policy = { ring: true };
    await s.phone('1002');
    const ringing = first.nextIncoming();
    const sipp = trunkCaller('trunk-call.xml');
    const offered = await callerEvent('offered');
    await ringing;
    const task = offered.task;
    expect((await agentOp('1002', 'reject', { queue_task_id: task })).body.error).toBe('task_not_offered');
    expect((await agentOp('1001', 'reject', { queue_task_id: 'no-such-task' })).body.error).toBe('task_not_offered');
    const bad = await agentOp('1001', 'forward_agent', { queue_task_id: task, enqueue: '<enqueue queue="8000"><agent id="1002"></enqueue>' });
    expect(bad).toMatchObject({ status: 400, body: { error: 'malformed_enqueue' } });
    const foreign = await agentOp('1001', 'forward_agent', { queue_task_id: task, enqueue: '<enqueue queue="8001"/>' });
    expect(foreign).toMatchObject({ status: 400, body: { error: 'malformed_enqueue' } });
    const unknown = await agentOp('1001', 'forward_agent', { queue_task_id: task, enqueue: '<enqueue queue="8000"><agent id="7777"/></enqueue>' });
    expect(unknown).toMatchObject({ status: 400, body: { error: 'malformed_enqueue' } });
    const tooLong = await agentOp('1001', 'reject', { queue_task_id: task, data: 'x'.repeat(1025) });
    expect(tooLong).toMatchObject({ status: 400, body: { error: 'bad_request' } });
    expect((await s.app.tasks.get('default', task))!.state).toBe('offering');
    // A valid reject still works afterwards (and releases the trunk caller).
    expect((await agentOp('1001', 'reject', { queue_task_id: task })).status).toBe(200);
    expectOk(await sipp);
  });

  /** A trunk caller answered by agent 1001: its sipp run, the agent's leg and the answered event. */
  const answeredCall = async (): Promise<{ sipp: Promise<SippResult>; leg: PhoneCall; answered: QueueCallerEvent }> => {
    await s.app.engine.login('default', '1001');
    const agent = await s.phone('1001');
    const incoming = agent.nextIncoming();
    const sipp = trunkCaller('trunk-call.xml');
    const leg = await incoming;
    return { sipp, leg, answered: await callerEvent('answered') };
  };

  it('a task already answered cannot be rejected: 409 task_answered', async () => {
    const { sipp, leg, answered } = await answeredCall();
    expect(await agentOp('1001', 'reject', { queue_task_id: answered.task })).toMatchObject({ status: 409, body: { error: 'task_answered' } });
    expect(await agentOp('1001', 'forward_agent', { queue_task_id: answered.task, enqueue: '<enqueue queue="8000"/>' })).toMatchObject({ status: 409, body: { error: 'task_answered' } });
    await leg.hangup();
    expectOk(await sipp);
  });

  it('pause and resume through REST while a queue call is up: the conference modes follow, the conversation events come in order, GET agent shows the mode', async () => {
    const { sipp, leg, answered } = await answeredCall();
    const conv = answered.task; // the conversation of a queue call is named after its first task
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
    const conf = s.media.conferences.get(`ccs-${conv}`)!;
    expect([...conf.members.values()]).toEqual([1, 1]);

    const paused = await agentOp('1001', 'pause', { conversation_id: conv });
    expect(paused).toMatchObject({ status: 200, body: { conversation: conv, prev: 1, mode: 4 } });
    expect([...conf.members.values()]).toEqual([1, 4]);
    expect((await rest('GET', '/callcenter/default/agent/1001')).body.conversations).toEqual([{ id: conv, leg: paused.body.leg, mode: 4, active: false }]);
    const resumed = await agentOp('1001', 'resume', { conversation_id: conv, mode: 2 });
    expect(resumed).toMatchObject({ status: 200, body: { prev: 4, mode: 2 } });
    expect([...conf.members.values()]).toEqual([1, 2]);

    await leg.hangup();
    expectOk(await sipp);
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'ended' && (e as { id?: string }).id === conv);
    const convEvents = (await allEvents()).filter((e) => e.type === 'conversation' && (e as { id?: string }).id === conv) as unknown as { action: string; kind?: string; mode?: number }[];
    expect(convEvents.map((e) => (e.action === 'mode' ? `mode ${e.mode}` : `${e.action}${e.kind ? ` ${e.kind}` : ''}`))).toEqual([
      'created',
      'joined caller',
      'joined agent',
      'mode 4',
      'mode 2',
      'left agent',
      'ended',
    ]);
    const holds = (await rest('GET', '/callcenter/default/oplog?agent=1001')).body.entries.filter((o: { op: number }) => o.op === 38);
    expect(holds).toHaveLength(1);
  });

  /** Every event so far, in order. */
  async function allEvents(): Promise<CcsEvent[]> {
    const entries = (await s.raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][];
    return entries.map(parseEvent);
  }
});
