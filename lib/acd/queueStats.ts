/**
 * What `GET /callcenter/{cc}/queue/{q}` shows of a queue's traffic: the callers waiting (in
 * queue order, with position and wait) and the queue's counters with average wait and handle
 * time. Read-only; the counters are written by the task scripts (lib/store/acdScripts.ts).
 */
import type { Redis } from 'ioredis';
import type { CallCenterKeys } from '../store/keys';
import { pipelineReplies } from '../store/redis';

/** A caller waiting (or being offered) in a queue. */
export interface WaitingCaller {
  task: string;
  caller: string;
  position: number;
  priority: number;
  state: string;
  waitedMs: number;
}

/** A queue's counters since they were created. */
export interface QueueStats {
  entered: number;
  answered: number;
  abandoned: number;
  overflow: number;
  timeout: number;
  /** Tasks closed because the instance holding the caller stopped. */
  closed: number;
  waiting: number;
  longestWaitMs: number;
  avgWaitMs: number | null;
  avgHandleMs: number | null;
  /** The queue's service-level threshold (config `slaSeconds`). */
  slaSeconds: number;
  /** Callers answered within the threshold. */
  answeredInSla: number;
  /** Callers who hung up within the threshold (short abandons). */
  abandonedInSla: number;
  /**
   * Service level, 0..1: answered within the threshold ÷ (answered + abandoned after the
   * threshold); short abandons count neither way. Null before any such caller.
   */
  serviceLevel: number | null;
}

/** Most waiting callers listed in one response. */
export const MAX_CALLERS_LISTED = 100;

/** Waiting callers and counters of `queue`, whose service-level threshold is `slaSeconds`. */
export async function queueTraffic(redis: Redis, keys: CallCenterKeys, queue: string, slaSeconds: number): Promise<{ callers: WaitingCaller[]; stats: QueueStats }> {
  const [ids, total, raw, [sec, usec]] = await Promise.all([
    redis.zrange(keys.queueTasks(queue), 0, MAX_CALLERS_LISTED - 1),
    redis.zcard(keys.queueTasks(queue)),
    redis.hgetall(keys.queueStats(queue)),
    redis.time(),
  ]);
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(keys.task(id), 'caller', 'priority', 'state', 'enqueuedAt');
  const rows = ids.length > 0 ? await pipelineReplies(pipe) : [];
  const callers = waitingCallers(
    ids.map((id, i) => {
      const [caller, priority, state, enqueuedAt] = rows[i] as (string | null)[];
      return { id, caller, priority, state, enqueuedAt };
    }),
    now,
  );
  return { callers, stats: queueStatsOf(raw, total, callers, slaSeconds) };
}

/** Callers in queue order from their task fields (a task that ended between reads has no state and is left out). */
export function waitingCallers(rows: { id: string; caller?: string | null | undefined; priority?: string | null | undefined; state?: string | null | undefined; enqueuedAt?: string | null | undefined }[], now: number): WaitingCaller[] {
  const callers: WaitingCaller[] = [];
  rows.forEach((r, i) => {
    if (r.state === null || r.state === undefined) return;
    callers.push({ task: r.id, caller: r.caller ?? '', position: i + 1, priority: Number(r.priority ?? 0), state: r.state, waitedMs: Math.max(0, now - Number(r.enqueuedAt ?? now)) });
  });
  return callers;
}

/**
 * Service level from the counters: answered within the threshold ÷ (answered + abandoned
 * after it), or null when that is 0.
 */
export function serviceLevel(answered: number, answeredInSla: number, abandoned: number, abandonedInSla: number): number | null {
  const counted = answered + abandoned - abandonedInSla;
  return counted > 0 ? Math.min(1, answeredInSla / counted) : null;
}

/** A queue's statistics from its counters hash, how many wait, the callers listed and the queue's threshold. */
export function queueStatsOf(raw: Record<string, string>, total: number, callers: readonly WaitingCaller[], slaSeconds: number): QueueStats {
  const n = (k: string): number => Number(raw[k] ?? 0);
  return {
    entered: n('entered'),
    answered: n('answered'),
    abandoned: n('abandoned'),
    overflow: n('overflow'),
    timeout: n('timeout'),
    closed: n('closed'),
    waiting: total,
    longestWaitMs: callers.reduce((m, c) => Math.max(m, c.waitedMs), 0),
    avgWaitMs: n('answered') > 0 ? Math.round(n('waitMsTotal') / n('answered')) : null,
    avgHandleMs: n('handled') > 0 ? Math.round(n('handleMsTotal') / n('handled')) : null,
    slaSeconds,
    answeredInSla: n('answeredInSla'),
    abandonedInSla: n('abandonedInSla'),
    serviceLevel: serviceLevel(n('answered'), n('answeredInSla'), n('abandoned'), n('abandonedInSla')),
  };
}
