/**
 * `queue.stats` events (DESIGN.md section 7): every `timers.queueStatsMs` one instance (the
 * one that claims the queue's `qstats|<queue>` deadline) reads the queue's figures and
 * publishes them if they changed since the last publication. A Redis deadline rather than a
 * local interval, so with several instances a queue is published once per period, and it
 * goes on when the publishing instance stops.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig, Config } from '../config/schema';
import { queueViews, type StateCounts } from '../agent/queries';
import { keysCache, queueStatsMember, type CallCenterKeys } from '../store/keys';
import { queueTraffic, type QueueStats } from './queueStats';
import { pipelineReplies } from '../store/redis';
import { HISTORY_KEEP_MINUTES } from './queueHistory';

/** Payload of a `queue.stats` event. */
export interface QueueStatsEvent extends QueueStats {
  queue: string;
  /** Members of the queue in each agent state. */
  agents: StateCounts;
}

/** The figures of one queue, as published. */
export async function queueStatsSnapshot(redis: Redis, keys: CallCenterKeys, cc: CallCenterConfig, queue: string): Promise<QueueStatsEvent> {
  const [{ stats }, views] = await Promise.all([queueTraffic(redis, keys, queue, cc.queues[queue]!.slaSeconds), queueViews(redis, keys, cc, [queue])]);
  return { queue, ...stats, agents: views.get(queue)!.counts };
}

/** Publishes queue.stats events from the `qstats` deadlines. */
export class QueueStatsPublisher {
  private readonly keys: (cc: string) => CallCenterKeys;

  constructor(private readonly deps: { redis: Redis; config: Config }) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  /**
   * Makes sure every configured queue has its deadline (NX: an existing one, possibly set
   * by another instance, is kept). Score 0 means due at once, so no clock is involved.
   */
  async seed(): Promise<void> {
    const pipe = this.deps.redis.pipeline();
    for (const cc of Object.values(this.deps.config.callcenters)) {
      for (const q of Object.keys(cc.queues)) pipe.zadd(this.keys(cc.id).deadlines, 'NX', 0, queueStatsMember(q));
    }
    await pipelineReplies(pipe);
  }

  /** Deadline handler for `qstats|<queue>`; returns the event's sequence number (0: unchanged or not ours). */
  readonly onDeadline = async (ccId: string, [queue = '']: string[], token: string): Promise<number> => {
    const { redis, config } = this.deps;
    const cc = config.callcenters[ccId];
    if (cc === undefined || !Object.hasOwn(cc.queues, queue)) {
      // The queue left the configuration: let the worker drop the deadline.
      return 0;
    }
    const k = this.keys(ccId);
    // The per-minute history (GET queue/{q}/history) gets this period's waiting callers.
    await redis.ccsQueueHistorySample(k.queueHistory(queue), k.queueTasks(queue), HISTORY_KEEP_MINUTES);
    const snapshot = await queueStatsSnapshot(redis, k, cc, queue);
    const reply = await redis.ccsQueueStatsPublish(
      k.events, k.eventSeq, k.deadlines, k.deadlineClaims, k.queueStatsLast(queue),
      queueStatsMember(queue), token, config.timers.queueStatsMs, JSON.stringify(snapshot), config.streams.eventsMaxLen,
    );
    return reply[0] === 1 ? Number(reply[1]) : 0;
  };
}
