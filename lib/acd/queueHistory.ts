/**
 * A queue's last hour, minute by minute, for the wallboard's chart (`GET
 * /callcenter/{cc}/queue/{q}/history`): the callers answered in each minute (counted by the
 * answer script itself) and the most callers seen waiting in it (sampled at every arrival
 * and every `queue.stats` period). Minutes are Redis-clock minutes (ms / 60000).
 */
import type { Redis } from 'ioredis';
import type { CallCenterKeys } from '../store/keys';

/** Minutes of history kept in Redis (twice what is served, so an hour is always whole). */
export const HISTORY_KEEP_MINUTES = 120;

/** Minutes served by {@link queueHistory} by default. */
export const HISTORY_MINUTES = 60;

/** One minute of a queue's history. */
export interface HistoryMinute {
  /** Start of the minute (ms since epoch, Redis clock). */
  minute: number;
  /** Callers answered in the minute. */
  answered: number;
  /** Most callers waiting at once in the minute; null when no instance looked (none was running). */
  waiting: number | null;
}

/** The queue's history: `minutes` minutes, oldest first, the current (unfinished) one last. */
export async function queueHistory(redis: Redis, keys: CallCenterKeys, queue: string, minutes = HISTORY_MINUTES): Promise<{ now: number; minutes: HistoryMinute[] }> {
  const [raw, [sec, usec]] = await Promise.all([redis.hgetall(keys.queueHistory(queue)), redis.time()]);
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  return { now, minutes: historyOf(raw, now, minutes) };
}

/** The minutes up to the one holding `now`, from the history hash's fields. */
export function historyOf(raw: Record<string, string>, now: number, minutes: number): HistoryMinute[] {
  const current = Math.floor(now / 60000);
  const out: HistoryMinute[] = [];
  for (let m = current - minutes + 1; m <= current; m++) {
    const w = raw[`w:${m}`];
    out.push({ minute: m * 60000, answered: Number(raw[`a:${m}`] ?? 0), waiting: w === undefined ? null : Number(w) });
  }
  return out;
}
