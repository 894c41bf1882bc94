/**
 * Builds the offer plan of a task from Redis: who is Ready in the queue, read in the order the
 * strategy needs from the queue's Ready ZSET (scored by idle-since) or one of its Ready
 * indexes (lib/acd/readyIndex.ts), then the reference model ({@link planOffer}) orders them.
 * The RESERVE script re-checks every candidate atomically (Ready, unreserved, registered), so a
 * stale read here costs at most a refused reservation, never a double one.
 *
 * Every read is bounded by the plan's head (MAX_CANDIDATES), not by the queue's size:
 * - longest_idle, ring_all and skills without skill conditions: the head of the Ready ZSET;
 * - fewest_calls / least_talk_time: the head of the `calls` / `talk` index (its order is the
 *   strategy's, tie-breaks included); if the index does not hold every Ready agent (the
 *   strategy was changed in the config while agents were Ready), every Ready member is read
 *   once with its counters, as before the indexes;
 * - top_down and round_robin: the static member order, walked until enough are Ready;
 * - random: a uniform sample of the Ready ZSET;
 * - a task naming agents: those agents only;
 * - a task with skill conditions: `skills` with one skill reads the head of that skill's index
 *   within the bounds (its order is the strategy's); otherwise the cheaper of reading the
 *   Ready agents within the bounds of the most selective condition (c of them) and walking the
 *   strategy's own order, filtering, until enough qualify (about MAX_CANDIDATES·n/c reads),
 *   chosen by counting first: at most about sqrt(MAX_CANDIDATES·n) either way. `skills` with
 *   several skills orders by their sum, which no single index gives: it reads the c agents.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig, Strategy } from '../config/schema';
import type { CallCenterKeys } from '../store/keys';
import { meetsConditions, planOffer, type Candidate, type OfferPlan, type RoundRobinCursor, type TaskConditions } from './strategies';
import { MAX_CANDIDATES } from './taskStore';
import { pipelineReplies } from '../store/redis';
import { parseReadyMember, strategyIndex } from './readyIndex';

/** Ready members read per round trip when walking a queue in some order. */
const WALK_CHUNK = 200;

/** A queue's members in config order, and each one's position. */
interface Members {
  ids: string[];
  order: Map<string, number>;
}

/** Lower and upper level bound per skill named by a task's conditions. */
type SkillBounds = Map<string, { lo: number; hi: number }>;

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
    const rrCursor = this.rr.get(keys.queueReady(queue));
    const read = new Reader(this.deps.redis, cc, keys, queue, strategy, this.members(cc, queue), rrCursor);
    let candidates: Candidate[];
    if (conditions?.agents !== undefined) candidates = await read.listed(conditions.agents);
    else if (conditions?.skills !== undefined && conditions.skills.length > 0) candidates = await read.withSkills(conditions);
    else candidates = await read.unconditioned();
    return planOffer(strategy, candidates, conditions, { random: this.deps.random ?? Math.random, ...(rrCursor ? { rrCursor } : {}) });
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

/** The reads of one plan. */
class Reader {
  private readonly ready: string;
  private readonly index: 'calls' | 'talk' | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly cc: CallCenterConfig,
    private readonly keys: CallCenterKeys,
    private readonly queue: string,
    private readonly strategy: Strategy,
    private readonly members: Members,
    private readonly rrCursor: RoundRobinCursor | undefined,
  ) {
    this.ready = keys.queueReady(queue);
    this.index = strategyIndex(strategy);
  }

  /** A candidate from config and what Redis said; undefined for an id no longer in the config. */
  private candidate(id: string, readySince: number, counter = 0): Candidate | undefined {
    const agent = this.cc.agents[id];
    if (agent === undefined) return undefined; // removed from the config since it went Ready
    return {
      id,
      readySince,
      order: this.members.order.get(id) ?? this.members.ids.length,
      answeredCalls: this.index === 'calls' ? counter : 0,
      talkTimeMs: this.index === 'talk' ? counter : 0,
      skills: agent.queues[this.queue]?.skills ?? {},
    };
  }

  /** Candidates from `[id, readySince, ...]` (a Ready ZSET read). */
  private fromReady(raw: string[]): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const c = this.candidate(raw[i]!, Number(raw[i + 1]));
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  /** Candidates from ZMSCORE's answer for `ids` (the Ready ones: those with a score). */
  private fromScores(ids: readonly string[], scores: (string | null)[]): Candidate[] {
    const out: Candidate[] = [];
    ids.forEach((id, i) => {
      const s = scores[i];
      const c = s === null || s === undefined ? undefined : this.candidate(id, Number(s));
      if (c !== undefined) out.push(c);
    });
    return out;
  }

  /** Candidates from `[member, score, ...]` of an index (score = the strategy's counter when `counted`). */
  private fromIndex(raw: string[], counted: boolean): Candidate[] {
    const out: Candidate[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const m = parseReadyMember(raw[i]!);
      const c = m === undefined ? undefined : this.candidate(m.id, m.readySince, counted ? Number(raw[i + 1]) : 0);
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  /** Fills in the strategy's counter (calls or talk ms) from each candidate's queue stats. */
  private async withCounters(candidates: Candidate[]): Promise<Candidate[]> {
    if (this.index === undefined || candidates.length === 0) return candidates;
    const pipe = this.redis.pipeline();
    for (const c of candidates) pipe.hmget(this.keys.agentQueueStats(c.id, this.queue), 'calls', 'talkMs');
    (await pipelineReplies(pipe)).forEach((v, i) => {
      const [calls, talk] = v as (string | null)[];
      candidates[i]!.answeredCalls = Number(calls ?? 0);
      candidates[i]!.talkTimeMs = Number(talk ?? 0);
    });
    return candidates;
  }

  /** Every Ready member with its counters: the read of last resort (O(n)). */
  private async everyone(): Promise<Candidate[]> {
    return this.withCounters(this.fromReady(await this.redis.zrange(this.ready, 0, -1, 'WITHSCORES')));
  }

  /** Whether the strategy's index holds every Ready agent (it does unless the config changed). */
  private async indexComplete(): Promise<boolean> {
    const [n, m] = await Promise.all([this.redis.zcard(this.ready), this.redis.zcard(this.keys.queueReadyIndex(this.queue, this.index!))]);
    return n === m;
  }

  /** Candidates for a task without conditions. */
  async unconditioned(): Promise<Candidate[]> {
    switch (this.strategy) {
      case 'longest_idle':
      case 'ring_all':
      case 'skills': // no skill named: every score is 0, so the order is longest-idle
        // ring_all rings in longest-idle order, and a reservation takes at most MAX_CANDIDATES.
        return this.fromReady(await this.redis.zrange(this.ready, 0, MAX_CANDIDATES - 1, 'WITHSCORES'));
      case 'top_down':
      case 'round_robin':
        return this.walkMembers(() => true);
      case 'random':
        // A uniform sample, shuffled by the model: the same distribution as shuffling them all,
        // for the MAX_CANDIDATES a reservation looks at.
        return this.fromReady(await this.redis.zrandmember(this.ready, MAX_CANDIDATES, 'WITHSCORES'));
      case 'fewest_calls':
      case 'least_talk_time':
        if (!(await this.indexComplete())) return this.everyone();
        return this.fromIndex(await this.redis.zrange(this.keys.queueReadyIndex(this.queue, this.index!), 0, MAX_CANDIDATES - 1, 'WITHSCORES'), true);
    }
  }

  /** Candidates for a task naming its agents: only those are read. */
  async listed(agents: readonly string[]): Promise<Candidate[]> {
    const ids = [...new Set(agents)].filter((a) => this.members.order.has(a));
    if (ids.length === 0) return [];
    return this.withCounters(this.fromScores(ids, await this.redis.zmscore(this.ready, ...ids)));
  }

  /** Candidates for a task with skill conditions (see the module's comment for the choice). */
  async withSkills(conditions: TaskConditions): Promise<Candidate[]> {
    const bounds: SkillBounds = new Map();
    for (const s of conditions.skills ?? []) {
      const b = bounds.get(s.name) ?? { lo: 0, hi: 100 };
      b.lo = Math.max(b.lo, s.min ?? 0);
      b.hi = Math.min(b.hi, s.max ?? 100);
      bounds.set(s.name, b);
    }
    if ([...bounds.values()].some((b) => b.lo > b.hi)) return [];
    const names = [...bounds.keys()];
    const pipe = this.redis.pipeline();
    pipe.zcard(this.ready);
    for (const name of names) pipe.zcount(this.keys.queueReadyIndex(this.queue, `skill:${name}`), -bounds.get(name)!.hi, -bounds.get(name)!.lo);
    const [n = 0, ...counts] = (await pipelineReplies(pipe)).map(Number);
    let best = 0;
    counts.forEach((c, i) => {
      if (c < counts[best]!) best = i;
    });
    const c = counts[best]!;
    if (c === 0) return [];
    const name = names[best]!;
    const idx = this.keys.queueReadyIndex(this.queue, `skill:${name}`);
    const { lo, hi } = bounds.get(name)!;
    if (this.strategy === 'skills' && names.length === 1) {
      // Ordered by level (descending), then idle time and id: the strategy's own order.
      return this.fromIndex(await this.redis.zrangebyscore(idx, -hi, -lo, 'WITHSCORES', 'LIMIT', 0, MAX_CANDIDATES), false);
    }
    const ok = (x: Candidate): boolean => meetsConditions(x, conditions);
    const inRange = async (): Promise<Candidate[]> => this.withCounters(this.fromIndex(await this.redis.zrangebyscore(idx, -hi, -lo, 'WITHSCORES'), false));
    if (this.strategy === 'random') {
      // Sample the skill's index, keep those within the bounds: uniform over the qualifying.
      const total = await this.redis.zcard(idx);
      const want = Math.min(total, Math.ceil((MAX_CANDIDATES * 2 * total) / c));
      if (want >= total) return inRange();
      const sample = this.fromIndex(await this.redis.zrandmember(idx, want, 'WITHSCORES'), false).filter(ok);
      return sample.length > 0 ? sample : inRange();
    }
    if (this.strategy === 'skills' || c * c <= MAX_CANDIDATES * n) return inRange();
    switch (this.strategy) {
      case 'longest_idle':
      case 'ring_all':
        return this.walkZset(this.ready, false, ok);
      case 'top_down':
      case 'round_robin':
        return this.walkMembers(ok);
      case 'fewest_calls':
      case 'least_talk_time':
        if (!(await this.indexComplete())) return this.everyone();
        return this.walkZset(this.keys.queueReadyIndex(this.queue, this.index!), true, ok);
    }
  }

  /** The first MAX_CANDIDATES candidates of a ZSET (the Ready set, or an index) that pass `ok`, read in chunks. */
  private async walkZset(key: string, isIndex: boolean, ok: (c: Candidate) => boolean): Promise<Candidate[]> {
    const out: Candidate[] = [];
    for (let start = 0; out.length < MAX_CANDIDATES; start += WALK_CHUNK) {
      const raw = await this.redis.zrange(key, start, start + WALK_CHUNK - 1, 'WITHSCORES');
      for (const c of isIndex ? this.fromIndex(raw, true) : this.fromReady(raw)) if (ok(c) && out.length < MAX_CANDIDATES) out.push(c);
      if (raw.length < WALK_CHUNK * 2) break;
    }
    return out;
  }

  /**
   * The first Ready members passing `ok` (up to twice MAX_CANDIDATES), in member order from the
   * top (top_down) or after the round_robin cursor, wrapping around. One ZMSCORE per chunk:
   * when most members are Ready it costs one round trip; when few are, it reads up to the
   * whole list.
   */
  private async walkMembers(ok: (c: Candidate) => boolean): Promise<Candidate[]> {
    const ids = this.members.ids;
    const start = this.strategy === 'round_robin' && this.rrCursor !== undefined ? this.rrCursor.order + 1 : 0;
    const out: Candidate[] = [];
    const n = ids.length;
    for (let done = 0; done < n && out.length < MAX_CANDIDATES * 2; done += WALK_CHUNK) {
      const chunk: string[] = [];
      for (let i = done; i < Math.min(n, done + WALK_CHUNK); i++) chunk.push(ids[(start + i) % n]!);
      for (const c of this.fromScores(chunk, await this.redis.zmscore(this.ready, ...chunk))) if (ok(c) && out.length < MAX_CANDIDATES * 2) out.push(c);
    }
    return out;
  }
}
