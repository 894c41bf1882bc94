/**
 * Queue tasks and agent reservations in Redis (DESIGN.md section 6): a thin typed layer over
 * the scripts in lib/store/acdScripts.ts. Every method is one script call (or a read).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import { TaskStateError } from '../errors';
import { keysCache, maxWaitMember, type CallCenterKeys } from '../store/keys';
import type { TaskConditions } from './strategies';
import { pipelineReplies } from '../store/redis';

/** A task as enqueued. */
export interface NewTask {
  id: string;
  queue: string;
  priority: number;
  callId: string;
  caller: string;
  /** Incarnation of the process that holds the caller's call. */
  owner: string;
  conditions?: TaskConditions | undefined;
  maxWaitMs: number;
  /** When the caller started waiting (Redis ms), if before now: a transferred caller keeps its wait. */
  waitingSince?: number | undefined;
}

/** A task as stored. */
export interface TaskView {
  id: string;
  queue: string;
  priority: number;
  callId: string;
  caller: string;
  owner: string;
  conditions: TaskConditions | undefined;
  state: 'waiting' | 'offering' | 'answered' | 'ended';
  enqueuedAt: number;
  answeredAt?: number;
  agent?: string;
  endReason?: string;
  /** The max-wait deadline fired; the owner overflows or ends the task. */
  maxWaitReached: boolean;
}

/** A lease on an agent for one task: present `value` to answer or release it. */
export interface Reservation {
  agent: string;
  token: string;
  /** `<token>|<task>|<queue>`: the fencing value every later write for this offer presents. */
  value: string;
}

/** Why a task ended without (or after) an answer. */
export type TaskEndReason = 'abandoned' | 'overflow' | 'timeout' | 'rejected' | 'closed' | 'completed';

/** Reservation failure reasons. */
export type ReserveRefusal = 'task_not_waiting' | 'not_first' | 'no_agent';

/** Service-level threshold of a queue without configuration (config `slaSeconds`' default). */
const DEFAULT_SLA_SECONDS = 20;

/** How long an ended task stays readable. */
const ENDED_KEEP_MS = 3_600_000;

/** How long a claimed reservation is kept while the call is connected (then it lapses by itself). */
export const CONNECT_HOLD_MS = 30_000;

/** Most candidates one RESERVE call looks at (each is 3 keys). */
export const MAX_CANDIDATES = 50;

/** Typed access to tasks and reservations of every call center. */
export class TaskStore {
  /** Key names of call center `cc`. */
  readonly keys: (cc: string) => CallCenterKeys;

  constructor(private readonly deps: { redis: Redis; config: Config }) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  /** The queue's service-level threshold in ms (the default 20 s for a queue not configured). */
  private slaMs(cc: string, queue: string): number {
    const q = this.deps.config.callcenters[cc]?.queues[queue];
    return Math.round((q?.slaSeconds ?? DEFAULT_SLA_SECONDS) * 1000);
  }

  /** Creates a waiting task; returns its position (1 = next) and enqueue time. */
  async enqueue(cc: string, t: NewTask): Promise<{ position: number; enqueuedAt: number; seq: number }> {
    const k = this.keys(cc);
    const conditions = t.conditions === undefined || (t.conditions.agents === undefined && t.conditions.skills === undefined) ? '' : JSON.stringify(t.conditions);
    const [position, enqueuedAt, seq] = await this.deps.redis.ccsTaskEnqueue(
      9,
      k.queueTasks(t.queue), k.task(t.id), k.events, k.eventSeq, k.deadlines, k.queueStats(t.queue), k.queueHead(t.queue), k.queueArrivals(t.queue), k.queueHistory(t.queue),
      t.id, t.queue, t.priority, t.callId, t.caller, t.owner, conditions, t.maxWaitMs, this.deps.config.streams.eventsMaxLen, maxWaitMember(t.queue, t.id), t.waitingSince ?? '',
    );
    return { position: Number(position), enqueuedAt: Number(enqueuedAt), seq: Number(seq) };
  }

  /**
   * Leases up to `count` of `candidates` (in that order) that are still Ready in the queue,
   * unreserved and registered, for `ms`.
   */
  async reserve(cc: string, taskId: string, queue: string, candidates: string[], count: number, ms: number): Promise<Reservation[] | ReserveRefusal> {
    const k = this.keys(cc);
    const list = candidates.slice(0, MAX_CANDIDATES);
    const keys = [k.task(taskId), k.reservationToken, k.queueHead(queue), k.queueTasks(queue), k.queueStats(queue), k.events, k.eventSeq];
    for (const a of list) keys.push(k.agent(a), k.reservation(a), k.registrations(a));
    const reply = await this.deps.redis.ccsReserve(keys.length, ...keys, taskId, queue, ms, count, this.deps.config.streams.eventsMaxLen, ...list);
    if (reply[0] !== 1) return String(reply[1]) as ReserveRefusal;
    const out: Reservation[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) {
      const token = String(reply[i + 1]);
      out.push({ agent: String(reply[i]), token, value: `${token}|${taskId}|${queue}` });
    }
    return out;
  }

  /** Extends a lease still held (false: it lapsed or was taken). */
  async renew(cc: string, r: Reservation, ms: number): Promise<boolean> {
    return (await this.deps.redis.ccsReservationRenew(this.keys(cc).reservation(r.agent), r.value, ms)) === 1;
  }

  /** Ends a lease still held (false: it had lapsed already). */
  async release(cc: string, r: Reservation): Promise<boolean> {
    return (await this.deps.redis.ccsReservationRelease(this.keys(cc).reservation(r.agent), r.value)) === 1;
  }

  /** The offer round failed: the task waits again in its old place. */
  async requeue(cc: string, taskId: string, queue: string): Promise<boolean> {
    const k = this.keys(cc);
    return (await this.deps.redis.ccsTaskRequeue(k.task(taskId), k.queueTasks(queue), k.queueHead(queue), taskId)) === 1;
  }

  /**
   * The reserved agent answered. Succeeds only with the reservation still held (fencing):
   * otherwise the lease lapsed (the agent may be offered elsewhere) and the answer must be
   * released. On success the lease is kept for {@link CONNECT_HOLD_MS}: release it once the
   * agent is on the call (Queue Call), so no other task can reserve the agent in between.
   */
  async claimAnswer(cc: string, taskId: string, queue: string, r: Reservation): Promise<{ ok: true; waitedMs: number; seq: number } | { ok: false; why: 'stale_reservation' | 'task_gone' }> {
    const k = this.keys(cc);
    const reply = await this.deps.redis.ccsAnswerClaim(
      12,
      k.reservation(r.agent), k.task(taskId), k.queueTasks(queue), k.events, k.eventSeq, k.deadlines, k.deadlineClaims, k.queueStats(queue), k.agentQueueStats(r.agent, queue), k.agent(r.agent), k.queueReady(queue),
      k.queueHistory(queue),
      r.value, taskId, r.agent, this.deps.config.streams.eventsMaxLen, maxWaitMember(queue, taskId), CONNECT_HOLD_MS, this.slaMs(cc, queue),
    );
    if (reply[0] !== 1) return { ok: false, why: String(reply[1]) as 'stale_reservation' | 'task_gone' };
    return { ok: true, waitedMs: Number(reply[1]), seq: Number(reply[2]) };
  }

  /**
   * forward_agent: the task waits again with new conditions, in its old place and with its
   * priority unless `priority` is given (queue.caller `forwarded`). False if it was neither
   * offering nor waiting.
   */
  async retarget(cc: string, taskId: string, queue: string, o: { conditions?: TaskConditions | undefined; priority?: number | undefined; agent: string }): Promise<{ position: number } | false> {
    const k = this.keys(cc);
    const conditions = o.conditions === undefined || (o.conditions.agents === undefined && o.conditions.skills === undefined) ? '' : JSON.stringify(o.conditions);
    const reply = await this.deps.redis.ccsTaskRetarget(k.task(taskId), k.queueTasks(queue), k.queueHead(queue), k.events, k.eventSeq, taskId, conditions, o.priority ?? '', this.deps.config.streams.eventsMaxLen, o.agent);
    return reply[0] === 1 ? { position: Number(reply[1]) } : false;
  }

  /**
   * A call business hours sent elsewhere (issue "trunk routing"): the `queue.caller` event
   * (reason `out_of_hours`, with the schedule, its local time and the action taken) and, for a
   * queue, its `outOfHours` counter.
   */
  async outOfHours(cc: string, e: { queue?: string | undefined; caller: string; number?: string | undefined; schedule: string; local: string; holiday?: string | undefined; action: string }): Promise<number> {
    const k = this.keys(cc);
    const data = Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined));
    return Number(await this.deps.redis.ccsQueueOutOfHours(k.events, k.eventSeq, e.queue === undefined ? k.events : k.queueStats(e.queue), this.deps.config.streams.eventsMaxLen, JSON.stringify(data), e.queue === undefined ? '0' : '1'));
  }

  /**
   * Ends a task (idempotent: false when it had ended already). `data` (a reject's data for the
   * IVR) is carried in the queue.caller event.
   */
  async end(cc: string, taskId: string, queue: string, reason: TaskEndReason, agent?: string, data?: string): Promise<boolean> {
    const k = this.keys(cc);
    const agentStats = agent === undefined ? k.queueStats(queue) : k.agentQueueStats(agent, queue);
    const reply = await this.deps.redis.ccsTaskEnd(
      11,
      k.task(taskId), k.queueTasks(queue), k.events, k.eventSeq, k.deadlines, k.deadlineClaims, k.queueStats(queue), agentStats, k.queueHead(queue),
      agent === undefined ? k.queueStats(queue) : k.agent(agent), k.queueReady(queue),
      taskId, reason, this.deps.config.streams.eventsMaxLen, maxWaitMember(queue, taskId), ENDED_KEEP_MS, data ?? '', agent === undefined ? '0' : '1', this.slaMs(cc, queue),
    );
    return reply[0] === 1;
  }

  /** One task, or undefined. */
  async get(cc: string, taskId: string): Promise<TaskView | undefined> {
    const h = await this.deps.redis.hgetall(this.keys(cc).task(taskId));
    if (h.id === undefined) return undefined;
    const v: TaskView = {
      id: h.id,
      queue: h.queue ?? '',
      priority: Number(h.priority),
      callId: h.callId ?? '',
      caller: h.caller ?? '',
      owner: h.owner ?? '',
      conditions: h.conditions ? (JSON.parse(h.conditions) as TaskConditions) : undefined,
      state: (h.state ?? 'ended') as TaskView['state'],
      enqueuedAt: Number(h.enqueuedAt),
      maxWaitReached: h.maxWait === '1',
    };
    if (h.answeredAt) v.answeredAt = Number(h.answeredAt);
    if (h.agent) v.agent = h.agent;
    if (h.endReason) v.endReason = h.endReason;
    return v;
  }

  /** Max-wait deadline handler: flags the task for its owner (false if it was answered or ended). */
  async flagMaxWait(cc: string, taskId: string): Promise<boolean> {
    return (await this.deps.redis.ccsTaskFlagMaxWait(this.keys(cc).task(taskId))) === 1;
  }

  /** Counts a consecutive no-answer of an agent in a queue (an answer resets it); returns the new count. */
  async noAnswer(cc: string, agent: string, queue: string): Promise<number> {
    return this.deps.redis.hincrby(this.keys(cc).agentQueueStats(agent, queue), 'noAnswer', 1);
  }

  /** The task's place among the callers waiting in `queue` (1 = next), or null once it is no longer waiting. */
  async position(cc: string, taskId: string, queue: string): Promise<number | null> {
    const k = this.keys(cc);
    const [state, rank] = await pipelineReplies(this.deps.redis.pipeline().hget(k.task(taskId), 'state').zrank(k.queueTasks(queue), taskId));
    return state === 'waiting' && typeof rank === 'number' ? rank + 1 : null;
  }

  /**
   * The task `taskId` if it is being offered to `agent` right now (its phone rings for it: the
   * agent holds a lease for that task). Throws TaskStateError `task_answered` when it was
   * answered, `task_not_offered` otherwise (unknown, ended, waiting, or offered to others).
   */
  async offeredTo(cc: string, taskId: string, agent: string): Promise<TaskView> {
    const [task, lease] = await Promise.all([this.get(cc, taskId), this.reservationOf(cc, agent)]);
    if (task?.state === 'answered') throw new TaskStateError('task_answered', agent, taskId);
    if (task === undefined || task.state !== 'offering' || lease?.split('|')[1] !== taskId) throw new TaskStateError('task_not_offered', agent, taskId);
    return task;
  }

  /** The agent's current reservation value, if any. */
  async reservationOf(cc: string, agent: string): Promise<string | null> {
    return this.deps.redis.get(this.keys(cc).reservation(agent));
  }
}
