/**
 * Builds the offer plan of a task from Redis: who is Ready in the queue (the ready ZSET,
 * scored by idle-since) plus, for strategies that need them, the agents' counters, then the
 * reference model ({@link planOffer}) orders them. The RESERVE script re-checks every
 * candidate atomically (Ready, unreserved, registered), so a stale read here costs at most a
 * refused reservation, never a double one.
 *
 * longest_idle (the default) reads only the head of the ready ZSET (O(log n)); the others
 * read every Ready member of the queue (O(n)), which the reservation benchmark reports.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig, Strategy } from '../config/schema';
import type { CallCenterKeys } from '../store/keys';
import { planOffer, type Candidate, type OfferPlan, type RoundRobinCursor, type TaskConditions } from './strategies';
import { MAX_CANDIDATES } from './taskStore';

/** Reads candidates and plans an offer. */
export class Selector {
  private readonly rr = new Map<string, RoundRobinCursor>();

  constructor(private readonly deps: { redis: Redis; random?: () => number }) {}

  /** The agents to offer the task to, in order (parallel for ring_all). */
  async plan(cc: CallCenterConfig, keys: CallCenterKeys, queue: string, conditions: TaskConditions | undefined): Promise<OfferPlan> {
    const strategy: Strategy = cc.queues[queue]?.strategy ?? 'longest_idle';
    const { redis } = this.deps;
    const fast = strategy === 'longest_idle' && conditions === undefined;
    const raw = fast ? await redis.zrange(keys.queueReady(queue), 0, MAX_CANDIDATES - 1, 'WITHSCORES') : await redis.zrange(keys.queueReady(queue), 0, -1, 'WITHSCORES');
    const members = Object.keys(cc.agents).filter((a) => Object.hasOwn(cc.agents[a]!.queues, queue));
    const order = new Map(members.map((a, i) => [a, i]));
    const candidates: Candidate[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const id = raw[i]!;
      const agent = cc.agents[id];
      if (agent === undefined) continue; // removed from the config since it went Ready
      candidates.push({ id, readySince: Number(raw[i + 1]), order: order.get(id) ?? members.length, answeredCalls: 0, talkTimeMs: 0, skills: agent.queues[queue]?.skills ?? {} });
    }
    if (strategy === 'fewest_calls' || strategy === 'least_talk_time') {
      const pipe = redis.pipeline();
      for (const c of candidates) pipe.hmget(keys.agentQueueStats(c.id, queue), 'calls', 'talkMs');
      const res = (await pipe.exec()) ?? [];
      res.forEach(([err, v], i) => {
        if (err) throw err;
        const [calls, talk] = v as (string | null)[];
        candidates[i]!.answeredCalls = Number(calls ?? 0);
        candidates[i]!.talkTimeMs = Number(talk ?? 0);
      });
    }
    const rrKey = `${keys.queueReady(queue)}`;
    const rrCursor = this.rr.get(rrKey);
    const plan = planOffer(strategy, candidates, conditions, { random: this.deps.random ?? Math.random, ...(rrCursor ? { rrCursor } : {}) });
    return plan;
  }

  /**
   * Records who round_robin offered last in a queue. Per instance: with several instances
   * the rotation is per instance, which keeps the spread even without another shared key.
   */
  offered(cc: CallCenterConfig, keys: CallCenterKeys, queue: string, agent: string): void {
    const members = Object.keys(cc.agents).filter((a) => Object.hasOwn(cc.agents[a]!.queues, queue));
    const i = members.indexOf(agent);
    if (i >= 0) this.rr.set(keys.queueReady(queue), { order: i, id: agent });
  }
}
