/**
 * Crash safety of calls. A process that puts agents on a call (Other Call, Queue Call)
 * records the call under its own incarnation id in Redis and keeps a liveness deadline for
 * that incarnation pushed out by heartbeats. If the process dies, the deadline comes due and
 * whichever instance claims it ends those calls for the agents (the same `callEnded` a normal
 * hang-up applies), so no agent is left on a call that nobody handles any more.
 *
 * The incarnation is random per process start, not the configured instance id: a restarted
 * instance must not adopt (and keep alive) the calls of its previous life.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../agent/engine';
import type { Config } from '../config/schema';
import type { Logger } from '../logger';
import { callGuardMember, keysCache, type CallCenterKeys } from '../store/keys';

/** Dependencies of {@link CallGuard}. */
export interface CallGuardDeps {
  redis: Redis;
  config: Config;
  logger: Logger;
  engine: AgentEngine;
  /** Defaults to a random id. */
  incarnation?: string;
}

/** Tracks this process's calls and ends the calls of dead processes. */
export class CallGuard {
  /** This process's incarnation id. */
  readonly incarnation: string;
  private readonly live = new Map<string, Map<string, string[]>>();
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(private readonly deps: CallGuardDeps) {
    this.incarnation = deps.incarnation ?? randomUUID().replace(/-/g, '');
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  private readonly keys: (cc: string) => CallCenterKeys;

  /** Records a live call of `agents` (before their state changes, so a crash in between is covered). */
  async track(cc: string, callId: string, agents: string[]): Promise<void> {
    let calls = this.live.get(cc);
    if (calls === undefined) this.live.set(cc, (calls = new Map<string, string[]>()));
    calls.set(callId, agents);
    const k = this.keys(cc);
    await this.deps.redis.ccsGuardTrack(k.callGuard(this.incarnation), k.deadlines, callId, agents.join(','), callGuardMember(this.incarnation), this.deps.config.timers.callGuardMs);
  }

  /** The call is over (its agents' states were restored). */
  async untrack(cc: string, callId: string): Promise<void> {
    this.live.get(cc)?.delete(callId);
    await this.deps.redis.hdel(this.keys(cc).callGuard(this.incarnation), callId);
  }

  /** Starts heartbeats (every third of the guard time). */
  start(): void {
    if (this.timer !== undefined) return;
    const every = Math.max(100, Math.floor(this.deps.config.timers.callGuardMs / 3));
    this.timer = setInterval(() => {
      if (this.beating !== undefined) return;
      this.beating = this.beat()
        .catch((err: unknown) => this.deps.logger.warn({ err }, 'call guard heartbeat failed'))
        .finally(() => (this.beating = undefined));
    }, every);
  }

  /** Stops heartbeats (the calls still tracked will be ended by another instance after the guard time). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  /** One heartbeat for every call center this process has had calls in. */
  async beat(): Promise<void> {
    for (const cc of this.live.keys()) {
      const k = this.keys(cc);
      const n = await this.deps.redis.ccsGuardBeat(k.callGuard(this.incarnation), k.deadlines, k.deadlineClaims, callGuardMember(this.incarnation), this.deps.config.timers.callGuardMs);
      if (n === 0 && this.live.get(cc)?.size === 0) this.live.delete(cc);
    }
  }

  /**
   * Deadline handler for `guard|<incarnation>`: a process stopped beating; end each of its
   * calls for its agents. Each call is removed only after its agents were handled, so an
   * instance dying in here leaves the rest to the next claimer (callEnded is idempotent).
   */
  readonly onDeadline = async (cc: string, args: string[]): Promise<void> => {
    const [incarnation] = args;
    if (incarnation === undefined || incarnation === this.incarnation) return;
    const key = this.keys(cc).callGuard(incarnation);
    const calls = await this.deps.redis.hgetall(key);
    for (const [callId, agents] of Object.entries(calls)) {
      for (const agent of agents.split(',').filter((a) => a !== '')) {
        try {
          await this.deps.engine.callEnded(cc, agent, { callId });
        } catch (err) {
          this.deps.logger.warn({ err, cc, agent, callId }, 'ending an orphaned call failed for one agent');
        }
      }
      await this.deps.redis.hdel(key, callId);
      this.deps.logger.warn({ cc, callId, agents, incarnation }, 'ended a call whose instance stopped');
    }
  };
}
