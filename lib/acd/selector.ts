/**
 * Builds the offer plan of a task from Redis: who is Ready in the queue (the ready ZSET,
 * scored by idle-since) plus, for strategies that need them, the agents' counters, then the
 * reference model ({@link planOffer}) orders them. The RESERVE script re-checks every
 * candidate atomically (Ready, unreserved, registered), so a stale read here costs at most a
 * refused reservation, never a double one.
 *
 * Without task conditions, longest_idle (the default) and ring_all read only the head of the ready ZSET,
 * top_down and round_robin walk the static member order until they have enough Ready agents,
 * and random samples the ready ZSET: their cost does not grow with the queue. fewest_calls,
 * least_talk_time, skills and any task with conditions read every Ready member
 * (O(n)); the reservation benchmark (bench/acdBench.ts) reports both kinds.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig, Strategy } from '../config/schema';
import type { CallCenterKeys } from '../store/keys';
import { planOffer, type Candidate, type OfferPlan, type RoundRobinCursor, type TaskConditions } from './strategies';
import { MAX_CANDIDATES } from './taskStore';
import { pipelineReplies } from '../store/redis';

/** Ready members read per ZMSCORE round trip when walking a queue in member order. */
const WALK_CHUNK = 200;

/** A queue's members in config order, and each one's position. */
interface Members {
  ids: string[];
  order: Map<string, number>;
}

/** Reads candidates and plans an offer. */
export class Selector {
  private readonly rr = new Map<string, RoundRobinCursor>();
  /** Members per queue, built once per configuration object (configs are immutable once loaded). */
  private readonly membersCache = new WeakMap<CallCenterConfig, Map<string, Members>>();

  constructor(private readonly deps: { redis: Redis; random?: () => number }) {}

  private members(cc: CallCenterConfig, queue: string): Members {
    let byQueue = this.membersCache.get(cc);
    if (byQueue === undefined) this.membersCache.set(cc, (byQueue = new Map<string, Members>()));
    let m = byQueue.get(queue);
    if (m === undefined) {
      const ids = Object.keys(cc.agents).filter((a) => Object.hasOwn(cc.agents[a]!.queues, queue));
      byQueue.set(queue, (m = { ids, order: new Map(ids.map((a, i) => [a, i])) }));
    }
    return m;
  }

  /** The agents to offer the task to, in order (parallel for ring_all). */
  async plan(cc: CallCenterConfig, keys: CallCenterKeys, queue: string, conditions: TaskConditions | undefined): Promise<OfferPlan> {
    const strategy: Strategy = cc.queues[queue]?.strategy ?? 'longest_idle';
    const members = this.members(cc, queue);
    const rrCursor = this.rr.get(keys.queueReady(queue));
    let raw: string[];
    if (conditions === undefined && (strategy === 'longest_idle' || strategy === 'ring_all')) {
      // The head of the ready ZSET: O(log n), whatever the queue's size. ring_all rings them in
      // longest-idle order, and a reservation takes at most MAX_CANDIDATES of them anyway.
      raw = await this.deps.redis.zrange(keys.queueReady(queue), 0, MAX_CANDIDATES - 1, 'WITHSCORES');
    } else if (conditions === undefined && (strategy === 'top_down' || strategy === 'round_robin')) {
      // Member order is static: walk it from the top (or after the cursor) and stop at the
      // first MAX_CANDIDATES Ready ones, which are exactly the plan's head.
      const start = strategy === 'round_robin' && rrCursor !== undefined ? rrCursor.order + 1 : 0;
      raw = await this.walk(keys.queueReady(queue), members.ids, start);
    } else if (conditions === undefined && strategy === 'random') {
      // A uniform sample of the Ready members, shuffled by the model: the same distribution
      // as shuffling them all, for the MAX_CANDIDATES a reservation looks at.
      raw = await this.deps.redis.zrandmember(keys.queueReady(queue), MAX_CANDIDATES, 'WITHSCORES');
    } else {
      // Ordering by live counters, skill scores or with conditions needs every Ready member.
      raw = await this.deps.redis.zrange(keys.queueReady(queue), 0, -1, 'WITHSCORES');
    }
    const candidates: Candidate[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const id = raw[i]!;
      const agent = cc.agents[id];
      if (agent === undefined) continue; // removed from the config since it went Ready
      candidates.push({ id, readySince: Number(raw[i + 1]), order: members.order.get(id) ?? members.ids.length, answeredCalls: 0, talkTimeMs: 0, skills: agent.queues[queue]?.skills ?? {} });
    }
    if (strategy === 'fewest_calls' || strategy === 'least_talk_time') {
      const pipe = this.deps.redis.pipeline();
      for (const c of candidates) pipe.hmget(keys.agentQueueStats(c.id, queue), 'calls', 'talkMs');
      (await pipelineReplies(pipe)).forEach((v, i) => {
        const [calls, talk] = v as (string | null)[];
        candidates[i]!.answeredCalls = Number(calls ?? 0);
        candidates[i]!.talkTimeMs = Number(talk ?? 0);
      });
    }
    return planOffer(strategy, candidates, conditions, { random: this.deps.random ?? Math.random, ...(rrCursor ? { rrCursor } : {}) });
  }

  /**
   * The first MAX_CANDIDATES members (in `ids` order from `start`, wrapping around) that are in
   * the ready ZSET, as `[id, score, ...]`. One ZMSCORE per chunk: when most members are Ready it
   * costs one round trip; when few are, it reads up to the whole list.
   */
  private async walk(readyKey: string, ids: string[], start: number): Promise<string[]> {
    const out: string[] = [];
    const n = ids.length;
    for (let done = 0; done < n && out.length < MAX_CANDIDATES * 2; done += WALK_CHUNK) {
      const chunk: string[] = [];
      for (let i = done; i < Math.min(n, done + WALK_CHUNK); i++) chunk.push(ids[(start + i) % n]!);
      const scores = await this.deps.redis.zmscore(readyKey, ...chunk);
      chunk.forEach((id, i) => {
        if (scores[i] !== null && scores[i] !== undefined && out.length < MAX_CANDIDATES * 2) out.push(id, scores[i]);
      });
    }
    return out;
  }

  /**
   * Records who round_robin offered last in a queue. Per instance: with several instances
   * the rotation is per instance, which keeps the spread even without another shared key.
   */
  offered(cc: CallCenterConfig, keys: CallCenterKeys, queue: string, agent: string): void {
    const i = this.members(cc, queue).order.get(agent);
    if (i !== undefined) this.rr.set(keys.queueReady(queue), { order: i, id: agent });
  }
}
