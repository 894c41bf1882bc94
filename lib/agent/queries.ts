/**
 * Read-side views for the REST API: agents, queues and the operation log. Reads are plain
 * pipelined commands (no read-then-write), so any instance can serve them.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig } from '../config/schema';
import { parseOplog } from '../events';
import type { OplogEntry } from '../oplog';
import { agentField, wrapUpMember, type CallCenterKeys } from '../store/keys';
import { AgentState, isAgentState } from './stateMachine';
import { pipelineReplies } from '../store/redis';

/** An agent's state in one queue, as stored. */
export interface QueueStateView {
  queue: string;
  state: AgentState;
  /** Not-ready / sign-out reason code of the current state, if any. */
  reason: number | null;
  /** When the current state was entered (ms since epoch, Redis clock); null if never. */
  since: number | null;
  /** State to return to after the current other call. */
  remembered: AgentState | null;
  /** Call that holds the agent in queue_call / other_call. */
  callId: string | null;
  /** When the running wrap-up ends (ms), if one runs. */
  wrapUpEndsAt: number | null;
}

function num(v: string | undefined): number | null {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/** Builds a queue view from the agent hash fields. */
export function viewOf(q: string, hash: Record<string, string>, wrapUpDue: string | null): QueueStateView {
  const st = hash[agentField.state(q)];
  const state = isAgentState(st) ? st : AgentState.LoggedOut;
  const prev = hash[agentField.prev(q)];
  return {
    queue: q,
    state,
    reason: num(hash[agentField.reason(q)]),
    since: num(hash[agentField.since(q)]),
    remembered: state === AgentState.OtherCall && isAgentState(prev) ? prev : null,
    callId: hash[agentField.call(q)] || null,
    wrapUpEndsAt: (state === AgentState.WrapUp || (state === AgentState.OtherCall && prev === AgentState.WrapUp)) && wrapUpDue !== null ? Number(wrapUpDue) : null,
  };
}

/** States of many agents, in one round trip. */
export async function agentStates(redis: Redis, keys: CallCenterKeys, cc: CallCenterConfig, agentIds: string[]): Promise<Map<string, QueueStateView[]>> {
  const pipe = redis.pipeline();
  for (const id of agentIds) {
    pipe.hgetall(keys.agent(id));
    for (const q of Object.keys(cc.agents[id]!.queues)) pipe.zscore(keys.deadlines, wrapUpMember(id, q));
  }
  const out = await pipelineReplies(pipe);
  const result = new Map<string, QueueStateView[]>();
  let i = 0;
  for (const id of agentIds) {
    const hash = (out[i++] ?? {}) as Record<string, string>;
    result.set(
      id,
      Object.keys(cc.agents[id]!.queues).map((q) => viewOf(q, hash, out[i++] as string | null)),
    );
  }
  return result;
}

/** Number of agents in each state, every state present. */
export type StateCounts = Record<AgentState, number>;

/** Zeroed counts. */
export function emptyCounts(): StateCounts {
  return Object.fromEntries(Object.values(AgentState).map((s) => [s, 0])) as StateCounts;
}

/** A queue's members and their state in it. */
export interface QueueMembersView {
  counts: StateCounts;
  members: { agent: string; state: AgentState; reason: number | null; since: number | null }[];
  waiting: number;
}

/** Members' states and waiting count of each queue of a call center. */
export async function queueViews(redis: Redis, keys: CallCenterKeys, cc: CallCenterConfig, queueIds: string[]): Promise<Map<string, QueueMembersView>> {
  const memberIds = Object.keys(cc.agents).filter((a) => queueIds.some((q) => Object.hasOwn(cc.agents[a]!.queues, q)));
  const [states, waiting] = await Promise.all([
    agentStates(redis, keys, cc, memberIds),
    Promise.all(queueIds.map((q) => redis.zcard(keys.queueTasks(q)))),
  ]);
  const out = new Map<string, QueueMembersView>();
  queueIds.forEach((q, i) => {
    const view: QueueMembersView = { counts: emptyCounts(), members: [], waiting: waiting[i] ?? 0 };
    for (const a of memberIds) {
      const v = states.get(a)!.find((s) => s.queue === q);
      if (v === undefined) continue;
      view.counts[v.state] += 1;
      view.members.push({ agent: a, state: v.state, reason: v.reason, since: v.since });
    }
    out.set(q, view);
  });
  return out;
}

/** Options of {@link readOplog}. */
export interface OplogQuery {
  agent?: string | undefined;
  /** Only entries of these agents (a token's scope). */
  agents?: ReadonlySet<string> | undefined;
  /** Entries after this sequence number, oldest first; omitted: the latest entries. */
  since?: number | undefined;
  limit: number;
}

/** A page of the operation log and the cursor to continue from. */
export interface OplogPage {
  entries: OplogEntry[];
  /** Pass as `since` to continue; the last sequence number examined. */
  next: number | null;
}

/** Most stream entries examined for one filtered page, so a rare agent cannot make a request scan the whole log. */
const SCAN_CAP = 20000;
const CHUNK = 1000;

/** Whether an entry passes the query's agent filters. */
function wanted(q: OplogQuery, entry: OplogEntry): boolean {
  return (q.agent === undefined || entry.agent === q.agent) && (q.agents === undefined || q.agents.has(entry.agent));
}

/** Reads the operation log, optionally filtered by agent, with a bounded scan. */
export async function readOplog(redis: Redis, oplogKey: string, q: OplogQuery): Promise<OplogPage> {
  const entries: OplogEntry[] = [];
  let scanned = 0;
  if (q.since === undefined) {
    // Latest entries: walk backwards, then return them oldest first.
    let end = '+';
    while (entries.length < q.limit && scanned < SCAN_CAP) {
      const chunk = (await redis.xrevrange(oplogKey, end, '-', 'COUNT', CHUNK)) as [string, string[]][];
      if (chunk.length === 0) break;
      scanned += chunk.length;
      for (const e of chunk) {
        const entry = parseOplog(e);
        if (wanted(q, entry)) entries.push(entry);
        if (entries.length >= q.limit) break;
      }
      end = `(${chunk[chunk.length - 1]![0]}`;
      if (chunk.length < CHUNK) break;
    }
    entries.reverse();
    return { entries, next: entries.length > 0 ? entries[entries.length - 1]!.seq : null };
  }
  let start = `(${q.since}-0`;
  let last: number | null = null;
  while (entries.length < q.limit && scanned < SCAN_CAP) {
    const chunk = (await redis.xrange(oplogKey, start, '+', 'COUNT', CHUNK)) as [string, string[]][];
    if (chunk.length === 0) break;
    for (const e of chunk) {
      scanned += 1;
      const entry = parseOplog(e);
      last = entry.seq;
      if (wanted(q, entry)) entries.push(entry);
      if (entries.length >= q.limit) break;
    }
    start = `(${last}-0`;
    if (chunk.length < CHUNK) break;
  }
  return { entries, next: last ?? q.since };
}
