/**
 * Processes the deadline ZSET of every call center (DESIGN.md section 6). Any running
 * instance may claim a due deadline; a claim is a lease with a fencing token, so if the
 * claimer dies the deadline becomes due again after `claimLeaseMs` and another instance
 * takes it. Timers therefore survive restarts and the loss of the instance that set them.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import type { Logger } from '../logger';
import { CcsError } from '../errors';
import { callCenterKeys, type CallCenterKeys } from '../store/keys';

/** Handles one claimed deadline. `args` are the member's fields after the kind. */
export type DeadlineHandler = (cc: string, args: string[], token: string) => Promise<void>;

/** Dependencies of {@link DeadlineWorker}. */
export interface DeadlineWorkerDeps {
  redis: Redis;
  config: Config;
  logger: Logger;
  /** Handlers by member kind (`wrapup|agent|queue` has kind `wrapup`). */
  handlers: Record<string, DeadlineHandler>;
  /** Called after each fired deadline, for metrics. */
  onFired?: (kind: string, outcome: 'ok' | 'error' | 'unknown') => void;
}

const BATCH = 100;

/** Polls, claims and dispatches deadlines until stopped. */
export class DeadlineWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(private readonly deps: DeadlineWorkerDeps) {}

  /** Starts polling. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops polling and waits for the tick in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((err: unknown) => {
          // Redis down or a script error: keep polling; the deadlines stay in Redis.
          this.deps.logger.warn({ err }, 'deadline poll failed');
          return this.deps.config.timers.pollMs;
        })
        .then((next) => this.schedule(next));
    }, ms);
  }

  /**
   * Claims and handles every due deadline of every call center once. Returns how long to
   * wait before the next poll: the poll interval, or less when a deadline is due sooner.
   */
  async tick(): Promise<number> {
    const { config, redis } = this.deps;
    let wait = config.timers.pollMs;
    for (const cc of Object.keys(config.callcenters)) {
      const k = callCenterKeys(config.redis.keyPrefix, cc);
      for (;;) {
        const [claimed, nextDue, now] = await redis.ccsDeadlineClaim(k.deadlines, k.deadlineClaims, k.deadlineToken, config.timers.claimLeaseMs, BATCH);
        for (let i = 0; i + 1 < claimed.length; i += 2) await this.fire(cc, k, claimed[i]!, claimed[i + 1]!);
        if (nextDue !== null) wait = Math.max(5, Math.min(wait, Number(nextDue) - Number(now)));
        if (claimed.length < BATCH * 2) break;
      }
    }
    return wait;
  }

  private async fire(cc: string, k: CallCenterKeys, member: string, token: string): Promise<void> {
    const { logger, handlers, redis } = this.deps;
    const [kind = '', ...args] = member.split('|');
    const handler = Object.hasOwn(handlers, kind) ? handlers[kind] : undefined;
    if (handler === undefined) {
      logger.warn({ cc, member }, 'dropping deadline of unknown kind');
      await redis.ccsDeadlineDone(k.deadlines, k.deadlineClaims, member, token);
      this.deps.onFired?.(kind, 'unknown');
      return;
    }
    try {
      await handler(cc, args, token);
      // Handlers consume their deadline in their own script; this removes one that turned
      // out stale, so it is not claimed again and again.
      await redis.ccsDeadlineDone(k.deadlines, k.deadlineClaims, member, token);
      this.deps.onFired?.(kind, 'ok');
    } catch (err) {
      if (err instanceof CcsError) {
        // A domain refusal (agent or queue gone from the config, illegal move) will not
        // change on retry: drop the deadline rather than claim it forever.
        logger.warn({ err, cc, member }, 'deadline refused by the domain; dropped');
        await redis.ccsDeadlineDone(k.deadlines, k.deadlineClaims, member, token);
        this.deps.onFired?.(kind, 'error');
        return;
      }
      // Left claimed: after the lease another instance (or this one) retries it.
      logger.error({ err, cc, member }, 'deadline handler failed; it will be retried after the claim lease');
      this.deps.onFired?.(kind, 'error');
    }
  }
}
