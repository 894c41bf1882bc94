import { AgentState as S } from '../../lib/agent/stateMachine';
import type { AgentEngine } from '../../lib/agent/engine';
import { IllegalTransitionError, InvalidRequestError, NotFoundError, NotMemberError } from '../../lib/errors';
import { startHarness, type Harness } from '../helpers/harness';

let h: Harness;
let engine: AgentEngine;

beforeAll(async () => {
  h = await startHarness();
  ({ engine } = h.engine());
});
afterAll(async () => h.close());
beforeEach(async () => {
  await h.raw.flushall();
});

const stateIn = async (agent: string): Promise<Record<string, string>> =>
  Object.fromEntries((await engine.states('default', agent)).map((v) => [v.queue, v.state]));

describe('agent engine on a real Redis', () => {
  it('login without a queue logs in to every queue: ready where autoReady, not_ready elsewhere', async () => {
    const res = await engine.login('default', '1003');
    expect(res.results.map((r) => [r.queue, r.to, r.changed])).toEqual([
      ['8000', S.Ready, true],
      ['8001', S.NotReady, true],
    ]);
    expect(await stateIn('1003')).toEqual({ '8000': S.Ready, '8001': S.NotReady });
    const log = await h.oplog();
    expect(log.map((e) => [e.agent, e.queue, e.op, e.reason])).toEqual([
      ['1003', '8000', 1, -1],
      ['1003', '8001', 1, -1],
    ]);
    const evs = await h.events();
    expect(evs.map((e) => [e.type, e.queue, e.prev, e.state, e.op, e.oplog])).toEqual([
      ['agent.state', '8000', S.LoggedOut, S.Ready, 1, log[0]!.seq],
      ['agent.state', '8001', S.LoggedOut, S.NotReady, 1, log[1]!.seq],
    ]);
    expect(res.seqs).toEqual(evs.map((e) => e.seq));
    expect(evs[1]!.seq).toBe(evs[0]!.seq + 1);
  });

  it('login to one queue changes only that queue', async () => {
    await engine.login('default', '1003', { queue: '8001' });
    expect(await stateIn('1003')).toEqual({ '8000': S.LoggedOut, '8001': S.NotReady });
  });

  it('the Ready ZSET holds exactly the agents ready in the queue', async () => {
    await engine.login('default', '1001');
    await engine.login('default', '1002');
    await engine.notReady('default', '1002', { reason: 4 });
    expect(await h.raw.zrange('ccs:{default}:queue:8000:ready', 0, -1)).toEqual(['1001']);
  });

  it('ready in a queue the agent is logged out of is refused with illegal_transition and writes nothing', async () => {
    await engine.login('default', '1003', { queue: '8000' });
    const before = (await h.events()).length;
    await expect(engine.ready('default', '1003', { queue: '8001' })).rejects.toBeInstanceOf(IllegalTransitionError);
    expect((await h.events()).length).toBe(before);
    expect(await stateIn('1003')).toEqual({ '8000': S.Ready, '8001': S.LoggedOut });
  });

  it('all-queue ready applies where legal and reports the queues it skipped', async () => {
    await engine.login('default', '1003', { queue: '8001' });
    const res = await engine.ready('default', '1003');
    expect(res.results).toEqual([
      { queue: '8000', from: S.LoggedOut, to: S.LoggedOut, changed: false, skipped: 'illegal_transition' },
      { queue: '8001', from: S.NotReady, to: S.Ready, changed: true },
    ]);
  });

  it('all-queue ready when logged out everywhere is illegal', async () => {
    await expect(engine.ready('default', '1003')).rejects.toBeInstanceOf(IllegalTransitionError);
  });

  it('not ready with reason 4 (rest) logs operation 3 with reason 4, and ready logs operation 2', async () => {
    await engine.login('default', '1001');
    await engine.notReady('default', '1001', { reason: 4 });
    await engine.ready('default', '1001');
    const log = await h.oplog();
    expect(log.map((e) => [e.op, e.reason, e.state])).toEqual([
      [1, -1, S.Ready],
      [3, 4, S.NotReady],
      [2, -1, S.Ready],
    ]);
    const views = await engine.states('default', '1001');
    expect(views[0]!.reason).toBeNull();
  });

  it('logout logs operation 0 with reason 258 by default and a given reason otherwise', async () => {
    await engine.login('default', '1001');
    await engine.logout('default', '1001');
    await engine.login('default', '1001');
    await engine.logout('default', '1001', { reason: 257 });
    expect((await h.oplog()).filter((e) => e.op === 0).map((e) => e.reason)).toEqual([258, 257]);
  });

  it('repeating login or ready is a no-op without log entries', async () => {
    await engine.login('default', '1001');
    const again = await engine.login('default', '1001');
    const ready = await engine.ready('default', '1001');
    expect(again.results[0]!.changed).toBe(false);
    expect(ready.results[0]!.changed).toBe(false);
    expect(await h.oplog()).toHaveLength(1);
  });

  it('an ACD call puts the agent in queue_call there and other_call in its other queues', async () => {
    await engine.login('default', '1003');
    await engine.callStarted('default', '1003', { callId: 'c1', acdQueue: '8000' });
    expect(await stateIn('1003')).toEqual({ '8000': S.QueueCall, '8001': S.OtherCall });
    const log = await h.oplog();
    expect(log.slice(-2).map((e) => e.op)).toEqual([4, 4]);
    await engine.callEnded('default', '1003', { callId: 'c1' });
    // 8000 has wrapUpSeconds 5 → wrap_up; 8001 returns to its remembered not_ready.
    expect(await stateIn('1003')).toEqual({ '8000': S.WrapUp, '8001': S.NotReady });
    const views = await engine.states('default', '1003');
    expect(views[0]!.wrapUpEndsAt).toBeGreaterThan(Date.now() + 3000);
    expect((await h.oplog()).slice(-2).map((e) => [e.op, e.reason])).toEqual([
      [27, 0],
      [3, -1],
    ]);
  });

  it('an ACD call for an agent that is not ready there is refused and changes nothing', async () => {
    await engine.login('default', '1003');
    await engine.notReady('default', '1003', { queue: '8000' });
    await expect(engine.callStarted('default', '1003', { callId: 'c1', acdQueue: '8000' })).rejects.toBeInstanceOf(IllegalTransitionError);
    expect(await stateIn('1003')).toEqual({ '8000': S.NotReady, '8001': S.NotReady });
  });

  it('an internal call logs operation 41 and the agent returns to the remembered not_ready with its reason', async () => {
    await engine.login('default', '1001');
    await engine.notReady('default', '1001', { reason: 4 });
    await engine.callStarted('default', '1001', { callId: 'x1', op: 41 });
    const during = await engine.states('default', '1001');
    expect(during[0]).toMatchObject({ state: S.OtherCall, remembered: S.NotReady, callId: 'x1' });
    await engine.callEnded('default', '1001', { callId: 'x1' });
    const after = await engine.states('default', '1001');
    expect(after[0]).toMatchObject({ state: S.NotReady, reason: 4, remembered: null, callId: null });
    expect((await h.oplog()).map((e) => e.op)).toEqual([1, 3, 41, 3]);
  });

  it('the end of a different call does not end the agent\'s call', async () => {
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'x1' });
    const res = await engine.callEnded('default', '1001', { callId: 'other' });
    expect(res.results[0]!.changed).toBe(false);
    expect(await stateIn('1001')).toEqual({ '8000': S.OtherCall });
  });

  it('wrap-up interrupted by an other call resumes wrap-up with the same timer', async () => {
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'q1', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'q1' });
    const [wrap] = await engine.states('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'o1' });
    await engine.callEnded('default', '1001', { callId: 'o1' });
    const [back] = await engine.states('default', '1001');
    expect(back!.state).toBe(S.WrapUp);
    expect(back!.wrapUpEndsAt).toBe(wrap!.wrapUpEndsAt);
  });

  it('leaving wrap-up by hand removes its deadline', async () => {
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'q1', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'q1' });
    expect(await h.raw.zcard('ccs:{default}:deadlines')).toBe(1);
    await engine.ready('default', '1001');
    expect(await h.raw.zcard('ccs:{default}:deadlines')).toBe(0);
  });

  it('logout during a queue call keeps nothing pending; the call end then changes nothing', async () => {
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'q1', acdQueue: '8000' });
    await engine.logout('default', '1001');
    await engine.callEnded('default', '1001', { callId: 'q1' });
    expect(await stateIn('1001')).toEqual({ '8000': S.LoggedOut });
    expect(await h.raw.zcard('ccs:{default}:deadlines')).toBe(0);
  });

  it('a lost sequence counter is repaired: numbering continues after the stream, and state is written once', async () => {
    await engine.login('default', '1001');
    await engine.notReady('default', '1001');
    await h.raw.del('ccs:{default}:events:seq', 'ccs:{default}:oplog:seq');
    const res = await engine.ready('default', '1001');
    expect(res.seqs).toEqual([3]);
    expect((await h.events()).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await h.oplog()).map((e) => [e.seq, e.op])).toEqual([
      [1, 1],
      [2, 3],
      [3, 2],
    ]);
    expect(await stateIn('1001')).toEqual({ '8000': S.Ready });
  });

  it('unknown call center, agent and queue, and a non-member queue, are refused before Redis is touched', async () => {
    await expect(engine.login('nope', '1001')).rejects.toMatchObject({ code: 'unknown_callcenter' });
    await expect(engine.login('default', '9999')).rejects.toBeInstanceOf(NotFoundError);
    await expect(engine.login('default', '1001', { queue: '7777' })).rejects.toMatchObject({ code: 'unknown_queue' });
    await expect(engine.login('default', '1001', { queue: '8001' })).rejects.toBeInstanceOf(NotMemberError);
    await expect(engine.login('default', '__proto__')).rejects.toMatchObject({ code: 'unknown_agent' });
    expect(await h.raw.dbsize()).toBe(0);
  });

  it('reason codes outside the seed\'s ranges are invalid', async () => {
    await engine.login('default', '1001');
    await expect(engine.notReady('default', '1001', { reason: 99 })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(engine.logout('default', '1001', { reason: 300 })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await stateIn('1001')).toEqual({ '8000': S.Ready });
  });
});
