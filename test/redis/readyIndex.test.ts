/**
 * The Ready indexes (lib/acd/readyIndex.ts) against the reference model: agents of five queues
 * (fewest_calls, least_talk_time, skills, longest_idle, round_robin) go through a seeded random
 * run of real operations (log in, ready, not ready, queue calls answered and ended in either
 * order), each one script; at checkpoints, which are also the states a crash between two
 * scripts would leave, the audit finds the indexes consistent and the selector's plan from the
 * indexes starts with the same agents as planOffer over every Ready member read in full.
 */
import { stringify } from 'yaml';
import { Redis } from 'ioredis';
import { AgentEngine } from '../../lib/agent/engine';
import { Selector } from '../../lib/acd/selector';
import { planOffer, type Candidate, type TaskConditions } from '../../lib/acd/strategies';
import { MAX_CANDIDATES, TaskStore } from '../../lib/acd/taskStore';
import { readyMember } from '../../lib/acd/readyIndex';
import { audit } from '../../lib/audit/audit';
import { repair } from '../../lib/audit/repair';
import { ConversationStore } from '../../lib/conversation/store';
import { loadConfig } from '../../lib/config/load';
import type { CallCenterConfig, Config, Strategy } from '../../lib/config/schema';
import { createLogger } from '../../lib/logger';
import { Registrar } from '../../lib/sip/registrar';
import { agentField, callCenterKeys } from '../../lib/store/keys';
import { createRedis } from '../../lib/store/redis';
import { startRedis, type RedisServer } from '../helpers/redisServer';

const AGENTS = 300;
const QUEUES: Record<string, Strategy> = { '8000': 'fewest_calls', '8001': 'least_talk_time', '8002': 'skills', '8003': 'longest_idle', '8004': 'round_robin' };
const keys = callCenterKeys('ccs', 'default');

/** Deterministic pseudo-random numbers (a 32-bit LCG), so a failure replays. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function buildConfig(url: string): Config {
  const queues = Object.fromEntries(Object.entries(QUEUES).map(([q, strategy]) => [q, { name: strategy, strategy, autoReady: true, wrapUpSeconds: 0 }]));
  const agents: Record<string, unknown> = {};
  for (let i = 0; i < AGENTS; i++) {
    // lang for everyone (0..100, scattered); sales for two agents in three (0..60).
    const skills: Record<string, number> = { lang: (i * 37) % 101 };
    if (i % 3 !== 0) skills.sales = ((i * 13) % 7) * 10;
    agents[`a${i}`] = { extension: String(20000 + i), password: 'secret-aaaa', queues: Object.fromEntries(Object.keys(QUEUES).map((q) => [q, { skills }])) };
  }
  return loadConfig({
    text: stringify({ instanceId: 'idx-a', redis: { url, keyPrefix: 'ccs' }, log: { level: 'silent' }, apiTokens: ['test-token-0123456789'], callcenters: { default: { queues, agents } } }),
    source: 'readyIndex test',
  });
}

describe('Ready indexes agree with the reference model through a random run of real operations', () => {
  let server: RedisServer;
  let redis: Redis;
  let raw: Redis;
  let config: Config;
  let cc: CallCenterConfig;
  let engine: AgentEngine;
  let tasks: TaskStore;
  let selector: Selector;
  const ids = Array.from({ length: AGENTS }, (_, i) => `a${i}`);

  beforeAll(async () => {
    server = await startRedis();
    redis = createRedis(server.url);
    raw = new Redis(server.url);
    config = buildConfig(server.url);
    cc = config.callcenters.default!;
    engine = new AgentEngine({ redis, config });
    tasks = new TaskStore({ redis, config });
    selector = new Selector({ redis, random: () => 0.5 });
    const registrar = new Registrar({ redis, config });
    for (const a of ids) await registrar.register('default', { agent: a, contacts: [{ uri: `sip:${a}@127.0.0.1:5062`, expires: 3600 }], callId: `reg-${a}`, cseq: 1, source: '127.0.0.1:5062', transport: 'udp', server: '127.0.0.1:5060', userAgent: 'test' });
  });
  afterAll(async () => {
    redis.disconnect();
    raw.disconnect();
    await server.stop();
  });

  /** Every Ready member of a queue, read in full, with its counters: the reference's input. */
  const everyone = async (q: string): Promise<Candidate[]> => {
    const order = new Map(Object.keys(cc.agents).filter((a) => Object.hasOwn(cc.agents[a]!.queues, q)).map((a, i) => [a, i]));
    const r = await raw.zrange(keys.queueReady(q), 0, -1, 'WITHSCORES');
    const out: Candidate[] = [];
    for (let i = 0; i < r.length; i += 2) {
      const id = r[i]!;
      const [calls, talk] = await raw.hmget(keys.agentQueueStats(id, q), 'calls', 'talkMs');
      out.push({ id, readySince: Number(r[i + 1]), order: order.get(id)!, answeredCalls: Number(calls ?? 0), talkTimeMs: Number(talk ?? 0), skills: cc.agents[id]!.queues[q]!.skills ?? {} });
    }
    return out;
  };

  const conditionSets = (rnd: () => number): (TaskConditions | undefined)[] => {
    const some = Array.from({ length: 12 }, () => ids[Math.floor(rnd() * AGENTS)]!);
    return [
      undefined,
      { skills: [{ name: 'lang', min: 50 }] }, // about half qualify: walked in the strategy's order
      { skills: [{ name: 'lang', min: 96 }] }, // few qualify: read within the bounds
      { skills: [{ name: 'lang', min: 20, max: 80 }, { name: 'sales', max: 30 }] },
      { skills: [{ name: 'lang', min: 60 }, { name: 'lang', max: 40 }] }, // nobody
      { agents: some },
      { agents: some, skills: [{ name: 'sales', min: 20 }] },
    ];
  };

  /** The checkpoint: indexes consistent, and each plan's head is the reference's. */
  const checkpoint = async (rnd: () => number, label: string): Promise<void> => {
    const findings = (await audit(raw, keys, cc)).filter((f) => f.kind === 'ready_index' || f.kind === 'ready_set');
    expect({ label, findings }).toEqual({ label, findings: [] });
    // A selector of its own: round_robin's cursor of the run's selector is not the reference's.
    const fresh = new Selector({ redis, random: () => 0.5 });
    for (const [q, strategy] of Object.entries(QUEUES)) {
      const all = await everyone(q);
      for (const conditions of conditionSets(rnd)) {
        const got = (await fresh.plan(cc, keys, q, conditions)).agents.slice(0, MAX_CANDIDATES);
        const want = planOffer(strategy, all, conditions, { random: () => 0.5 }).agents.slice(0, MAX_CANDIDATES);
        expect({ label, q, strategy, conditions, plan: got }).toEqual({ label, q, strategy, conditions, plan: want });
      }
    }
  };

  it('through 600 seeded steps, at every checkpoint the audit finds the indexes consistent and every plan matches the reference', async () => {
    const rnd = lcg(20261203);
    for (const a of ids) await engine.login('default', a);
    await checkpoint(rnd, 'after login');
    const open: { task: string; queue: string; agent: string }[] = [];
    let n = 0;
    let crashes = 0;
    for (let step = 1; step <= 600; step++) {
      const roll = rnd();
      const agent = ids[Math.floor(rnd() * AGENTS)]!;
      const queue = Object.keys(QUEUES)[Math.floor(rnd() * 5)]!;
      if (roll < 0.15) {
        await engine.notReady('default', agent, rnd() < 0.5 ? { queue } : {}).catch(() => undefined);
      } else if (roll < 0.3) {
        await engine.ready('default', agent, rnd() < 0.5 ? { queue } : {}).catch(() => undefined);
      } else if (roll < 0.7 || open.length === 0) {
        // A queue call, answered by the plan's first agent, through the scripts the call path uses.
        const task = `t${++n}`;
        await tasks.enqueue('default', { id: task, queue, priority: 0, callId: task, caller: 'c', owner: 'idx-a', maxWaitMs: 600_000 });
        const plan = await selector.plan(cc, keys, queue, undefined);
        const got = await tasks.reserve('default', task, queue, plan.agents, 1, 25_000);
        if (!Array.isArray(got) || got.length === 0) {
          await tasks.end('default', task, queue, 'abandoned');
          continue;
        }
        const r = got[0]!;
        selector.offered(cc, keys, queue, r.agent);
        const claim = await tasks.claimAnswer('default', task, queue, r);
        expect(claim.ok).toBe(true);
        if (crashes < 6 && rnd() < 0.05) {
          // The instance dies between the answer and putting the agent on the call: the agent
          // is still Ready with one call more, and must already be in its new place.
          crashes++;
          await tasks.release('default', r); // the lease lapsing
          await checkpoint(rnd, `crash after the answer of ${task} by ${r.agent}`);
          continue;
        }
        await engine.callStarted('default', r.agent, { callId: task, acdQueue: queue });
        await tasks.release('default', r);
        open.push({ task, queue, agent: r.agent });
      } else {
        // A call ends: the agent's call end and the task's end, in either order (talk time may
        // reach the counters while the agent is Ready again).
        const [c] = open.splice(Math.floor(rnd() * open.length), 1);
        if (rnd() < 0.5) {
          await engine.callEnded('default', c!.agent, { callId: c!.task });
          await tasks.end('default', c!.task, c!.queue, 'completed', c!.agent);
        } else {
          await tasks.end('default', c!.task, c!.queue, 'completed', c!.agent);
          await engine.callEnded('default', c!.agent, { callId: c!.task });
        }
      }
      if (step % 100 === 0) await checkpoint(rnd, `step ${step}`);
    }
    for (const c of open) {
      await engine.callEnded('default', c.agent, { callId: c.task });
      await tasks.end('default', c.task, c.queue, 'completed', c.agent);
    }
    await checkpoint(rnd, 'every call ended');
    // Some counters really differ, or the comparison proves little.
    const calls = await Promise.all(ids.slice(0, 50).map(async (a) => Number((await raw.hget(keys.agentQueueStats(a, '8000'), 'calls')) ?? 0)));
    expect(new Set(calls).size).toBeGreaterThan(1);
    expect(crashes).toBeGreaterThan(0);
    expect(await raw.zcard(keys.queueReadyIndex('8000', 'calls'))).toBeGreaterThan(100);
  }, 120_000);

  it('an index entry lost, a stale score and a stray member are each found by the audit and rebuilt by its repair', async () => {
    for (const a of ids) await engine.ready('default', a).catch(() => undefined);
    const [a, b, c] = ['a1', 'a2', 'a4'];
    const since = Number(await raw.zscore(keys.queueReady('8000'), a));
    await raw.zrem(keys.queueReadyIndex('8000', 'calls'), readyMember(since, a));
    const sinceB = Number(await raw.zscore(keys.queueReady('8001'), b));
    await raw.zadd(keys.queueReadyIndex('8001', 'talk'), 999_999, readyMember(sinceB, b));
    await engine.notReady('default', c, { queue: '8002' });
    await raw.zadd(keys.queueReadyIndex('8002', 'skill:lang'), -50, readyMember(123, c));
    const found = (await audit(raw, keys, cc)).filter((f) => f.kind === 'ready_index');
    expect(found.map((f) => [f.agent, f.queue]).sort()).toEqual([[a, '8000'], [b, '8001'], [c, '8002']]);
    const out = await repair({ redis, engine, tasks, conversations: new ConversationStore({ redis, config }), logger: createLogger('silent') }, cc, keys, found);
    expect(out.every((o) => o.applied)).toBe(true);
    expect((await audit(raw, keys, cc)).filter((f) => f.kind === 'ready_index')).toEqual([]);
    expect(await raw.zscore(keys.queueReadyIndex('8000', 'calls'), readyMember(since, a))).not.toBeNull();
    expect(await raw.hget(keys.agent(c), agentField.idx('8002'))).toBe('');
  });

  it('a strategy changed in the config while agents are Ready: the plan falls back to reading every member and still matches the reference', async () => {
    // 8003 was longest_idle: nobody is in a calls index for it. Read it as fewest_calls.
    const changed = structuredClone(cc);
    changed.queues['8003']!.strategy = 'fewest_calls';
    const all = await everyone('8003');
    const got = (await selector.plan(changed, keys, '8003', undefined)).agents.slice(0, MAX_CANDIDATES);
    const want = planOffer('fewest_calls', await Promise.all(all.map(async (x) => ({ ...x, answeredCalls: Number((await raw.hget(keys.agentQueueStats(x.id, '8003'), 'calls')) ?? 0) }))), undefined, { random: () => 0.5 }).agents.slice(0, MAX_CANDIDATES);
    expect(got).toEqual(want);
    expect(await raw.exists(keys.queueReadyIndex('8003', 'calls'))).toBe(0);
  });
});
