/**
 * The agent-state engine: every agent operation of DESIGN.md section 3, each one Lua
 * script call (lib/store/scripts.ts AGENT_APPLY). Validation against the configuration
 * (unknown call center / agent / queue, membership, reason codes) happens here, before
 * Redis is touched; legality of the move is decided inside the script, atomically with
 * the write.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig, Config, AgentConfig } from '../config/schema';
import { IllegalTransitionError, InvalidRequestError, NotFoundError, NotMemberError } from '../errors';
import { keysCache, type CallCenterKeys } from '../store/keys';
import { agentIndexSpec } from '../acd/readyIndex';
import { agentStates, type QueueStateView } from './queries';
import { AgentEvent, type AgentState } from './stateMachine';
import { BusyReason, SignOutReason, isBusyReason, isSignOutReason, OpType } from '../oplog';

export type { QueueStateView } from './queries';

/** Outcome of an operation in one queue. */
export interface QueueResult {
  queue: string;
  from: AgentState;
  to: AgentState;
  /** False when the operation was a no-op in this queue (already there, stale timer...). */
  changed: boolean;
  /** Set when an all-queue operation left this queue alone because the move is illegal there. */
  skipped?: 'illegal_transition';
}

/** Outcome of an agent operation. */
export interface ApplyResult {
  agent: string;
  results: QueueResult[];
  /** Event sequence numbers written, in order. */
  seqs: number[];
}

/** Options shared by the operations. */
export interface QueueOption {
  /** One queue; omitted means every queue the agent belongs to. */
  queue?: string | undefined;
}

interface Item {
  q: string;
  ev: AgentEvent;
  auto: boolean;
  wrapMs: number;
  op?: number;
}

/** Raw reply of the AGENT_APPLY script (see lib/store/scripts.ts). */
type ScriptReply = (string | number)[];

function parseReply(agentId: string, reply: ScriptReply): ApplyResult {
  if (reply[0] !== 1) throw new IllegalTransitionError(String(reply[2]), String(reply[3]), String(reply[1]));
  const nSeqs = Number(reply[1]);
  const seqs = reply.slice(2, 2 + nSeqs).map(Number);
  const results: QueueResult[] = [];
  for (let i = 2 + nSeqs; i + 4 < reply.length; i += 5) {
    const r: QueueResult = { queue: String(reply[i]), from: reply[i + 1] as AgentState, to: reply[i + 2] as AgentState, changed: reply[i + 3] === '1' };
    if (reply[i + 4] === 'illegal_transition') r.skipped = 'illegal_transition';
    results.push(r);
  }
  return { agent: agentId, results, seqs };
}

/** Who forced a change: the forced entry's object (the supervisor's number, -1 if none) and name. */
export interface ForcedBy {
  object: number;
  /** Supervisor id or token name ([A-Za-z0-9_.@-]). */
  by: string;
}

/** Dependencies of {@link AgentEngine}. */
export interface AgentEngineDeps {
  redis: Redis;
  config: Config;
}

/** Applies agent operations; one instance per process, safe to run on many processes. */
export class AgentEngine {
  private readonly keysOf: (cc: string) => CallCenterKeys;
  private readonly specCache = new WeakMap<AgentConfig, Map<string, string>>();

  constructor(private readonly deps: AgentEngineDeps) {
    this.keysOf = keysCache(deps.config.redis.keyPrefix);
  }

  /** The call center, or {@link NotFoundError}. */
  callCenter(cc: string): CallCenterConfig {
    const c = Object.hasOwn(this.deps.config.callcenters, cc) ? this.deps.config.callcenters[cc] : undefined;
    if (c === undefined) throw new NotFoundError('callcenter', cc);
    return c;
  }

  /** The agent, or {@link NotFoundError}. */
  agent(cc: string, agentId: string): AgentConfig {
    const c = this.callCenter(cc);
    const a = Object.hasOwn(c.agents, agentId) ? c.agents[agentId] : undefined;
    if (a === undefined) throw new NotFoundError('agent', agentId);
    return a;
  }

  /** Key names of a call center (cached). */
  keys(cc: string): CallCenterKeys {
    return this.keysOf(cc);
  }

  /**
   * The Ready-index spec of an agent in each of its queues (lib/acd/readyIndex.ts), built once
   * per configuration object: configs are immutable once loaded.
   */
  private indexSpecs(cc: string, agentId: string): Map<string, string> {
    const agent = this.agent(cc, agentId);
    let specs = this.specCache.get(agent);
    if (specs === undefined) {
      const config = this.callCenter(cc);
      specs = new Map(Object.keys(agent.queues).map((q) => [q, agentIndexSpec(config, agentId, q)]));
      this.specCache.set(agent, specs);
    }
    return specs;
  }

  /** The queues an operation applies to: the one named (checked), or all the agent's. */
  private queuesFor(cc: string, agent: AgentConfig, queue: string | undefined): string[] {
    if (queue === undefined) return Object.keys(agent.queues);
    if (!Object.hasOwn(this.callCenter(cc).queues, queue)) throw new NotFoundError('queue', queue);
    if (!Object.hasOwn(agent.queues, queue)) throw new NotMemberError(agent.id, queue);
    return [queue];
  }

  private item(cc: string, q: string, ev: AgentEvent, op?: number): Item {
    const qc = this.callCenter(cc).queues[q]!;
    const it: Item = { q, ev, auto: qc.autoReady, wrapMs: Math.round(qc.wrapUpSeconds * 1000) };
    if (op !== undefined) it.op = op;
    return it;
  }

  private async run(
    cc: string,
    agentId: string,
    items: Item[],
    opts: { mode: 'strict' | 'lenient'; reason?: number; callId?: string; token?: string; forced?: ForcedBy & { op: number } },
  ): Promise<ApplyResult> {
    const k = this.keys(cc);
    const { config, redis } = this.deps;
    const args: (string | number)[] = [
      k.agent(agentId), k.deadlines, k.deadlineClaims, k.events, k.eventSeq, k.oplog, k.oplogSeq,
      ...items.map((i) => k.queueReady(i.q)),
      agentId,
      opts.mode,
      opts.reason === undefined ? '' : String(opts.reason),
      opts.callId ?? '',
      opts.token ?? '',
      config.instanceId,
      config.streams.eventsMaxLen,
      config.streams.oplogMaxLen,
      opts.forced?.op ?? '',
      opts.forced?.object ?? -1,
      opts.forced?.by ?? '',
    ];
    const specs = this.indexSpecs(cc, agentId);
    for (const i of items) args.push(i.q, i.ev, i.auto ? '1' : '0', i.wrapMs, i.op ?? '', specs.get(i.q) ?? '');
    const numKeys = 7 + items.length;
    let reply: ScriptReply;
    try {
      reply = await redis.ccsAgentApply(numKeys, ...args);
    } catch (err) {
      // A sequence counter behind its stream (lost counter): the script refused before writing
      // any state. Repair the counters and apply once more.
      if (!(err instanceof Error) || !/equal or smaller than the target stream top item/.test(err.message)) throw err;
      await redis.ccsRepairSeq(4, k.events, k.eventSeq, k.oplog, k.oplogSeq);
      reply = await redis.ccsAgentApply(numKeys, ...args);
    }
    return parseReply(agentId, reply);
  }

  private async simple(cc: string, agentId: string, ev: AgentEvent, queue: string | undefined, reason?: number, forced?: ForcedBy & { op: number; within?: readonly string[] | undefined }): Promise<ApplyResult> {
    const agent = this.agent(cc, agentId);
    let queues = this.queuesFor(cc, agent, queue);
    if (forced?.within !== undefined) {
      const within = new Set(forced.within);
      if (queue !== undefined && !within.has(queue)) throw new NotMemberError(agentId, queue);
      queues = queues.filter((q) => within.has(q));
    }
    if (queues.length === 0) throw new IllegalTransitionError('none', ev);
    return this.run(cc, agentId, queues.map((q) => this.item(cc, q, ev)), {
      mode: queue === undefined ? 'lenient' : 'strict',
      ...(reason === undefined ? {} : { reason }),
      ...(forced === undefined ? {} : { forced: { op: forced.op, object: forced.object, by: forced.by } }),
    });
  }

  /**
   * A supervisor's forced change (seed 004, DESIGN.md section 12): sign-out (op 29, then the
   * agent's op 0 reason 257), idle (op 30, then op 2) or busy (op 31, then op 3 reason 3,
   * "forced by a QC inspector"), in one queue or all — only those in `within` when the
   * supervisor oversees some of the agent's queues. A call in progress is never dropped: a
   * forced sign-out during a call logs the agent out at once (DESIGN.md 3) while the call goes
   * on; its end then changes nothing.
   */
  async force(cc: string, agentId: string, kind: 'logout' | 'ready' | 'not_ready', opts: QueueOption & { reason?: number | undefined; by: ForcedBy; within?: readonly string[] | undefined }): Promise<ApplyResult> {
    const forced = { ...opts.by, within: opts.within };
    switch (kind) {
      case 'logout': {
        const reason = opts.reason ?? SignOutReason.Forced;
        if (!isSignOutReason(reason)) throw new InvalidRequestError(`sign-out reason ${reason} is not one of 1-264`, { reason });
        return this.simple(cc, agentId, AgentEvent.Logout, opts.queue, reason, { ...forced, op: OpType.ForcedSignOut });
      }
      case 'ready':
        return this.simple(cc, agentId, AgentEvent.Ready, opts.queue, undefined, { ...forced, op: OpType.ForcedIdle });
      case 'not_ready': {
        const reason = opts.reason ?? BusyReason.ForcedByInspector;
        if (!isBusyReason(reason)) throw new InvalidRequestError(`not-ready reason ${reason} is not one of 1-7 or 200-250`, { reason });
        return this.simple(cc, agentId, AgentEvent.NotReady, opts.queue, reason, { ...forced, op: OpType.ForcedBusy });
      }
    }
  }

  /** Log in to one queue or all; Ready if the queue has autoReady, else Not Ready (operation 1). */
  async login(cc: string, agentId: string, opts: QueueOption = {}): Promise<ApplyResult> {
    return this.simple(cc, agentId, AgentEvent.Login, opts.queue);
  }

  /** Log out (operation 0, reason 258 self by default; a call in progress is not dropped). */
  async logout(cc: string, agentId: string, opts: QueueOption & { reason?: number | undefined } = {}): Promise<ApplyResult> {
    const reason = opts.reason ?? SignOutReason.Self;
    if (!isSignOutReason(reason)) throw new InvalidRequestError(`sign-out reason ${reason} is not one of 1-264`, { reason });
    return this.simple(cc, agentId, AgentEvent.Logout, opts.queue, reason);
  }

  /** Set Ready (operation 2). */
  async ready(cc: string, agentId: string, opts: QueueOption = {}): Promise<ApplyResult> {
    return this.simple(cc, agentId, AgentEvent.Ready, opts.queue);
  }

  /** Set Not Ready with a busy reason (operation 3; default reason 1). */
  async notReady(cc: string, agentId: string, opts: QueueOption & { reason?: number | undefined } = {}): Promise<ApplyResult> {
    const reason = opts.reason ?? BusyReason.Busy;
    if (!isBusyReason(reason)) throw new InvalidRequestError(`not-ready reason ${reason} is not one of 1-7 or 200-250`, { reason });
    return this.simple(cc, agentId, AgentEvent.NotReady, opts.queue, reason);
  }

  /**
   * A call involving the agent started. With `acdQueue`, it is that queue's ACD call
   * (Queue Call there, Other Call elsewhere); without, a non-ACD call (Other Call in every
   * queue the agent is logged in to). `op` is the operation logged: 4 talking by default,
   * 41 for an internal (agent-to-agent) call.
   */
  async callStarted(cc: string, agentId: string, opts: { callId: string; acdQueue?: string | undefined; op?: number | undefined }): Promise<ApplyResult> {
    const agent = this.agent(cc, agentId);
    if (opts.callId === '') throw new InvalidRequestError('callId is required');
    if (opts.acdQueue !== undefined) this.queuesFor(cc, agent, opts.acdQueue);
    const items = Object.keys(agent.queues).map((q) =>
      this.item(cc, q, q === opts.acdQueue ? AgentEvent.AcdCallAnswered : AgentEvent.OtherCallStarted, opts.op ?? OpType.Talking),
    );
    return this.run(cc, agentId, items, { mode: 'strict', callId: opts.callId });
  }

  /** The call `callId` ended: Wrap Up / Ready / Not Ready, or back to the remembered state. */
  async callEnded(cc: string, agentId: string, opts: { callId: string }): Promise<ApplyResult> {
    const agent = this.agent(cc, agentId);
    if (opts.callId === '') throw new InvalidRequestError('callId is required');
    const items = Object.keys(agent.queues).map((q) => this.item(cc, q, AgentEvent.CallEnded));
    return this.run(cc, agentId, items, { mode: 'strict', callId: opts.callId });
  }

  /** A claimed wrap-up deadline fired; `token` is the claim's fencing token. */
  async expireWrapUp(cc: string, agentId: string, queue: string, token: string): Promise<ApplyResult> {
    const agent = this.agent(cc, agentId);
    this.queuesFor(cc, agent, queue);
    return this.run(cc, agentId, [this.item(cc, queue, AgentEvent.WrapUpExpired)], { mode: 'strict', token });
  }

  /** The agent's state in each of its queues. */
  async states(cc: string, agentId: string): Promise<QueueStateView[]> {
    this.agent(cc, agentId);
    const views = await agentStates(this.deps.redis, this.keys(cc), this.callCenter(cc), [agentId]);
    return views.get(agentId)!;
  }
}
