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
}

/** Most waiting callers listed in one response. */
export const MAX_CALLERS_LISTED = 100;

/** Waiting callers and counters of `queue`. */
export async function queueTraffic(redis: Redis, keys: CallCenterKeys, queue: string): Promise<{ callers: WaitingCaller[]; stats: QueueStats }> {
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
  const callers: WaitingCaller[] = [];
  rows.forEach((v, i) => {
    const [caller, priority, state, enqueuedAt] = v as (string | null)[];
    if (state === null) return; // ended between the two reads
    callers.push({ task: ids[i]!, caller: caller ?? '', position: i + 1, priority: Number(priority ?? 0), state: state ?? '', waitedMs: Math.max(0, now - Number(enqueuedAt ?? now)) });
  });
  const n = (k: string): number => Number(raw[k] ?? 0);
  const stats: QueueStats = {
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
  };
  return { callers, stats };
}
