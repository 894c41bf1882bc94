/**
 * Conversations in Redis (DESIGN.md 5.1): a typed layer over lib/store/convScripts.ts. Every
 * change is one script call; the one-active rule's "read the agent's other conversations,
 * then change" is checked again inside the script, which answers `retry` if the set moved.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import { ConflictError, UnknownConversationError } from '../errors';
import { pipelineReplies } from '../store/redis';
import { keysCache, type CallCenterKeys } from '../store/keys';
import { isMode, LegKind, LegState, MONITOR_MODES, type ConversationRecord, type LegRecord, type Mode, type MonitorMode } from './model';

/** How long an ended conversation stays readable. */
const ENDED_KEEP_MS = 3_600_000;

/** How often a change is tried again when the agent's conversations moved under it. */
const MAX_RETRIES = 8;

/** A leg to add. */
export interface NewLeg {
  leg: string;
  kind: LegKind;
  agent?: string | undefined;
  /** A supervisor leg: who, and how it monitors. */
  supervisor?: string | undefined;
  monitor?: MonitorMode | undefined;
  mode: Mode;
  state: LegState.Dialing | LegState.Up;
}

/** The one-active rule refused a change: the agent is active in these conversations. */
export interface ActiveConflict {
  conflict: string[];
}

/** Outcome of a mode change. */
export interface ModeChange {
  /** The mode before. */
  prev: Mode;
  /** Sequence number of the `conversation` event (0: the mode was already that). */
  seq: number;
}

/** Why a mode change was not applied (besides a conflict). */
export type ModeRefusal = 'ended' | 'no_leg' | 'stale';

/** A stored leg and its place in the order of joining. */
export function parseLeg(raw: string): LegRecord & { n: number } {
  const l = JSON.parse(raw) as LegRecord & { n?: number };
  return {
    leg: l.leg,
    kind: l.kind,
    ...(l.agent ? { agent: l.agent } : {}),
    ...(l.supervisor ? { supervisor: l.supervisor } : {}),
    ...(l.monitor && (MONITOR_MODES as readonly string[]).includes(l.monitor) ? { monitor: l.monitor } : {}),
    mode: isMode(l.mode) ? l.mode : 4,
    state: l.state,
    since: Number(l.since),
    n: Number(l.n ?? 0),
  };
}

/** A conversation from its hash and its legs' JSON, or undefined when the hash is empty. */
export function conversationRecord(cc: string, h: Record<string, string>, legs: readonly string[]): ConversationRecord | undefined {
  if (h.id === undefined) return undefined;
  return {
    id: h.id,
    cc,
    owner: h.owner ?? '',
    state: h.state === 'active' ? 'active' : 'ended',
    created: Number(h.created),
    ...(h.task ? { task: h.task } : {}),
    ...(h.queue ? { queue: h.queue } : {}),
    taskQueued: h.taskQueued === '1',
    legs: legs
      .map(parseLeg)
      .sort((a, b) => a.n - b.n)
      .map(({ n: _n, ...l }) => l),
  };
}

/** Typed access to the conversations of every call center. */
export class ConversationStore {
  /** Key names of call center `cc`. */
  readonly keys: (cc: string) => CallCenterKeys;

  constructor(private readonly deps: { redis: Redis; config: Config }) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  private get maxLen(): number {
    return this.deps.config.streams.eventsMaxLen;
  }

  /** Creates an active conversation owned by `owner`. */
  async create(cc: string, c: { id: string; owner: string; task?: string | undefined; queue?: string | undefined; taskQueued?: boolean }): Promise<{ created: number; seq: number }> {
    const k = this.keys(cc);
    const [created, seq] = (await this.deps.redis.ccsConvCreate(k.conv(c.id), k.convs, k.events, k.eventSeq, c.id, c.owner, c.task ?? '', c.queue ?? '', c.taskQueued === true ? '1' : '0', this.maxLen)) as [number, number];
    return { created: Number(created), seq: Number(seq) };
  }

  /** One conversation with its legs, or undefined (never existed, or ended long ago). */
  async get(cc: string, id: string): Promise<ConversationRecord | undefined> {
    const k = this.keys(cc);
    const [h, legs] = (await pipelineReplies(this.deps.redis.pipeline().hgetall(k.conv(id)).hvals(k.convLegs(id)))) as [Record<string, string>, string[]];
    return conversationRecord(cc, h, legs);
  }

  /** The live conversations `agent` has a live leg in. */
  async ofAgent(cc: string, agent: string): Promise<ConversationRecord[]> {
    const ids = await this.deps.redis.smembers(this.keys(cc).agentConvs(agent));
    return (await Promise.all(ids.map((id) => this.get(cc, id)))).filter((c): c is ConversationRecord => c !== undefined && c.state === 'active');
  }

  /** The call center's live conversations, oldest first, optionally those with a live leg of `agent` or of queue `queue`. */
  async list(cc: string, filter: { agent?: string | undefined; queue?: string | undefined; limit?: number } = {}): Promise<ConversationRecord[]> {
    const ids = filter.agent !== undefined ? await this.deps.redis.smembers(this.keys(cc).agentConvs(filter.agent)) : await this.deps.redis.zrange(this.keys(cc).convs, 0, (filter.limit ?? 1000) - 1);
    const all = (await Promise.all(ids.map((id) => this.get(cc, id)))).filter((c): c is ConversationRecord => c !== undefined && c.state === 'active');
    return all.filter((c) => filter.queue === undefined || c.queue === filter.queue).sort((a, b) => a.created - b.created);
  }

  /**
   * Runs a script that needs the agent's other conversations (one-active rule), reading them
   * again when the script answers `retry`.
   */
  private async withOthers<T>(cc: string, id: string, agent: string | undefined, run: (others: string[], otherLegKeys: string[]) => Promise<(string | number)[]>, done: (reply: (string | number)[]) => T): Promise<T> {
    const k = this.keys(cc);
    for (let i = 0; i < MAX_RETRIES; i++) {
      const others = agent === undefined ? [] : (await this.deps.redis.smembers(k.agentConvs(agent))).filter((c) => c !== id);
      const reply = await run(others, others.map((c) => k.convLegs(c)));
      if (reply[0] === 0 && reply[1] === 'retry') continue;
      return done(reply);
    }
    throw new ConflictError(`the conversations of agent ${agent ?? '?'} kept changing; try again`, { conversation: id });
  }

  /**
   * Adds a leg. An agent leg joining in mode 1..3 while the agent is active elsewhere is
   * refused with the conversations to hold first.
   */
  async join(cc: string, id: string, leg: NewLeg): Promise<{ seq: number } | ActiveConflict> {
    const k = this.keys(cc);
    return this.withOthers(
      cc,
      id,
      leg.agent,
      (others, otherKeys) =>
        this.deps.redis.ccsConvJoin(
          5 + otherKeys.length,
          k.conv(id), k.convLegs(id), leg.agent === undefined ? k.conv(id) : k.agentConvs(leg.agent), k.events, k.eventSeq, ...otherKeys,
          id, leg.leg, leg.kind, leg.agent ?? '', leg.mode, leg.state, this.maxLen, leg.supervisor ?? '', leg.monitor ?? '', ...others,
        ),
      (reply) => {
        if (reply[0] === 1) return { seq: Number(reply[1]) };
        if (reply[1] === 'conflict') return { conflict: reply.slice(2).map(String) };
        throw new UnknownConversationError(id);
      },
    );
  }

  /**
   * Sets a live leg's mode (the one-active rule checked for an agent leg made active). With
   * `expected`, only if the leg still has that mode.
   */
  async setMode(cc: string, id: string, leg: Pick<LegRecord, 'leg' | 'kind' | 'agent'>, mode: Mode, o: { expected?: Mode; queue?: string | undefined } = {}): Promise<ModeChange | ActiveConflict | { refused: ModeRefusal }> {
    const k = this.keys(cc);
    const agent = leg.kind === LegKind.Agent ? leg.agent : undefined;
    return this.withOthers(
      cc,
      id,
      agent,
      (others, otherKeys) =>
        this.deps.redis.ccsConvSetMode(
          8 + otherKeys.length,
          k.conv(id), k.convLegs(id), agent === undefined ? k.conv(id) : k.agentConvs(agent), k.events, k.eventSeq, k.oplog, k.oplogSeq, agent === undefined ? k.conv(id) : k.agent(agent), ...otherKeys,
          id, leg.leg, mode, o.expected ?? '', this.maxLen, this.deps.config.streams.oplogMaxLen, this.deps.config.instanceId, o.queue ?? '', ...others,
        ),
      (reply): ModeChange | ActiveConflict | { refused: ModeRefusal } => {
        if (reply[0] === 1) return { prev: Number(reply[1]) as Mode, seq: Number(reply[2]) };
        if (reply[1] === 'conflict') return { conflict: reply.slice(2).map(String) };
        return { refused: String(reply[1]) as ModeRefusal };
      },
    );
  }

  /** Changes a supervisor leg's monitoring mode and its listen/speak mode with it (event `mode`). */
  async setMonitor(cc: string, id: string, leg: string, monitor: MonitorMode, mode: Mode): Promise<boolean> {
    const k = this.keys(cc);
    const reply = await this.deps.redis.ccsConvMonitor(k.conv(id), k.convLegs(id), k.events, k.eventSeq, id, leg, monitor, mode, this.maxLen);
    return reply[0] === 1;
  }

  /** A leg left (with `cause`, e.g. `486 Busy Here` for a dial not answered); false if it was unknown or gone already. */
  async leave(cc: string, id: string, leg: Pick<LegRecord, 'leg' | 'agent'>, cause?: string): Promise<boolean> {
    const k = this.keys(cc);
    const reply = await this.deps.redis.ccsConvLeave(k.conv(id), k.convLegs(id), leg.agent === undefined ? k.conv(id) : k.agentConvs(leg.agent), k.events, k.eventSeq, id, leg.leg, this.maxLen, cause ?? '');
    return reply[0] === 1;
  }

  /** Records the conversation's queue task and whether it waits in the queue. */
  async setTask(cc: string, id: string, task: string | undefined, queue: string | undefined, queued: boolean): Promise<boolean> {
    return (await this.deps.redis.ccsConvTask(this.keys(cc).conv(id), task ?? '', queue ?? '', queued ? '1' : '0')) === 1;
  }

  /** Logs an agent's operation on conversation `id` (op 41, 45, 46…) in the operation log. */
  async logOp(cc: string, id: string, agent: string, op: number, o: { queue?: string | undefined; object?: number; reason?: number; by?: string } = {}): Promise<number> {
    const k = this.keys(cc);
    return Number(await this.deps.redis.ccsConvOplog(k.oplog, k.oplogSeq, k.agent(agent), agent, o.queue ?? '', op, o.object ?? -1, o.reason ?? -1, this.deps.config.streams.oplogMaxLen, this.deps.config.instanceId, id, o.by ?? ''));
  }

  /** Ends a conversation (idempotent: false when it had ended). */
  async end(cc: string, id: string): Promise<boolean> {
    const k = this.keys(cc);
    const legs = (await this.deps.redis.hvals(k.convLegs(id))).map(parseLeg);
    const agents = [...new Set(legs.map((l) => l.agent).filter((a): a is string => a !== undefined))];
    const reply = await this.deps.redis.ccsConvEnd(5 + agents.length, k.conv(id), k.convLegs(id), k.convs, k.events, k.eventSeq, ...agents.map((a) => k.agentConvs(a)), id, this.maxLen, ENDED_KEEP_MS);
    return reply[0] === 1;
  }

  /** Ends every live conversation `owner` holds (its process is gone); returns how many. */
  async endOwnedBy(cc: string, owner: string): Promise<number> {
    let n = 0;
    for (const c of await this.list(cc, { limit: 100_000 })) if (c.owner === owner && (await this.end(cc, c.id))) n += 1;
    return n;
  }
}
