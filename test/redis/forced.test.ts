/**
 * Forced state changes (DESIGN.md section 12, seed 004) on a real instance and Redis: each
 * changed queue gets the supervisor's entry (29 / 30 / 31, the supervisor's extension as its
 * object, `by`) and then the agent's own entry (0 reason 257, 2, 3 reason 3), and the
 * agent.state event says who forced it. A supervisor token changes only the queues it
 * oversees and acts only as itself; a forced sign-out during a call leaves the call alone.
 */
import { Redis } from 'ioredis';
import { LegKind, LegState } from '../../lib/conversation/model';
import { parseEvent, parseOplog } from '../../lib/events';
import type { OplogEntry } from '../../lib/oplog';
import { wrapUpMember } from '../../lib/store/keys';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, as, type Holder } from '../helpers/tokens';

let server: RedisServer;
let a: RunningApp;
let raw: Redis;

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await raw.flushall();
});

const engine = () => a.app.engine;

/** Every operation-log entry, oldest first, as stored. */
async function oplog(): Promise<OplogEntry[]> {
  return ((await raw.xrange('ccs:{default}:oplog', '-', '+')) as [string, string[]][]).map(parseOplog);
}

/** The entries written after the first `n`, without the fields that vary (seq, ts, instance). */
async function entriesAfter(n: number): Promise<Omit<OplogEntry, 'seq' | 'ts' | 'instance'>[]> {
  return (await oplog()).slice(n).map(({ seq: _s, ts: _t, instance: _i, ...e }) => e);
}

/** agent.state events, oldest first. */
async function agentEvents(): Promise<Record<string, unknown>[]> {
  return ((await raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][]).map(parseEvent).filter((e) => e.type === 'agent.state') as Record<string, unknown>[];
}

/** The agent's state per queue, as `queue:state[:reason]`. */
async function statesOf(agent: string): Promise<string[]> {
  const res = await a.call('GET', `/callcenter/default/agent/${agent}`);
  expect(res.status).toBe(200);
  const queues = res.body.queues as { queue: string; state: string; reason: number | null }[];
  return queues.map((q) => `${q.queue}:${q.state}${q.reason === null ? '' : `:${q.reason}`}`);
}

const force = (who: Holder, agent: string, kind: 'logout' | 'ready' | 'not_ready', body: Record<string, unknown> = {}) =>
  a.call('POST', `/callcenter/default/agent/${agent}/force_${kind}`, { headers: as(who), json: body });

describe('the entries of a forced change', () => {
  it("force_logout by s1's token writes op 29 (object 1901, by s1), then the agent's op 0 reason 257", async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    const res = await force('s1', '1001', 'logout');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ agent: '1001', results: [{ queue: '8000', from: 'ready', to: 'logged_out', changed: true }], seqs: [expect.any(Number)] });
    expect(await entriesAfter(n)).toEqual([
      { agent: '1001', queue: '8000', op: 29, object: 1901, reason: -1, state: 'logged_out', by: 's1' },
      { agent: '1001', queue: '8000', op: 0, object: -1, reason: 257, state: 'logged_out' },
    ]);
    expect(await statesOf('1001')).toEqual(['8000:logged_out:257']);
    expect(await raw.zscore('ccs:{default}:queue:8000:ready', '1001')).toBeNull();
  });

  it('the REST operation log shows both entries in order, the forced one with by', async () => {
    await engine().login('default', '1001');
    await force('s1', '1001', 'logout');
    const log = await a.call('GET', '/callcenter/default/oplog?agent=1001');
    expect(log.body.entries.map((e: { op: number; object: number; reason: number; by?: string }) => [e.op, e.object, e.reason, e.by ?? null])).toEqual([
      [1, -1, -1, null],
      [29, 1901, -1, 's1'],
      [0, -1, 257, null],
    ]);
    expect(log.body.entries[2].seq).toBe(log.body.entries[1].seq + 1);
  });

  it('force_logout with a reason gives that reason to the agent\'s op 0', async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    expect((await force('s1', '1001', 'logout', { reason: 256 })).status).toBe(200);
    expect((await entriesAfter(n)).map((e) => [e.op, e.reason])).toEqual([
      [29, -1],
      [0, 256],
    ]);
  });

  it("force_ready by s1's token writes op 30 (object 1901, by s1), then the agent's op 2; the agent is Ready and in the Ready set", async () => {
    await engine().login('default', '1001');
    await engine().notReady('default', '1001', { reason: 4 });
    const n = (await oplog()).length;
    const res = await force('s1', '1001', 'ready');
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8000', from: 'not_ready', to: 'ready', changed: true }]);
    expect(await entriesAfter(n)).toEqual([
      { agent: '1001', queue: '8000', op: 30, object: 1901, reason: -1, state: 'ready', by: 's1' },
      { agent: '1001', queue: '8000', op: 2, object: -1, reason: -1, state: 'ready' },
    ]);
    expect(await statesOf('1001')).toEqual(['8000:ready']);
    expect(await raw.zscore('ccs:{default}:queue:8000:ready', '1001')).not.toBeNull();
  });

  it("force_not_ready by s1's token writes op 31 (object 1901, by s1), then the agent's op 3 reason 3 (forced by a QC inspector)", async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    const res = await force('s1', '1001', 'not_ready');
    expect(res.status).toBe(200);
    expect(await entriesAfter(n)).toEqual([
      { agent: '1001', queue: '8000', op: 31, object: 1901, reason: -1, state: 'not_ready', by: 's1' },
      { agent: '1001', queue: '8000', op: 3, object: -1, reason: 3, state: 'not_ready' },
    ]);
    expect(await statesOf('1001')).toEqual(['8000:not_ready:3']);
  });

  it('force_not_ready with reason 4 gives reason 4 to the agent\'s op 3; the forced entry keeps reason -1', async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    expect((await force('s1', '1001', 'not_ready', { reason: 4 })).status).toBe(200);
    expect((await entriesAfter(n)).map((e) => [e.op, e.object, e.reason])).toEqual([
      [31, 1901, -1],
      [3, -1, 4],
    ]);
    expect(await statesOf('1001')).toEqual(['8000:not_ready:4']);
  });

  it('a forced reason outside the table is 422 and writes nothing', async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    const res = await force('s1', '1001', 'not_ready', { reason: 100 });
    expect([res.status, res.body.error]).toEqual([422, 'invalid_request']);
    expect(await oplog()).toHaveLength(n);
    expect(await statesOf('1001')).toEqual(['8000:ready']);
  });

  it('a forced change that changes nothing (already logged out) writes no entry at all', async () => {
    const res = await force('s1', '1001', 'logout');
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8000', from: 'logged_out', to: 'logged_out', changed: false }]);
    expect(await oplog()).toEqual([]);
  });
});

describe('scope and attribution of a forced change', () => {
  it("agent 1003 (queues 8000 and 8001) forced by s1 without a queue changes only 8000, with two entries for 8000 alone", async () => {
    await engine().login('default', '1003');
    const n = (await oplog()).length;
    const res = await force('s1', '1003', 'logout');
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8000', from: 'ready', to: 'logged_out', changed: true }]);
    expect((await entriesAfter(n)).map((e) => [e.queue, e.op, e.object, e.reason, e.by ?? null])).toEqual([
      ['8000', 29, 1901, -1, 's1'],
      ['8000', 0, -1, 257, null],
    ]);
    expect(await statesOf('1003')).toEqual(['8000:logged_out:257', '8001:not_ready']);
  });

  it('the same forced change by the admin token applies to every queue of agent 1003', async () => {
    await engine().login('default', '1003');
    const n = (await oplog()).length;
    const res = await force('admin', '1003', 'not_ready');
    expect(res.body.results.map((r: { queue: string; changed: boolean }) => [r.queue, r.changed])).toEqual([
      ['8000', true],
      ['8001', true],
    ]);
    expect((await entriesAfter(n)).map((e) => [e.queue, e.op, e.reason])).toEqual([
      ['8000', 31, -1],
      ['8000', 3, 3],
      ['8001', 31, -1],
      ['8001', 3, 3],
    ]);
  });

  it("s1's token forcing agent 1003 in queue 8001 gets 403 forbidden and nothing changes", async () => {
    await engine().login('default', '1003');
    const before = { log: await oplog(), events: await agentEvents(), states: await statesOf('1003') };
    const res = await force('s1', '1003', 'logout', { queue: '8001' });
    expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
    expect({ log: await oplog(), events: await agentEvents(), states: await statesOf('1003') }).toEqual(before);
  });

  it('an admin token naming supervisor s2 is recorded as s2 (object 1902)', async () => {
    await engine().login('default', '1004');
    const n = (await oplog()).length;
    expect((await force('admin', '1004', 'ready', { supervisor: 's2' })).status).toBe(200);
    expect(await entriesAfter(n)).toEqual([
      { agent: '1004', queue: '8001', op: 30, object: 1902, reason: -1, state: 'ready', by: 's2' },
      { agent: '1004', queue: '8001', op: 2, object: -1, reason: -1, state: 'ready' },
    ]);
  });

  it('an admin token naming an unknown supervisor is 404 unknown_supervisor and nothing changes', async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    const res = await force('admin', '1001', 'logout', { supervisor: 'nobody' });
    expect([res.status, res.body.error]).toEqual([404, 'unknown_supervisor']);
    expect(await oplog()).toHaveLength(n);
    expect(await statesOf('1001')).toEqual(['8000:ready']);
  });

  it("an admin token without a supervisor: object -1 and by the token's name (token-0)", async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    expect((await force('admin', '1001', 'logout')).status).toBe(200);
    expect((await entriesAfter(n)).map((e) => [e.op, e.object, e.reason, e.by ?? null])).toEqual([
      [29, -1, -1, 'token-0'],
      [0, -1, 257, null],
    ]);
  });

  it("a supervisor token without a configured supervisor: object -1 and by the token's name", async () => {
    await engine().login('default', '1004');
    const n = (await oplog()).length;
    expect((await force('q8001', '1004', 'ready')).status).toBe(200);
    expect((await entriesAfter(n)).map((e) => [e.op, e.object, e.by ?? null])).toEqual([
      [30, -1, 'support-desk'],
      [2, -1, null],
    ]);
  });

  it.each([
    ['s1', 's2', '1002'],
    ['s2', 's1', '1004'],
    ['q8001', 's2', '1004'],
  ] as const)("%s's token naming supervisor %s gets 403 forbidden and nothing changes", async (who, named, agent) => {
    await engine().login('default', agent);
    const before = { log: await oplog(), events: await agentEvents(), states: await statesOf(agent) };
    const res = await force(who, agent, 'logout', { supervisor: named });
    expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
    expect({ log: await oplog(), events: await agentEvents(), states: await statesOf(agent) }).toEqual(before);
  });

  it("a supervisor token naming its own supervisor is the same as naming none", async () => {
    await engine().login('default', '1001');
    const n = (await oplog()).length;
    expect((await force('s1', '1001', 'logout', { supervisor: 's1' })).status).toBe(200);
    expect((await entriesAfter(n)).map((e) => [e.op, e.object, e.by ?? null])).toEqual([
      [29, 1901, 's1'],
      [0, -1, null],
    ]);
  });
});

describe('the agent.state event of a forced change', () => {
  it("carries by (the supervisor) and points at the agent's own entry", async () => {
    await engine().login('default', '1001');
    const res = await force('s1', '1001', 'logout');
    const log = await oplog();
    const evs = await agentEvents();
    expect(evs).toHaveLength(2);
    expect(evs[1]).toMatchObject({ seq: res.body.seqs[0], agent: '1001', queue: '8000', state: 'logged_out', prev: 'ready', reason: 257, op: 0, oplog: log[2]!.seq, by: 's1' });
    expect(log[2]).toMatchObject({ op: 0, reason: 257 });
    expect(evs[0]).not.toHaveProperty('by');
  });

  it("carries the token's name when no supervisor is named", async () => {
    await engine().login('default', '1001');
    await force('admin', '1001', 'not_ready');
    expect((await agentEvents())[1]).toMatchObject({ state: 'not_ready', reason: 3, op: 3, by: 'token-0' });
  });

  it("an agent's own change has no by", async () => {
    await engine().login('default', '1001');
    await a.call('POST', '/callcenter/default/agent/1001/logout', { headers: as('agent1001'), json: {} });
    const evs = await agentEvents();
    expect(evs[1]).toMatchObject({ state: 'logged_out', reason: 258, op: 0 });
    expect(evs[1]).not.toHaveProperty('by');
    expect((await oplog()).some((e) => e.by !== undefined)).toBe(false);
  });
});

describe('a forced sign-out during a call', () => {
  /** Agent 1001 on a call: its state per the engine, and the conversation that carries it. */
  async function onCall(acd: boolean): Promise<void> {
    await engine().login('default', '1001');
    await engine().callStarted('default', '1001', { callId: 'call-1', ...(acd ? { acdQueue: '8000' } : {}) });
    await a.app.conversations.create('default', { id: 'conv-call-1', owner: 'ghost-instance', queue: '8000' });
    await a.app.conversations.join('default', 'conv-call-1', { leg: 'leg-caller', kind: LegKind.Caller, mode: 1, state: LegState.Up });
    await a.app.conversations.join('default', 'conv-call-1', { leg: 'leg-1001', kind: LegKind.Agent, agent: '1001', mode: 1, state: LegState.Up });
  }

  it.each([
    ['an ACD call (queue_call)', true, 'queue_call'],
    ['a non-ACD call (other_call, Ready remembered)', false, 'other_call'],
  ] as const)('on %s: logged out at once, the call and its conversation stay; the call end changes nothing', async (_what, acd, callState) => {
    await onCall(acd);
    expect(await statesOf('1001')).toEqual([`8000:${callState}`]);
    const n = (await oplog()).length;
    const res = await force('s1', '1001', 'logout');
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8000', from: callState, to: 'logged_out', changed: true }]);
    expect((await entriesAfter(n)).map((e) => [e.op, e.object, e.reason, e.by ?? null])).toEqual([
      [29, 1901, -1, 's1'],
      [0, -1, 257, null],
    ]);
    // The call is not dropped: the conversation and the agent's leg in it are untouched.
    const conv = await a.call('GET', '/callcenter/default/conversation/conv-call-1');
    expect(conv.body.state).toBe('active');
    expect(conv.body.legs.map((l: { kind: string; agent?: string; state: string; mode: number }) => [l.kind, l.agent ?? null, l.state, l.mode])).toEqual([
      ['caller', null, 'up', 1],
      ['agent', '1001', 'up', 1],
    ]);
    const agent = await a.call('GET', '/callcenter/default/agent/1001');
    expect(agent.body.conversations).toEqual([{ id: 'conv-call-1', leg: 'leg-1001', mode: 1, active: true }]);
    expect(agent.body.queues[0]).toMatchObject({ state: 'logged_out', reason: 257, remembered: null, callId: null });

    // When the call ends the agent stays logged out: no wrap-up, no return to the remembered state, no entry.
    const m = (await oplog()).length;
    const ended = await engine().callEnded('default', '1001', { callId: 'call-1' });
    expect(ended.results).toEqual([{ queue: '8000', from: 'logged_out', to: 'logged_out', changed: false }]);
    expect(await oplog()).toHaveLength(m);
    expect(await statesOf('1001')).toEqual(['8000:logged_out:257']);
    expect(await raw.zscore('ccs:{default}:deadlines', wrapUpMember('1001', '8000'))).toBeNull();
  });
});
