/**
 * Two engine instances, each with its own Redis connection, change the same agent(s) at
 * the same time (DESIGN.md sections 1, 3, 6 and 7). Because every transition is one Lua
 * script, the stored states, the Ready ZSETs, the wrap-up deadlines, the event stream and
 * the operation log must tell one consistent story afterwards: gap-free sequence numbers,
 * every event's `prev` equal to the state the previous event of that queue left, and the
 * replayed end state equal to what is stored. A read-then-write engine loses updates under
 * this load and fails check (b).
 */
import type { Redis } from 'ioredis';
import type { AgentEngine, ApplyResult } from '../../lib/agent/engine';
import { AgentState as S, Target, TRANSITIONS, type TransitionContext } from '../../lib/agent/stateMachine';
import type { Config } from '../../lib/config/schema';
import { IllegalTransitionError } from '../../lib/errors';
import type { AgentStateEvent } from '../../lib/events';
import { callCenterKeys, wrapUpMember } from '../../lib/store/keys';
import { startHarness, type Harness } from '../helpers/harness';

const CC = 'default';
const keys = callCenterKeys('ccs', CC);

interface Instance {
  id: string;
  engine: AgentEngine;
  redis: Redis;
  config: Config;
}

let h: Harness;
let A: Instance;
let B: Instance;

beforeAll(async () => {
  h = await startHarness();
  A = { id: 'A', ...h.engine({ instanceId: 'A' }) };
  B = { id: 'B', ...h.engine({ instanceId: 'B' }) };
});
afterAll(async () => h.close());
beforeEach(async () => {
  await h.raw.flushall();
});

/**
 * Small deterministic PRNG (mulberry32): a failing run's operation sequence can be replayed
 * with CCS_CONCURRENCY_SEED=<seed from the suite name> (the interleaving itself is not).
 */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.CCS_CONCURRENCY_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** What one operation did: the results of its engine calls (with the instance that made them), and how many were refused as illegal. */
interface OpOutcome {
  applied: { instance: string; res: ApplyResult }[];
  illegal: number;
}

type Op = () => Promise<OpOutcome>;

/** Runs one engine call; an IllegalTransitionError is an expected refusal, anything else propagates. */
async function call(inst: Instance, out: OpOutcome, fn: () => Promise<ApplyResult>): Promise<void> {
  try {
    out.applied.push({ instance: inst.id, res: await fn() });
  } catch (err) {
    if (!(err instanceof IllegalTransitionError)) throw err;
    out.illegal += 1;
  }
}

/**
 * Makes the agent's wrap-up deadline in `queue` due now (only if it exists: ZADD XX, so no
 * stale deadline is ever created), then claims due deadlines and fires them the way the
 * deadline worker does: expireWrapUp with the claim's token, then DEADLINE_DONE.
 */
async function fireWrapUp(inst: Instance, out: OpOutcome, agent: string, queue: string): Promise<void> {
  await inst.redis.zadd(keys.deadlines, 'XX', 0, wrapUpMember(agent, queue));
  const [claimed] = await inst.redis.ccsDeadlineClaim(keys.deadlines, keys.deadlineClaims, keys.deadlineToken, 60000, 100);
  for (let i = 0; i + 1 < claimed.length; i += 2) {
    const member = claimed[i]!;
    const token = claimed[i + 1]!;
    const [kind, a, q] = member.split('|');
    expect(kind).toBe('wrapup');
    await call(inst, out, () => inst.engine.expireWrapUp(CC, a!, q!, token));
    await inst.redis.ccsDeadlineDone(keys.deadlines, keys.deadlineClaims, member, token);
  }
}

let callSeq = 0;

/** A random operation of `inst` on one of `agents`. */
function randomOp(inst: Instance, rnd: () => number, agents: string[]): Op {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const agent = pick(agents);
  const queues = Object.keys(inst.config.callcenters[CC]!.agents[agent]!.queues);
  const queue = rnd() < 0.5 ? undefined : pick(queues);
  const reason = pick([1, 4] as const);
  const e = inst.engine;
  const r = rnd();
  const callId = `${inst.id}-${++callSeq}`;
  const acdQueue = pick([undefined, ...queues]);
  const ender = rnd() < 0.5 ? inst : inst === A ? B : A;
  const pause = Math.floor(rnd() * 4);
  const timerQueue = pick(queues);
  return async () => {
    const out: OpOutcome = { applied: [], illegal: 0 };
    if (r < 0.15) await call(inst, out, () => e.login(CC, agent, { queue }));
    else if (r < 0.19) await call(inst, out, () => e.logout(CC, agent, { queue }));
    else if (r < 0.34) await call(inst, out, () => e.ready(CC, agent, { queue }));
    else if (r < 0.44) await call(inst, out, () => e.notReady(CC, agent, { queue, reason }));
    else if (r < 0.9) {
      // A call pair: the end may be seen by either instance, after a few other operations ran.
      await call(inst, out, () => e.callStarted(CC, agent, { callId, acdQueue }));
      for (let i = 0; i < pause; i++) await new Promise<void>((resolve) => setImmediate(resolve));
      await call(ender, out, () => ender.engine.callEnded(CC, agent, { callId }));
    } else {
      await fireWrapUp(inst, out, agent, timerQueue);
    }
    return out;
  };
}

/**
 * Invariants between an agent's stored states and the other keys, checked whenever no
 * operation is in flight: (d) the Ready ZSET of each queue holds the agent iff it is
 * ready there; the wrap-up deadline exists exactly while a wrap-up runs (possibly
 * interrupted by an other call); a claim never outlives its deadline. Returns the
 * violations, described.
 */
async function storedInvariants(agents: string[], when: string): Promise<string[]> {
  const bad: string[] = [];
  const deadlines = new Set(await h.raw.zrange(keys.deadlines, 0, -1));
  const claims = new Set(await h.raw.hkeys(keys.deadlineClaims));
  for (const agent of agents) {
    for (const view of await A.engine.states(CC, agent)) {
      const q = view.queue;
      const where = `${when}: agent ${agent} queue ${q} state ${view.state} (remembered ${view.remembered})`;
      const inReady = (await h.raw.zscore(keys.queueReady(q), agent)) !== null;
      if (inReady !== (view.state === S.Ready)) bad.push(`${where}: in the Ready ZSET = ${inReady}`);
      const member = wrapUpMember(agent, q);
      const running = view.state === S.WrapUp || (view.state === S.OtherCall && view.remembered === S.WrapUp);
      if (deadlines.has(member) !== running) bad.push(`${where}: wrap-up deadline present = ${deadlines.has(member)}`);
      if (claims.has(member) && !deadlines.has(member)) bad.push(`${where}: claim without deadline`);
    }
  }
  return bad;
}

/**
 * Fires `perInstance` random operations from each of A and B, in batches of random size
 * whose operations alternate A, B, A, B... and all run at once (Promise.allSettled).
 */
async function hammer(agents: string[], perInstance: number, seed: number): Promise<{ outcomes: OpOutcome[]; failures: unknown[]; violations: string[] }> {
  const rnd = prng(seed);
  const rndA = prng(seed ^ 0x5a5a5a5a);
  const rndB = prng(seed ^ 0x3c3c3c3c);
  const outcomes: OpOutcome[] = [];
  const failures: unknown[] = [];
  const violations: string[] = [];
  let batches = 0;
  let doneA = 0;
  let doneB = 0;
  while (doneA < perInstance || doneB < perInstance) {
    const size = 1 + Math.floor(rnd() * 40);
    const batch: Op[] = [];
    for (let i = 0; i < size; i++) {
      if (doneA < perInstance) {
        batch.push(randomOp(A, rndA, agents));
        doneA++;
      }
      if (doneB < perInstance) {
        batch.push(randomOp(B, rndB, agents));
        doneB++;
      }
    }
    for (const s of await Promise.allSettled(batch.map((op) => op()))) {
      if (s.status === 'fulfilled') outcomes.push(s.value);
      else failures.push(s.reason);
    }
    violations.push(...(await storedInvariants(agents, `after batch ${++batches}`)));
  }
  return { outcomes, failures, violations };
}

/** Every (from → to) move the table allows in a queue with these options, whatever is remembered. */
function allowedMoves(opts: { autoReady: boolean; wrapUpSeconds: number }): Set<string> {
  const moves = new Set<string>();
  for (const [from, row] of Object.entries(TRANSITIONS)) {
    for (const rule of Object.values(row)) {
      if (rule?.kind !== 'move') continue;
      for (const remembered of [undefined, S.Ready, S.NotReady, S.WrapUp]) {
        const ctx: TransitionContext = { ...opts, remembered };
        const auto = ctx.autoReady ? S.Ready : S.NotReady;
        const to =
          rule.to === Target.Auto
            ? auto
            : rule.to === Target.AfterCall
              ? ctx.wrapUpSeconds > 0
                ? S.WrapUp
                : auto
              : rule.to === Target.Remembered
                ? (remembered ?? auto)
                : rule.to;
        moves.add(`${from}>${to}`);
        // A return to a remembered wrap-up whose timer ran out meanwhile lands in the auto state.
        if (rule.to === Target.Remembered) moves.add(`${from}>${auto}`);
      }
    }
  }
  return moves;
}

/** Operation code an agent.state event must carry for a move (DESIGN.md section 7). */
function expectedOp(prev: S, state: S): number {
  if (prev === S.LoggedOut) return 1; // only login leaves logged_out
  switch (state) {
    case S.LoggedOut:
      return 0;
    case S.Ready:
      return 2;
    case S.NotReady:
      return 3;
    case S.QueueCall:
    case S.OtherCall:
      return 4;
    case S.WrapUp:
      return 27;
  }
}

/** Checks (a), (b), (c) and (e) on the streams after a run, and (d) on the final state. */
async function verify(agents: string[], outcomes: OpOutcome[]): Promise<void> {
  const events = await h.events();
  const oplog = await h.oplog();
  const cfg = A.config.callcenters[CC]!;

  // (a) event seqs are 1..N: strictly increasing by exactly 1, no gaps, no duplicates;
  //     and the seqs the engine calls returned are exactly those, each returned once, by
  //     the instance named in the event.
  expect(events.length).toBeGreaterThan(0);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const returned = new Map<number, string>();
  for (const o of outcomes)
    for (const { instance, res } of o.applied)
      for (const seq of res.seqs) {
        expect(returned.has(seq)).toBe(false);
        returned.set(seq, instance);
      }
  expect([...returned.keys()].sort((x, y) => x - y)).toEqual(events.map((e) => e.seq));
  for (const e of events) expect({ seq: e.seq, instance: e.instance }).toEqual({ seq: e.seq, instance: returned.get(e.seq) });

  // (c) oplog seqs are 1..M with M = N, and each event points at its own oplog entry,
  //     which records the same agent, queue, state, op and instance.
  expect(oplog.map((o) => o.seq)).toEqual(oplog.map((_, i) => i + 1));
  expect(oplog).toHaveLength(events.length);
  const bySeq = new Map(oplog.map((o) => [o.seq, o]));
  expect(new Set(events.map((e) => e.oplog)).size).toBe(events.length);
  for (const e of events) {
    const o = bySeq.get(e.oplog);
    expect({ event: e.seq, oplog: o && { agent: o.agent, queue: o.queue, state: o.state, op: o.op, instance: o.instance, reason: o.reason } }).toEqual({
      event: e.seq,
      oplog: { agent: e.agent, queue: e.queue, state: e.state, op: e.op, instance: e.instance, reason: e.reason ?? -1 },
    });
  }

  // (b) no lost update: per agent and queue, each event's prev is the state the previous
  //     event left (from logged_out), each move is one the table allows with the right
  //     operation code, and the replay ends where the stored state is.
  for (const agent of agents) {
    for (const view of await A.engine.states(CC, agent)) {
      const q = view.queue;
      const qc = cfg.queues[q]!;
      const allowed = allowedMoves({ autoReady: qc.autoReady, wrapUpSeconds: qc.wrapUpSeconds });
      let state: S = S.LoggedOut;
      for (const e of events.filter((x: AgentStateEvent) => x.agent === agent && x.queue === q)) {
        expect({ seq: e.seq, queue: q, prev: e.prev }).toEqual({ seq: e.seq, queue: q, prev: state });
        expect({ seq: e.seq, move: `${e.prev}>${e.state}`, allowed: allowed.has(`${e.prev}>${e.state}`) }).toEqual({
          seq: e.seq,
          move: `${e.prev}>${e.state}`,
          allowed: true,
        });
        expect({ seq: e.seq, op: e.op }).toEqual({ seq: e.seq, op: expectedOp(e.prev, e.state) });
        state = e.state;
      }
      expect({ agent, queue: q, replayed: state }).toEqual({ agent, queue: q, replayed: view.state });
    }
  }

  // (d) and the deadline invariants, once more on the final state.
  expect(await storedInvariants(agents, 'at the end')).toEqual([]);

  // (e) both instances really wrote.
  const instances = new Set(events.map((e) => e.instance));
  expect([...instances].sort()).toEqual(['A', 'B']);
}

describe(`two engine instances changing the same agents at once (seed ${SEED})`, () => {
  it('2 × 500 random operations on agent 1003 (queues 8000 and 8001) leave one consistent history', async () => {
    const { outcomes, failures, violations } = await hammer(['1003'], 500, SEED);
    expect(failures).toEqual([]);
    expect(violations).toEqual([]);
    expect(outcomes).toHaveLength(1000);
    // The run is meaningful: many moves were applied, some requests were refused, and the
    // two instances' writes really interleaved on the agent.
    const illegal = outcomes.reduce((n, o) => n + o.illegal, 0);
    expect(illegal).toBeGreaterThan(0);
    const events = await h.events();
    expect(events.length).toBeGreaterThan(100);
    const handovers = events.filter((e, i) => i > 0 && e.instance !== events[i - 1]!.instance).length;
    expect(handovers).toBeGreaterThan(10);
    await verify(['1003'], outcomes);
  });

  it('2 × 300 random operations spread over agents 1001–1005 leave one consistent history', async () => {
    const agents = ['1001', '1002', '1003', '1004', '1005'];
    const { outcomes, failures, violations } = await hammer(agents, 300, SEED + 1);
    expect(failures).toEqual([]);
    expect(violations).toEqual([]);
    expect(outcomes).toHaveLength(600);
    await verify(agents, outcomes);
  });
});
