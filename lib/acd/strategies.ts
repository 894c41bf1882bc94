/**
 * The reference model of agent selection (DESIGN.md sections 5 and 6): given a queue task's
 * selection conditions and the agents eligible for it, which agents are offered the call and in
 * what order. Pure and deterministic given its inputs, because the production selection runs
 * inside a Redis Lua script and a parity test compares the two: every rule here, tie-breaks
 * included, is meant to be re-implementable line by line in Lua.
 *
 * Conventions shared by every rule below:
 * - Candidates are the agents already known to be Ready and unreserved in the queue; this module
 *   does not look at states or leases. Candidate ids are unique.
 * - Ids compare by UTF-16 code unit (`<` in JS). Config ids are ASCII (`[A-Za-z0-9_.-]`), where
 *   that is the same as the byte order of Lua's `<` under the C locale Redis runs with.
 *   `localeCompare` is deliberately not used: it depends on the host's ICU data.
 * - "Longest idle" means the smaller `readySince` first, then the smaller id.
 */
import type { Strategy } from '../config/schema';

/** An agent eligible for a task: Ready and unreserved in the task's queue. */
export interface Candidate {
  id: string;
  /** When the agent last became Ready in this queue (ms). Smaller = idle longer. */
  readySince: number;
  /** Position of the agent in the queue's member list from config (0-based); used by top_down and round_robin. */
  order: number;
  /** Calls of this queue the agent answered (since the counter was last reset). */
  answeredCalls: number;
  /** Talk time on calls of this queue, in ms, over the same period as `answeredCalls`. */
  talkTimeMs: number;
  /** Skill levels of the agent in this queue (config levels are integers 0..100). */
  skills: Readonly<Record<string, number>>;
}

/** One skill condition: the agent must have the skill, with a level within the inclusive bounds given. */
export interface SkillCondition {
  name: string;
  min?: number;
  max?: number;
}

/**
 * Selection conditions of a queue task (the `enqueue` XML of seed 002). They filter the
 * candidates of every strategy, not only `skills`; conditions absent or `undefined` filter nothing.
 */
export interface TaskConditions {
  /**
   * Only these agents may be offered the task. An empty list admits nobody (the XML parser
   * never produces one: no `<agent>` element means the field is absent).
   */
  agents?: readonly string[];
  /** Every condition must hold (AND). */
  skills?: readonly SkillCondition[];
}

/** Position of the member last offered a call by round_robin in a queue. */
export interface RoundRobinCursor {
  order: number;
  id: string;
}

/** Everything beyond the candidates that a selection depends on; injected so the model stays pure. */
export interface SelectContext {
  /** Uniform in [0, 1); only the `random` strategy draws from it. */
  random: () => number;
  /**
   * The member round_robin offered last in this queue; absent = start from the first member.
   * It is a position, not just an id, so the rotation continues correctly when that member is
   * no longer a candidate (logged out, busy). The caller advances it on each offer it makes.
   */
  rrCursor?: RoundRobinCursor;
}

/**
 * Whom to offer the task to. `parallel`: ring every listed agent at once, the first to answer
 * wins. `sequential`: offer `agents[0]` first and move to the next on no-answer or reject.
 * An empty list means no candidate qualifies: the task keeps waiting.
 */
export interface OfferPlan {
  mode: 'parallel' | 'sequential';
  agents: string[];
}

/** The strategies that offer one agent at a time. */
export type SequentialStrategy = Exclude<Strategy, 'ring_all'>;

/**
 * One line per strategy, as the config documents them. The exact ordering rules are in
 * {@link planOffer}.
 */
export const STRATEGY_MEANING: Readonly<Record<Strategy, string>> = {
  ring_all: 'ring every eligible agent at once; the first to answer takes the call',
  longest_idle: 'offer the agent who has been Ready the longest first',
  round_robin: "offer the member after the one offered last, in the queue's member order, wrapping around",
  top_down: "offer members in the queue's configured member order, always starting from the top",
  fewest_calls: 'offer the agent who has answered the fewest calls of this queue first',
  least_talk_time: 'offer the agent with the least talk time on this queue first',
  random: 'offer agents in a uniformly random order',
  skills: 'offer the agent with the highest total level in the skills the task asks for first',
};

/** Whether `c` satisfies every condition. A listed skill the agent lacks fails, whatever the bounds. */
export function meetsConditions(c: Candidate, conditions: TaskConditions | undefined): boolean {
  if (conditions === undefined) return true;
  if (conditions.agents !== undefined && !conditions.agents.includes(c.id)) return false;
  for (const s of conditions.skills ?? []) {
    const level = skillLevel(c, s.name);
    if (level === undefined) return false;
    if (s.min !== undefined && level < s.min) return false;
    if (s.max !== undefined && level > s.max) return false;
  }
  return true;
}

/**
 * The `skills` strategy's score: the sum of the agent's levels in the skills the conditions
 * name (each named skill counted once per condition). 0 when the task names no skill.
 */
export function skillScore(c: Candidate, conditions: TaskConditions | undefined): number {
  let score = 0;
  for (const s of conditions?.skills ?? []) score += skillLevel(c, s.name) ?? 0;
  return score;
}

/**
 * The offer plan for a task.
 *
 * Candidates failing {@link meetsConditions} are dropped first, whatever the strategy. The
 * rest are ordered by (ascending unless noted; `id` always the last key, so no two candidates
 * ever tie):
 * - `ring_all`: parallel, all of them, listed in longest-idle order (the order is only cosmetic).
 * - `longest_idle`: `readySince`, `id`.
 * - `top_down`: `order`, `id`.
 * - `round_robin`: by (`order`, `id`), rotated so the first is the first member strictly after
 *   `ctx.rrCursor` in that order; if none is after it (or there is no cursor) the first member.
 * - `fewest_calls`: `answeredCalls`, `readySince`, `id`.
 * - `least_talk_time`: `talkTimeMs`, `readySince`, `id`.
 * - `skills`: {@link skillScore} descending, `readySince`, `id`.
 * - `random`: sorted by `id`, then a forward Fisher–Yates shuffle: for `i` = 0 .. n-2,
 *   `j = i + floor(ctx.random() * (n - i))` (clamped to n-1), swap `i` and `j`. That draws n-1
 *   numbers, and the first agent depends only on the first draw: `sorted[floor(r * n)]`.
 */
export function planOffer(strategy: Strategy, candidates: readonly Candidate[], conditions: TaskConditions | undefined, ctx: SelectContext): OfferPlan {
  const eligible = candidates.filter((c) => meetsConditions(c, conditions));
  if (strategy === 'ring_all') return { mode: 'parallel', agents: eligible.sort(byLongestIdle).map((c) => c.id) };
  if (strategy === 'random') return { mode: 'sequential', agents: shuffle(eligible.sort(byId), ctx.random).map((c) => c.id) };
  const sorted = eligible.sort(comparatorFor(strategy, conditions));
  if (strategy === 'round_robin' && ctx.rrCursor !== undefined) {
    const cursor = ctx.rrCursor;
    const start = sorted.findIndex((c) => isAfterCursor(c, cursor));
    if (start > 0) return { mode: 'sequential', agents: [...sorted.slice(start), ...sorted.slice(0, start)].map((c) => c.id) };
  }
  return { mode: 'sequential', agents: sorted.map((c) => c.id) };
}

/**
 * The agent a sequential strategy offers first: always `planOffer(...).agents[0]`, but found
 * with one linear scan and (for `random`) one draw, for callers that offer one agent at a time
 * and re-select after each no-answer. `undefined` when no candidate qualifies.
 */
export function pickNext(strategy: SequentialStrategy, candidates: readonly Candidate[], conditions: TaskConditions | undefined, ctx: SelectContext): string | undefined {
  const eligible = candidates.filter((c) => meetsConditions(c, conditions));
  if (eligible.length === 0) return undefined;
  if (strategy === 'random') return eligible.sort(byId)[drawIndex(ctx.random, eligible.length)]?.id;
  const cmp = comparatorFor(strategy, conditions);
  const cursor = strategy === 'round_robin' ? ctx.rrCursor : undefined;
  let best: Candidate | undefined;
  let bestAfter = false;
  for (const c of eligible) {
    // round_robin: any member after the cursor beats every member at or before it.
    const after = cursor !== undefined && isAfterCursor(c, cursor);
    if (best === undefined || (after && !bestAfter) || (after === bestAfter && cmp(c, best) < 0)) {
      best = c;
      bestAfter = after;
    }
  }
  return best?.id;
}

type Comparator = (a: Candidate, b: Candidate) => number;

function comparatorFor(strategy: Exclude<SequentialStrategy, 'random'>, conditions: TaskConditions | undefined): Comparator {
  switch (strategy) {
    case 'longest_idle':
      return byLongestIdle;
    case 'top_down':
    case 'round_robin':
      return byOrder;
    case 'fewest_calls':
      return (a, b) => a.answeredCalls - b.answeredCalls || byLongestIdle(a, b);
    case 'least_talk_time':
      return (a, b) => a.talkTimeMs - b.talkTimeMs || byLongestIdle(a, b);
    case 'skills':
      return (a, b) => skillScore(b, conditions) - skillScore(a, conditions) || byLongestIdle(a, b);
  }
}

function byId(a: Candidate, b: Candidate): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function byLongestIdle(a: Candidate, b: Candidate): number {
  return a.readySince - b.readySince || byId(a, b);
}

function byOrder(a: Candidate, b: Candidate): number {
  return a.order - b.order || byId(a, b);
}

function isAfterCursor(c: Candidate, cursor: RoundRobinCursor): boolean {
  return c.order > cursor.order || (c.order === cursor.order && c.id > cursor.id);
}

function skillLevel(c: Candidate, name: string): number | undefined {
  // Own properties only: a skill called `constructor` or `__proto__` must not read Object.prototype.
  return Object.prototype.hasOwnProperty.call(c.skills, name) ? c.skills[name] : undefined;
}

/** `floor(r * n)`, clamped into [0, n-1] so an RNG that returns exactly 1 (or a negative) cannot index past the ends. */
function drawIndex(random: () => number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.floor(random() * n)));
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = 0; i < items.length - 1; i++) {
    const j = i + drawIndex(random, items.length - i);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
