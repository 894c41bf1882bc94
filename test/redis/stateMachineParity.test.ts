/**
 * Parity of the two copies of the agent transition table (DESIGN.md section 3): the
 * TypeScript `transition()` and the AGENT_APPLY Lua script that applies the table inside
 * Redis. For every (state, event) pair an agent is driven into the source state through
 * the engine's public operations only, the event is applied through the engine, and what
 * Redis stored (state, events stream, operation log, Ready ZSET) is compared with what
 * `transition()` says.
 */
import type { Redis } from 'ioredis';
import type { AgentEngine, ApplyResult } from '../../lib/agent/engine';
import { AgentEvent as E, AgentState as S, transition, type Outcome } from '../../lib/agent/stateMachine';
import { IllegalTransitionError } from '../../lib/errors';
import { callCenterKeys, wrapUpMember } from '../../lib/store/keys';
import { startHarness, type Harness } from '../helpers/harness';

const CC = 'default';
const Q = '8000';
const keys = callCenterKeys('ccs', CC);
/** Queue 8000 of the test config: autoReady true, wrapUpSeconds 5. */
const QUEUE_OPTS = { autoReady: true, wrapUpSeconds: 5 } as const;

let h: Harness;
let engine: AgentEngine;
let redis: Redis;

beforeAll(async () => {
  h = await startHarness();
  ({ engine, redis } = h.engine({ extraAgents: 60 }));
  await h.raw.flushall();
});
afterAll(async () => h.close());

const STATES: S[] = [S.LoggedOut, S.Ready, S.NotReady, S.QueueCall, S.OtherCall, S.WrapUp];
const EVENTS: E[] = [E.Login, E.Logout, E.Ready, E.NotReady, E.AcdCallAnswered, E.OtherCallStarted, E.CallEnded, E.WrapUpExpired];

/** Every (state, event) pair, each with its own agent a1..a48. */
const CASES: [S, E, string][] = STATES.flatMap((s, i) => EVENTS.map((e, j): [S, E, string] => [s, e, `a${i * EVENTS.length + j + 1}`]));

/** Drives `agent` (logged out, member of 8000 only) into `state` through public operations. */
async function driveTo(agent: string, state: S): Promise<void> {
  switch (state) {
    case S.LoggedOut:
      return;
    case S.Ready:
      await engine.login(CC, agent);
      return;
    case S.NotReady:
      await engine.login(CC, agent);
      await engine.notReady(CC, agent, { reason: 1 });
      return;
    case S.QueueCall:
      await engine.login(CC, agent);
      await engine.callStarted(CC, agent, { callId: 'c1', acdQueue: Q });
      return;
    case S.OtherCall:
      await engine.login(CC, agent);
      await engine.notReady(CC, agent, { reason: 1 });
      await engine.callStarted(CC, agent, { callId: 'c1' });
      return;
    case S.WrapUp:
      await engine.login(CC, agent);
      await engine.callStarted(CC, agent, { callId: 'c1', acdQueue: Q });
      await engine.callEnded(CC, agent, { callId: 'c1' });
      return;
  }
}

/** Makes the agent's wrap-up deadline due now and claims it, as the deadline worker would; returns the claim's token. */
async function claimWrapUp(agent: string): Promise<string> {
  const member = wrapUpMember(agent, Q);
  expect(member).toBe(`wrapup|${agent}|${Q}`);
  expect(await h.raw.zscore(keys.deadlines, member)).not.toBeNull();
  await h.raw.zadd(keys.deadlines, 0, member);
  const [claimed] = await redis.ccsDeadlineClaim(keys.deadlines, keys.deadlineClaims, keys.deadlineToken, 60000, 100);
  const i = claimed.indexOf(member);
  expect(i).toBeGreaterThanOrEqual(0);
  expect(i % 2).toBe(0);
  const token = claimed[i + 1];
  if (token === undefined) throw new Error(`no token for ${member} in ${JSON.stringify(claimed)}`);
  return token;
}

/** Applies `event` to `agent` through the engine. */
async function apply(agent: string, from: S, event: E): Promise<ApplyResult> {
  switch (event) {
    case E.Login:
      return engine.login(CC, agent);
    case E.Logout:
      return engine.logout(CC, agent);
    case E.Ready:
      return engine.ready(CC, agent);
    case E.NotReady:
      return engine.notReady(CC, agent, { reason: 4 });
    case E.AcdCallAnswered:
      return engine.callStarted(CC, agent, { callId: 'c2', acdQueue: Q });
    case E.OtherCallStarted:
      return engine.callStarted(CC, agent, { callId: 'c2' });
    case E.CallEnded:
      return engine.callEnded(CC, agent, { callId: 'c1' });
    case E.WrapUpExpired:
      return engine.expireWrapUp(CC, agent, Q, from === S.WrapUp ? await claimWrapUp(agent) : 'none');
  }
}

/**
 * The operation-log entry a move must write (DESIGN.md section 7), written out here rather
 * than taken from lib/oplog.ts: login → 1; logout → 0 reason 258 (self); ready → 2;
 * not ready → 3 with its reason (the requested 4, or the remembered 1 when an other call
 * that interrupted not_ready ends); talking → 4; wrap-up → 27 reason 0. -1 means none.
 */
function expectedLog(from: S, event: E, to: S): { op: number; reason: number } {
  if (event === E.Login) return { op: 1, reason: -1 };
  switch (to) {
    case S.LoggedOut:
      return { op: 0, reason: 258 };
    case S.Ready:
      return { op: 2, reason: -1 };
    case S.NotReady:
      return { op: 3, reason: event === E.NotReady ? 4 : from === S.OtherCall ? 1 : NaN };
    case S.QueueCall:
    case S.OtherCall:
      return { op: 4, reason: -1 };
    case S.WrapUp:
      return { op: 27, reason: 0 };
  }
}

interface Snapshot {
  state: S;
  events: number;
  oplog: number;
  inReady: boolean;
}

async function snapshot(agent: string): Promise<Snapshot> {
  const [view] = await engine.states(CC, agent);
  return {
    state: view!.state,
    events: await h.raw.xlen(keys.events),
    oplog: await h.raw.xlen(keys.oplog),
    inReady: (await h.raw.zscore(keys.queueReady(Q), agent)) !== null,
  };
}

describe('the Lua AGENT_APPLY script applies exactly the transition table of transition()', () => {
  it('covers all 48 (state, event) pairs with distinct agents', () => {
    expect(CASES).toHaveLength(48);
    expect(new Set(CASES.map(([s, e]) => `${s}+${e}`)).size).toBe(48);
    expect(new Set(CASES.map(([, , a]) => a)).size).toBe(48);
  });

  it.each(CASES)('%s + %s in Redis matches transition()', async (from, event, agent) => {
    await driveTo(agent, from);
    const before = await snapshot(agent);
    expect(before.state).toBe(from);
    expect(before.inReady).toBe(from === S.Ready);

    let expected: Outcome | IllegalTransitionError;
    try {
      expected = transition(from, event, {
        ...QUEUE_OPTS,
        remembered: from === S.OtherCall ? S.NotReady : undefined,
        currentReason: from === S.NotReady ? '1' : '',
        reason: event === E.NotReady ? '4' : undefined,
      });
    } catch (err) {
      if (!(err instanceof IllegalTransitionError)) throw err;
      expected = err;
    }

    if (expected instanceof IllegalTransitionError) {
      const err: unknown = await apply(agent, from, event).then(
        (res) => new Error(`expected IllegalTransitionError, got ${JSON.stringify(res)}`),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(IllegalTransitionError);
      expect(err).toMatchObject({ code: 'illegal_transition', from, event });
      expect(await snapshot(agent)).toEqual(before);
      return;
    }

    const res = await apply(agent, from, event);
    expect(res.agent).toBe(agent);
    expect(res.results).toHaveLength(1);
    const [r] = res.results;
    const after = await snapshot(agent);

    if (expected.kind === 'noop') {
      expect(r).toEqual({ queue: Q, from, to: from, changed: false });
      expect(res.seqs).toEqual([]);
      expect(after).toEqual(before);
      return;
    }
    // The parity cases use remembered = not_ready, for which the table has no 'remember' outcome.
    if (expected.kind !== 'move') throw new Error(`unexpected outcome ${JSON.stringify(expected)}`);

    const to = expected.to;
    expect(r).toEqual({ queue: Q, from, to, changed: true });
    expect(after.state).toBe(to);
    expect(after.inReady).toBe(to === S.Ready);
    expect(after.events).toBe(before.events + 1);
    expect(after.oplog).toBe(before.oplog + 1);

    const ev = (await h.events()).at(-1)!;
    const log = (await h.oplog()).at(-1)!;
    const want = expectedLog(from, event, to);
    expect(res.seqs).toEqual([ev.seq]);
    expect(ev).toMatchObject({
      type: 'agent.state',
      agent,
      queue: Q,
      prev: from,
      state: to,
      op: want.op,
      reason: want.reason === -1 ? null : want.reason,
      oplog: log.seq,
    });
    expect(log).toMatchObject({ agent, queue: Q, state: to, op: want.op, reason: want.reason, object: -1 });
  });

  it('other_call remembering wrap_up: wrap-up deadline during the call changes nothing visible, and the call end lands in ready', async () => {
    const agent = 'a49';
    await engine.login(CC, agent);
    await engine.callStarted(CC, agent, { callId: 'c1', acdQueue: Q });
    await engine.callEnded(CC, agent, { callId: 'c1' });
    expect((await engine.states(CC, agent))[0]).toMatchObject({ state: S.WrapUp });
    await engine.callStarted(CC, agent, { callId: 'o1' });
    expect((await engine.states(CC, agent))[0]).toMatchObject({ state: S.OtherCall, remembered: S.WrapUp, callId: 'o1' });

    expect(transition(S.OtherCall, E.WrapUpExpired, { ...QUEUE_OPTS, remembered: S.WrapUp })).toEqual({ kind: 'remember', remembered: S.Ready });

    const token = await claimWrapUp(agent);
    const before = await snapshot(agent);
    const res = await engine.expireWrapUp(CC, agent, Q, token);
    expect(res.results).toEqual([{ queue: Q, from: S.OtherCall, to: S.OtherCall, changed: false }]);
    expect(res.seqs).toEqual([]);
    expect(await snapshot(agent)).toEqual(before);
    expect((await engine.states(CC, agent))[0]).toMatchObject({ state: S.OtherCall, remembered: S.Ready, wrapUpEndsAt: null });

    const end = await engine.callEnded(CC, agent, { callId: 'o1' });
    expect(end.results).toEqual([{ queue: Q, from: S.OtherCall, to: S.Ready, changed: true }]);
    const after = await snapshot(agent);
    expect(after).toEqual({ state: S.Ready, events: before.events + 1, oplog: before.oplog + 1, inReady: true });
    expect((await h.events()).at(-1)).toMatchObject({ agent, queue: Q, prev: S.OtherCall, state: S.Ready, op: 2, reason: null });
    expect(await h.raw.zscore(keys.deadlines, wrapUpMember(agent, Q))).toBeNull();
  });
});
