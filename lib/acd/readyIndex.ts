/**
 * Per-queue indexes of the Ready agents, one per selection order a strategy or a task's
 * conditions need (issue "every strategy scales"): the Ready ZSET alone orders by idle time,
 * so fewest_calls, least_talk_time and skill conditions used to read every Ready member.
 *
 * Each index is a ZSET next to the queue's Ready ZSET (`<ready>:calls`, `<ready>:talk`,
 * `<ready>:skill:<name>`), holding exactly the Ready agents it applies to. Its member is
 * `<readySince, zero-padded to 15 digits>|<agent>`, so among equal scores Redis orders
 * members by idle time and then by id: the reference model's tie-breaks (lib/acd/strategies.ts),
 * and the head of an index is the head of the strategy's plan. Scores: answered calls, talk ms,
 * and minus the skill level (ascending = highest level first).
 *
 * The indexes are written by the same scripts that change what they index (the agent's
 * Ready state, its calls and talk counters), never in a second round trip: AGENT_APPLY adds
 * and removes the agent with the Ready ZSET, ANSWER_CLAIM and TASK_END move its score. Which
 * indexes an agent is in is decided when it goes Ready (its queue's strategy, its skills in
 * the config) and recorded in the agent hash (`q:<queue>:idx` = `<member> <spec>`), so leaving
 * Ready removes exactly what was added even if the config changed in between.
 */
import type { CallCenterConfig, Strategy } from '../config/schema';

/** Digits of the zero-padded idle-since time in an index member (ms until the year 33658). */
export const READY_MEMBER_DIGITS = 15;

/** An index member: `<readySince, 15 digits>|<agent>`. */
export function readyMember(readySince: number, agent: string): string {
  return `${String(Math.trunc(readySince)).padStart(READY_MEMBER_DIGITS, '0')}|${agent}`;
}

/** The idle-since time and agent id of an index member, or undefined for a malformed one. */
export function parseReadyMember(member: string): { readySince: number; id: string } | undefined {
  const bar = member.indexOf('|');
  if (bar !== READY_MEMBER_DIGITS) return undefined;
  const readySince = Number(member.slice(0, bar));
  const id = member.slice(bar + 1);
  return Number.isFinite(readySince) && id !== '' ? { readySince, id } : undefined;
}

/**
 * Which indexes an agent joins when it goes Ready in a queue, as the space-separated spec the
 * scripts read: `calls` for fewest_calls, `talk` for least_talk_time, `skill:<name>:<level>`
 * for each skill it has there (any strategy: a task's skill conditions filter every one).
 * Empty for a plain queue, which then costs nothing extra.
 */
export function readyIndexSpec(strategy: Strategy, skills: Readonly<Record<string, number>> | undefined): string {
  const tokens: string[] = [];
  if (strategy === 'fewest_calls') tokens.push('calls');
  if (strategy === 'least_talk_time') tokens.push('talk');
  for (const [name, level] of Object.entries(skills ?? {})) tokens.push(`skill:${name}:${level}`);
  return tokens.join(' ');
}

/** {@link readyIndexSpec} of `agent` in `queue` as call center `cc` configures them ('' when either is unknown). */
export function agentIndexSpec(cc: CallCenterConfig, agent: string, queue: string): string {
  const membership = cc.agents[agent]?.queues[queue];
  return membership === undefined ? '' : readyIndexSpec(cc.queues[queue]?.strategy ?? 'longest_idle', membership.skills);
}

/** The index a strategy orders by, when it has one of its own. */
export function strategyIndex(strategy: Strategy): 'calls' | 'talk' | undefined {
  return strategy === 'fewest_calls' ? 'calls' : strategy === 'least_talk_time' ? 'talk' : undefined;
}
