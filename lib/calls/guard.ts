/**
 * Crash safety of calls. A process that puts agents on a call (Other Call, Queue Call)
 * records the call under its own incarnation id in Redis and keeps a liveness deadline for
 * that incarnation pushed out by heartbeats. If the process dies, the deadline comes due and
 * whichever instance claims it ends those calls for the agents (the same `callEnded` a normal
 * hang-up applies), so no agent is left on a call that nobody handles any more.
 *
 * A queue call also records its task: a caller still waiting when the process died has
 * nobody left to offer it, so the task is closed (a `queue.caller` event with reason
 * `closed`) and leaves the queue instead of blocking the callers behind it.
 *
 * The incarnation is random per process start, not the configured instance id: a restarted
 * instance must not adopt (and keep alive) the calls of its previous life.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TaskEndReason } from '../acd/taskStore';
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
  /** Ends a queue task of a dead process (TaskStore.end); without it tasks are left alone. */
  endTask?: (cc: string, taskId: string, queue: string, reason: TaskEndReason, agent?: string) => Promise<boolean>;
  /**
   * Ends the conversation records a dead process owned (ConversationStore.endOwnedBy), after
   * its calls: nobody holds their dialogs or conferences any more. Returns how many.
   */
  endConversations?: (cc: string, owner: string) => Promise<number>;
}

/** The queue task a guarded call carries. */
export interface GuardedTask {
  id: string;
  queue: string;
}

/** Guard hash value: `<agents, comma separated>[|<task>|<queue>]`. */
function encode(agents: string[], task: GuardedTask | undefined): string {
  return task === undefined ? agents.join(',') : `${agents.join(',')}|${task.id}|${task.queue}`;
}

function decode(v: string): { agents: string[]; task: GuardedTask | undefined } {
  const [agents = '', id, queue] = v.split('|');
  return { agents: agents.split(',').filter((a) => a !== ''), task: id !== undefined && queue !== undefined ? { id, queue } : undefined };
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

  /**
   * Records a live call of `agents` and, for a queue call, its task (before the states change
   * or the task is queued, so a crash in between is covered). Tracking the same call again
   * replaces what was recorded.
   */
  async track(cc: string, callId: string, agents: string[], task?: GuardedTask): Promise<void> {
    let calls = this.live.get(cc);
    if (calls === undefined) this.live.set(cc, (calls = new Map<string, string[]>()));
    calls.set(callId, agents);
    const k = this.keys(cc);
    await this.deps.redis.ccsGuardTrack(k.callGuard(this.incarnation), k.deadlines, callId, encode(agents, task), callGuardMember(this.incarnation), this.deps.config.timers.callGuardMs);
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
   * calls for its agents and close its queue task. Each call is removed only after its agents
   * and task were handled, so an instance dying in here leaves the rest to the next claimer
   * (callEnded and TaskStore.end are idempotent).
   */
  readonly onDeadline = async (cc: string, args: string[]): Promise<void> => {
    const [incarnation] = args;
    if (incarnation === undefined || incarnation === this.incarnation) return;
    const key = this.keys(cc).callGuard(incarnation);
    const calls = await this.deps.redis.hgetall(key);
    for (const [callId, value] of Object.entries(calls)) {
      const { agents, task } = decode(value);
      for (const agent of agents) {
        try {
          await this.deps.engine.callEnded(cc, agent, { callId });
        } catch (err) {
          this.deps.logger.warn({ err, cc, agent, callId }, 'ending an orphaned call failed for one agent');
        }
      }
      if (task !== undefined && this.deps.endTask !== undefined) {
        // Answered: the end of the call (its handle time counted up to now). Waiting: closed,
        // with a queue.caller event, so it no longer holds up the queue.
        const closed = await this.deps.endTask(cc, task.id, task.queue, 'closed', agents[0]);
        if (closed) this.deps.logger.warn({ cc, callId, task: task.id, queue: task.queue, incarnation }, 'closed a queue task whose instance stopped');
      }
      await this.deps.redis.hdel(key, callId);
      this.deps.logger.warn({ cc, callId, agents, incarnation }, 'ended a call whose instance stopped');
    }
    const ended = (await this.deps.endConversations?.(cc, incarnation)) ?? 0;
    if (ended > 0) this.deps.logger.warn({ cc, incarnation, conversations: ended }, 'ended the conversations of an instance that stopped');
  };
}
