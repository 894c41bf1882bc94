/**
 * Snapshots of event-stream topics (DESIGN.md section 7), each stamped with the event sequence
 * number it is consistent with: the state as of that event, so a subscriber applies exactly the
 * events after it. All topics of one subscribe are read by one script call
 * (lib/store/snapshotScripts.ts), so they share one sequence number.
 *
 * - `queue:<q>`: the callers waiting (position, caller, wait, priority), the members with their
 *   state in the queue and their call, and the queue's statistics (what PortSIP's `queue_status`
 *   carries and `GET queue` shows);
 * - `agent:<id>`: its state per queue, its reservation and its conversations (as `GET agent`);
 * - `conversation:<id>`: the conversation record (`GET conversation`);
 * - `callcenter`: every queue and every agent.
 */
import type { Redis } from 'ioredis';
import { queueStatsOf, waitingCallers, type QueueStats, type WaitingCaller } from '../acd/queueStats';
import { viewOf, type QueueStateView } from '../agent/queries';
import type { CallCenterConfig, Config } from '../config/schema';
import { agentConversationViews, type AgentConversationView, type ConversationRecord } from '../conversation/model';
import { conversationRecord, parseLeg } from '../conversation/store';
import { keysCache, type CallCenterKeys } from '../store/keys';
import type { Topic } from './topics';

/** Most waiting callers a queue snapshot lists. */
export const SNAPSHOT_MAX_CALLERS = 100;

/** A queue as a subscriber first sees it. */
export interface QueueSnapshot {
  queue: string;
  name: string;
  callers: WaitingCaller[];
  members: { agent: string; state: QueueStateView['state']; reason: number | null; since: number | null; callId: string | null }[];
  stats: QueueStats;
}

/** An agent as a subscriber first sees it. */
export interface AgentSnapshot {
  agent: string;
  queues: QueueStateView[];
  reservation: { task: string; queue: string; token: number } | null;
  conversations: AgentConversationView[];
}

/** The call center as a subscriber of `callcenter` first sees it. */
export interface CallCenterSnapshot {
  queues: QueueSnapshot[];
  agents: AgentSnapshot[];
}

/** What one topic's snapshot holds. */
export type TopicSnapshot = QueueSnapshot | AgentSnapshot | CallCenterSnapshot | { conversation: ConversationRecord | null };

interface RawAgent {
  hash: Record<string, string> | unknown[];
  wrap: Record<string, string> | unknown[];
  resv: string;
  convs: { id: string; state: string; legs: string[] | Record<string, never> }[] | Record<string, never>;
}
interface RawSnapshot {
  seq: number;
  now: number;
  queues: Record<string, { total: number; tasks: string[][] | Record<string, never>; stats: Record<string, string> | unknown[] }>;
  agents: Record<string, RawAgent> | unknown[];
  convs: Record<string, { hash: Record<string, string> | unknown[]; legs: string[] | Record<string, never> }> | unknown[];
}

/** Lua's cjson writes an empty table as `{}`: an empty list where a list is meant. */
const list = <T>(v: T[] | Record<string, never>): T[] => (Array.isArray(v) ? v : []);
/** ... and as `[]` where a map is meant. */
const map = <T>(v: Record<string, T> | unknown[]): Record<string, T> => (Array.isArray(v) ? {} : v);

/** Builds topic snapshots. */
export class Snapshots {
  private readonly keys: (cc: string) => CallCenterKeys;

  constructor(private readonly deps: { redis: Redis; config: Config }) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  /**
   * Snapshots of `topics` of call center `cc`, all consistent with the returned sequence
   * number, and the Redis time they were read at (`now`, the clock of every `since` and `ts`).
   */
  async take(cc: CallCenterConfig, topics: readonly Topic[]): Promise<{ seq: number; now: number; snapshots: TopicSnapshot[] }> {
    const k = this.keys(cc.id);
    const queues = new Set<string>();
    const agents = new Set<string>();
    const convs = new Set<string>();
    for (const t of topics) {
      if (t.kind === 'queue') {
        queues.add(t.id);
        for (const [a, ac] of Object.entries(cc.agents)) if (Object.hasOwn(ac.queues, t.id)) agents.add(a);
      } else if (t.kind === 'agent') agents.add(t.id);
      else if (t.kind === 'conversation') convs.add(t.id);
      else {
        for (const q of Object.keys(cc.queues)) queues.add(q);
        for (const a of Object.keys(cc.agents)) agents.add(a);
      }
    }
    const keyList = [k.eventSeq, k.deadlines];
    for (const q of queues) keyList.push(k.queueTasks(q), k.queueStats(q));
    for (const a of agents) keyList.push(k.agent(a), k.reservation(a), k.agentConvs(a));
    for (const c of convs) keyList.push(k.conv(c), k.convLegs(c));
    const taskPrefix = k.task('x').slice(0, -1);
    const convPrefix = k.conv('x').slice(0, -1);
    const json = await this.deps.redis.ccsSnapshot(
      keyList.length,
      ...keyList,
      taskPrefix,
      convPrefix,
      queues.size,
      agents.size,
      convs.size,
      SNAPSHOT_MAX_CALLERS,
      ...queues,
      ...[...agents].map((a) => `${a}|${Object.keys(cc.agents[a]!.queues).join(',')}`),
      ...convs,
    );
    const raw = JSON.parse(json) as RawSnapshot;
    const agentView = (id: string): AgentSnapshot => this.agentOf(cc, id, map(raw.agents)[id]);
    const queueView = (q: string): QueueSnapshot => {
      const r = raw.queues[q]!;
      const callers = waitingCallers(
        list(r.tasks).map(([id = '', caller, priority, state, enqueuedAt]) => ({ id, caller, priority, state, enqueuedAt })),
        raw.now,
      );
      const members = Object.keys(cc.agents)
        .filter((a) => Object.hasOwn(cc.agents[a]!.queues, q))
        .map((a) => {
          const v = agentView(a).queues.find((x) => x.queue === q)!;
          return { agent: a, state: v.state, reason: v.reason, since: v.since, callId: v.callId };
        });
      return { queue: q, name: cc.queues[q]!.name, callers, members, stats: queueStatsOf(map(r.stats), r.total, callers, cc.queues[q]!.slaSeconds) };
    };
    const snapshots = topics.map((t): TopicSnapshot => {
      switch (t.kind) {
        case 'queue':
          return queueView(t.id);
        case 'agent':
          return agentView(t.id);
        case 'conversation': {
          const c = map(raw.convs)[t.id];
          return { conversation: c === undefined ? null : (conversationRecord(cc.id, map(c.hash), list(c.legs)) ?? null) };
        }
        case 'callcenter':
          return { queues: Object.keys(cc.queues).map(queueView), agents: Object.keys(cc.agents).map(agentView) };
      }
    });
    return { seq: raw.seq, now: raw.now, snapshots };
  }

  private agentOf(cc: CallCenterConfig, id: string, r: RawAgent | undefined): AgentSnapshot {
    const hash = map(r?.hash ?? {});
    const wrap = map(r?.wrap ?? {});
    const queues = Object.keys(cc.agents[id]!.queues).map((q) => viewOf(q, hash, (wrap)[q] ?? null));
    const [token, task, queue] = (r?.resv ?? '').split('|');
    const conversations = agentConversationViews(
      id,
      list(r?.convs ?? []).map((c) => ({ id: c.id, state: c.state, legs: list(c.legs).map(parseLeg) })),
    );
    return {
      agent: id,
      queues,
      reservation: task !== undefined && queue !== undefined && token !== undefined && token !== '' ? { task, queue, token: Number(token) } : null,
      conversations,
    };
  }
}
