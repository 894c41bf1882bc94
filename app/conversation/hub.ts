/**
 * The conversations of one instance and the way in for everyone else (DESIGN.md 5.1): it
 * opens conversations and keeps the live ones, executes the commands other instances hand
 * to this one, and routes an operation on any conversation to the instance that owns it —
 * validated against Redis first, then run by the owner, once per idempotency key.
 */
import type { Logger } from '../../lib/logger';
import { agentLegOf, HOLD, type Mode } from '../../lib/conversation/model';
import type { ConversationStore } from '../../lib/conversation/store';
import { InvalidRequestError, UnknownConversationError } from '../../lib/errors';
import type { MediaServer } from '../../media/port';
import type { Leg } from '../sip/leg';
import { Conversation, type OpenOptions } from './conversation';
import { AgentLine } from './line';

/** A command handed to the instance that owns what it acts on. */
export interface Command {
  op: string;
  args: Record<string, unknown>;
}

/** Hands commands to their owner (lib/conversation/commandBus.ts), or runs them here. */
export interface CommandSender {
  send(cc: string, owner: string, cmd: Command, opts?: { idempotencyKey?: string }): Promise<unknown>;
}

/** A handler of one command op, run on the owner. */
export type CommandHandler = (cc: string, args: Record<string, unknown>) => Promise<unknown>;

/** What the hub needs. */
export interface HubDeps {
  store: ConversationStore;
  media: MediaServer;
  /** This process's incarnation. */
  owner: string;
  logger: Logger;
}

/** Outcome of a mode change (pause, resume, the one-active rule's hold). */
export interface ModeResult {
  conversation: string;
  leg: string;
  prev: Mode;
  mode: Mode;
}

function str(args: Record<string, unknown>, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new InvalidRequestError(`command argument ${name} is missing`);
  return v;
}

/** Every live conversation this instance owns, and the routing of operations on any conversation. */
export class ConversationHub {
  private readonly live = new Map<string, Conversation>();
  /** Each agent's latest extension call held by this instance. */
  private readonly lines = new Map<string, AgentLine>();
  /** Dials in progress that a ring-limit deadline may cancel, by `cc|conversation|leg`. */
  private readonly dials = new Map<string, () => void>();
  private readonly handlers = new Map<string, CommandHandler>();
  private sender: CommandSender | undefined;

  constructor(private readonly deps: HubDeps) {
    this.handle('setMode', async (cc, args) => {
      const mode = args.mode;
      if (mode !== 1 && mode !== 2 && mode !== 3 && mode !== 4) throw new InvalidRequestError('mode must be 1..4');
      const conv = this.get(cc, str(args, 'conversation'));
      const r = await conv.setAgentMode(str(args, 'agent'), mode);
      return { conversation: conv.id, ...r } satisfies ModeResult;
    });
    // A call-out limit came due (deadline `maxdial` / `maxtalk`, fired on any instance).
    this.handle('conversation.limit', async (cc, args) => {
      const id = str(args, 'conversation');
      const conv = this.live.get(`${cc}|${id}`);
      if (conv === undefined || conv.isEnded) return { applied: false };
      if (args.limit === 'dial') {
        const cancel = this.dials.get(`${cc}|${id}|${str(args, 'leg')}`);
        cancel?.();
        return { applied: cancel !== undefined };
      }
      if (args.limit === 'talk') {
        // Only while the leg the limit was set for is still in the conversation.
        if (!conv.liveLegs.some((l) => l.id === args.leg)) return { applied: false };
        await conv.end('max answer time reached');
        return { applied: true };
      }
      throw new InvalidRequestError('limit must be dial or talk');
    });
  }

  /** Registers the cancel of a dial a `maxdial` deadline may stop; returns its unregistration. */
  trackDial(cc: string, conversation: string, leg: string, cancel: () => void): () => void {
    const key = `${cc}|${conversation}|${leg}`;
    this.dials.set(key, cancel);
    return () => {
      if (this.dials.get(key) === cancel) this.dials.delete(key);
    };
  }

  /**
   * Deadline handler of `maxdial|<conversation>|<leg>` and `maxtalk|<conversation>|<leg>`: hands
   * the limit to the conversation's owner, wherever it runs. A conversation that ended, or
   * whose owner is gone (the call guard ends those), needs nothing.
   */
  async limitDue(cc: string, limit: 'dial' | 'talk', conversation: string, leg: string): Promise<void> {
    const rec = await this.deps.store.get(cc, conversation);
    if (rec === undefined || rec.state === 'ended') return;
    await this.run(cc, rec.owner, { op: 'conversation.limit', args: { conversation, leg, limit } });
  }

  /** Writes an agent's operation on a conversation to the operation log (op 41, 45, 46…). */
  logOp(cc: string, id: string, agent: string, op: number, queue?: string, reason?: number | { reason?: number; object?: number; by?: string }): Promise<number> {
    const o = typeof reason === 'number' ? { reason } : (reason ?? {});
    return this.deps.store.logOp(cc, id, agent, op, { queue, ...o });
  }

  /** This instance's incarnation (the owner it records). */
  get owner(): string {
    return this.deps.owner;
  }

  /** Where commands for other owners go (set once the command bus is up). */
  useSender(sender: CommandSender): void {
    this.sender = sender;
  }

  /** Registers the handler of a command op (queue calls add theirs: reject, forward). */
  handle(op: string, fn: CommandHandler): void {
    this.handlers.set(op, fn);
  }

  /** Runs a command here (the bus calls this for commands handed to this instance). */
  readonly execute = async (cc: string, cmd: Command): Promise<unknown> => {
    const fn = this.handlers.get(cmd.op);
    if (fn === undefined) throw new InvalidRequestError(`unknown command ${cmd.op}`);
    return fn(cc, cmd.args);
  };

  /** Runs `cmd` at `owner`: through the sender when there is one (idempotency, hand-off), else here. */
  run(cc: string, owner: string, cmd: Command, idempotencyKey?: string): Promise<unknown> {
    if (this.sender !== undefined) return this.sender.send(cc, owner, cmd, idempotencyKey === undefined ? {} : { idempotencyKey });
    if (owner !== this.deps.owner) throw new UnknownConversationError(typeof cmd.args.conversation === 'string' ? cmd.args.conversation : '?');
    return this.execute(cc, cmd);
  }

  /** Opens a conversation owned by this instance. */
  async open(o: OpenOptions): Promise<Conversation> {
    const conv = await Conversation.open(
      {
        store: this.deps.store, media: this.deps.media, owner: this.deps.owner, logger: this.deps.logger,
        holdElsewhere: (cc, id, agent) => this.hold(cc, id, agent),
        lineFreed: (line) => this.lineFreed(line),
      },
      o,
    );
    const key = `${o.cc}|${conv.id}`;
    this.live.set(key, conv);
    void conv.ended.then(() => this.live.delete(key));
    return conv;
  }

  /**
   * The agent's extension call `sip` as a line that conversations share (seed 002: one
   * extension call, in several conversations); it becomes the agent's current line here.
   */
  line(cc: string, agent: string, sip: Leg): AgentLine {
    const line = new AgentLine(cc, agent, sip, this.deps.media, this.deps.logger.child({ agent }));
    const key = `${cc}|${agent}`;
    this.lines.set(key, line);
    void sip.hungUp.then(() => {
      if (this.lines.get(key) === line) this.lines.delete(key);
    });
    return line;
  }

  /** The agent's live extension call on this instance, if any. */
  lineOf(cc: string, agent: string): AgentLine | undefined {
    const line = this.lines.get(`${cc}|${agent}`);
    return line === undefined || line.gone || line.conversations.length === 0 ? undefined : line;
  }

  /** A line lost its anchor while still in other conversations: anchor it in the newest of them. */
  private lineFreed(line: AgentLine): void {
    const target = line.conversations.map((id) => this.live.get(`${line.cc}|${id}`)).filter((c): c is Conversation => c !== undefined && !c.isEnded).pop();
    if (target === undefined) return;
    void target.reanchor(line.agent).catch((err: unknown) => this.deps.logger.warn({ err, agent: line.agent, conversation: target.id }, 'could not anchor a line again'));
  }

  /** A live conversation of this instance. */
  get(cc: string, id: string): Conversation {
    const conv = this.live.get(`${cc}|${id}`);
    if (conv === undefined || conv.isEnded) throw new UnknownConversationError(id);
    return conv;
  }

  /** How many conversations this instance holds. */
  get size(): number {
    return this.live.size;
  }

  /** Ends every conversation (shutdown). */
  async endAll(reason: string): Promise<void> {
    await Promise.all([...this.live.values()].map((c) => c.end(reason)));
  }

  /** The one-active rule: puts `agent` on hold in conversation `id`, wherever it is owned. */
  private async hold(cc: string, id: string, agent: string): Promise<void> {
    const rec = await this.deps.store.get(cc, id);
    if (rec === undefined || rec.state === 'ended') return; // ended meanwhile: nothing to hold
    await this.run(cc, rec.owner, { op: 'setMode', args: { conversation: id, agent, mode: HOLD } });
  }

  /**
   * Sets `agent`'s mode in conversation `id` (REST pause / resume): checked against Redis
   * here (unknown 404, not in it 403), run by the owner.
   */
  async setAgentMode(cc: string, agent: string, id: string, mode: Mode, idempotencyKey?: string): Promise<ModeResult> {
    return (await this.runAsAgent(cc, agent, id, { op: 'setMode', args: { mode } }, idempotencyKey)) as ModeResult;
  }

  /**
   * An agent's operation on conversation `id` (REST): checked against Redis here (unknown 404,
   * not in it 403), then run by the conversation's owner with `conversation` and `agent` added
   * to the command's arguments.
   */
  async runAsAgent(cc: string, agent: string, id: string, cmd: Command, idempotencyKey?: string): Promise<unknown> {
    const rec = await this.deps.store.get(cc, id);
    agentLegOf(rec, id, agent);
    return this.run(cc, rec!.owner, { op: cmd.op, args: { ...cmd.args, conversation: id, agent } }, idempotencyKey);
  }
}
