/**
 * The runtime conversation (DESIGN.md 5.1) on the instance that owns it: its conference on
 * the media server, the SIP dialog and media endpoint of each leg, and the operations every
 * kind of call is built from — add a leg, set a leg's mode, remove a leg, queue or clear a
 * task, end. Redis (lib/conversation/store.ts) holds the record other instances read; this
 * object is its only writer, and runs its operations one at a time.
 *
 * Media first, record second: a mode is written to Redis only after the conference has it,
 * and a refused record puts the conference back, so no mode is ever recorded that the
 * conference does not have. Ending is one idempotent cascade: every leg released (BYE),
 * endpoints and conference destroyed, the record ended.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, MediaFailedError, NotInConversationError, UnknownConversationError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { HOLD, LegKind, LegState, shouldEnd, type Mode } from '../../lib/conversation/model';
import type { ConversationStore } from '../../lib/conversation/store';
import type { Conference, Endpoint, MediaServer } from '../../media/port';
import { cleanUpStep, type Leg } from '../sip/leg';

/** What a conversation needs from its instance. */
export interface ConversationDeps {
  store: ConversationStore;
  media: MediaServer;
  /** This process's incarnation (the owner recorded in Redis). */
  owner: string;
  logger: Logger;
  /**
   * Puts `agent` on hold (mode 4) in conversation `id`, wherever it is owned: the one-active
   * rule of seed 002, before this conversation makes the agent active.
   */
  holdElsewhere(cc: string, id: string, agent: string): Promise<void>;
}

/** How a new conversation starts. */
export interface OpenOptions {
  cc: string;
  id?: string;
  /** What a leg alone hears (the queue's music on hold). */
  moh?: string | undefined;
  task?: string | undefined;
  queue?: string | undefined;
  taskQueued?: boolean;
}

/** A leg to add. */
export interface LegSpec {
  kind: LegKind;
  agent?: string | undefined;
  ep: Endpoint;
  /** The answered SIP leg; shared with the handler that made it (release is idempotent). */
  sip: Leg;
  mode: Mode;
}

/** One leg of a live conversation. */
export class ConversationLeg {
  readonly id = randomUUID();
  mode: Mode;
  /** True once the leg has left the conversation. */
  left = false;

  constructor(
    readonly kind: LegKind,
    readonly agent: string | undefined,
    readonly ep: Endpoint,
    /** The SIP side: BYE unless the far end hung up. */
    readonly sip: Leg,
    mode: Mode,
  ) {
    this.mode = mode;
  }

  /** True once the far end hung up (or we released the leg). */
  get gone(): boolean {
    return this.sip.gone;
  }
}

/** How many times a change is retried after the one-active rule moved under it. */
const ACTIVE_RETRIES = 3;

/** A conversation owned by this instance. Create it with {@link Conversation.open}. */
export class Conversation {
  private readonly legs = new Map<string, ConversationLeg>();
  /** The chain of operations (one at a time). */
  private ops: Promise<unknown> = Promise.resolve();
  private ending: Promise<void> | undefined;
  private taskQueued: boolean;
  /** The queue of the conversation's task (for the hold's operation-log entry). */
  private taskQueue: string | undefined;
  private resolveEnded!: () => void;
  /** Resolves once the conversation has ended (every leg released, conference destroyed). */
  readonly ended = new Promise<void>((resolve) => (this.resolveEnded = resolve));
  /** Why it ended, once it has. */
  endReason: string | undefined;

  private constructor(
    private readonly deps: ConversationDeps,
    readonly cc: string,
    readonly id: string,
    private readonly conference: Conference,
    taskQueued: boolean,
    taskQueue: string | undefined,
    private readonly log: Logger,
  ) {
    this.taskQueued = taskQueued;
    this.taskQueue = taskQueue;
  }

  /** Creates the conference, then the record (event `created`). */
  static async open(deps: ConversationDeps, o: OpenOptions): Promise<Conversation> {
    const id = o.id ?? randomUUID();
    const conference = await deps.media.createConference(`ccs-${id}`, o.moh === undefined ? {} : { moh: o.moh });
    try {
      await deps.store.create(o.cc, { id, owner: deps.owner, task: o.task, queue: o.queue, taskQueued: o.taskQueued === true });
    } catch (err) {
      await cleanUpStep(deps.logger, 'conference release', () => conference.destroy());
      throw err;
    }
    return new Conversation(deps, o.cc, id, conference, o.taskQueued === true, o.queue, deps.logger.child({ conversation: id }));
  }

  /** True once ending has started. */
  get isEnded(): boolean {
    return this.ending !== undefined;
  }

  /** The legs still in the conversation. */
  get liveLegs(): ConversationLeg[] {
    return [...this.legs.values()].filter((l) => !l.left);
  }

  /** The agent's live leg, if any. */
  legOf(agent: string): ConversationLeg | undefined {
    return this.liveLegs.find((l) => l.kind === LegKind.Agent && l.agent === agent);
  }

  /** Runs `fn` after every operation before it (one at a time per conversation). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.ops.then(fn, fn);
    this.ops = run.catch(() => undefined);
    return run;
  }

  private assertLive(): void {
    if (this.ending !== undefined) throw new UnknownConversationError(this.id);
  }

  /**
   * Adds an answered leg in `mode`: into the conference first, then the record (event
   * `joined`). An agent joining active while active elsewhere is held there first. When the
   * leg's far end hangs up, the leg leaves, and the conversation ends if the ending rule says so.
   */
  add(spec: LegSpec): Promise<ConversationLeg> {
    return this.serial(async () => {
      this.assertLive();
      const leg = new ConversationLeg(spec.kind, spec.agent, spec.ep, spec.sip, spec.mode);
      this.legs.set(leg.id, leg);
      void leg.sip.hungUp.then(() => {
        if (!leg.left && this.ending === undefined) void this.remove(leg.id).catch((err: unknown) => this.log.warn({ err, leg: leg.id }, 'removing a hung-up leg failed'));
      });
      try {
        await this.conference.join(spec.ep, spec.mode);
      } catch (err) {
        leg.left = true;
        throw new MediaFailedError(`the join of a ${spec.kind} leg to conversation ${this.id}`, err);
      }
      for (let attempt = 0; ; attempt++) {
        const r = await this.deps.store.join(this.cc, this.id, { leg: leg.id, kind: spec.kind, agent: spec.agent, mode: spec.mode, state: LegState.Up });
        if (!('conflict' in r)) break;
        if (attempt >= ACTIVE_RETRIES || spec.agent === undefined) {
          leg.left = true;
          throw new ConflictError(`agent ${spec.agent ?? '?'} stays active in another conversation`, { conversations: r.conflict });
        }
        for (const other of r.conflict) await this.deps.holdElsewhere(this.cc, other, spec.agent);
      }
      this.log.info({ leg: leg.id, kind: spec.kind, agent: spec.agent, mode: spec.mode }, 'leg joined');
      return leg;
    });
  }

  /** Sets the mode of `agent`'s leg (pause: 4; resume: 1..3). Returns the mode before. */
  setAgentMode(agent: string, mode: Mode): Promise<{ leg: string; prev: Mode; mode: Mode }> {
    return this.serial(async () => {
      this.assertLive();
      const leg = this.legOf(agent);
      if (leg === undefined) throw new NotInConversationError(agent, this.id);
      const prev = await this.applyMode(leg, mode);
      return { leg: leg.id, prev, mode };
    });
  }

  /**
   * Media first (the conference's mute/deaf), then the record; a refused record puts the
   * conference back. For an agent made active, its other conversations are held first.
   */
  private async applyMode(leg: ConversationLeg, mode: Mode): Promise<Mode> {
    const prev = leg.mode;
    if (prev === mode) return prev;
    const agent = leg.kind === LegKind.Agent ? leg.agent : undefined;
    for (let attempt = 0; ; attempt++) {
      if (agent !== undefined && mode !== HOLD) {
        for (const other of await this.deps.store.ofAgent(this.cc, agent)) {
          if (other.id === this.id) continue;
          if (other.legs.some((l) => l.agent === agent && l.state !== LegState.Gone && l.mode !== HOLD)) await this.deps.holdElsewhere(this.cc, other.id, agent);
        }
      }
      try {
        await this.conference.setMode(leg.ep, mode);
      } catch (err) {
        // Half applied (mute done, deaf refused)? Put the member back to what the record says.
        await this.conference.setMode(leg.ep, prev).catch((undo: unknown) => this.log.error({ err: undo, leg: leg.id, mode: prev }, 'could not put the conference back after a refused mode change'));
        throw new MediaFailedError(`mode ${mode} for leg ${leg.id}`, err);
      }
      const r = await this.deps.store.setMode(this.cc, this.id, { leg: leg.id, kind: leg.kind, agent }, mode, { expected: prev, queue: this.taskQueue });
      if ('prev' in r) {
        leg.mode = mode;
        return prev;
      }
      // Not recorded: the conference goes back to what the record says.
      await this.conference.setMode(leg.ep, prev).catch((err: unknown) => this.log.error({ err, leg: leg.id, mode: prev }, 'could not put the conference back after a refused mode change'));
      if ('refused' in r) throw r.refused === 'ended' ? new UnknownConversationError(this.id) : new ConflictError(`leg ${leg.id} changed meanwhile (${r.refused})`);
      if (attempt >= ACTIVE_RETRIES) throw new ConflictError(`agent ${agent ?? '?'} was made active elsewhere meanwhile`, { conversations: r.conflict });
    }
  }

  /** Records the conversation's task and whether it waits in a queue (the ending rule reads it). */
  setTask(task: string | undefined, queue: string | undefined, queued: boolean): Promise<void> {
    return this.serial(async () => {
      this.assertLive();
      await this.deps.store.setTask(this.cc, this.id, task, queue, queued);
      this.taskQueued = queued;
      this.taskQueue = queue;
    });
  }

  /**
   * A leg leaves: BYE unless its far end hung up, endpoint destroyed, record updated (event
   * `left`); then the conversation ends if nobody it needs is left (ending rule).
   */
  remove(legId: string): Promise<void> {
    return this.serial(async () => {
      const leg = this.legs.get(legId);
      if (leg === undefined || leg.left || this.ending !== undefined) return;
      leg.left = true;
      await cleanUpStep(this.log, 'BYE to the leg', () => leg.sip.release());
      await cleanUpStep(this.log, 'endpoint release', () => leg.ep.destroy());
      await cleanUpStep(this.log, 'leg record', () => this.deps.store.leave(this.cc, this.id, { leg: leg.id, ...(leg.agent === undefined ? {} : { agent: leg.agent }) }));
      this.log.info({ leg: leg.id, kind: leg.kind, agent: leg.agent }, 'leg left');
      if (shouldEnd({ taskQueued: this.taskQueued, legs: this.liveLegs.map((l) => ({ kind: l.kind, state: LegState.Up })) })) void this.end('ending rule');
    });
  }

  /**
   * Ends the conversation: every live leg released with BYE, endpoints and conference
   * destroyed, the record ended (event `ended`). Idempotent; resolves when done.
   */
  end(reason = 'ended'): Promise<void> {
    if (this.ending !== undefined) return this.ending;
    this.endReason = reason;
    this.ending = (async () => {
      // Wait for an operation in progress (never for ones queued after this point: they see isEnded).
      await this.ops;
      const step = (what: string, fn: () => Promise<unknown>): Promise<void> => cleanUpStep(this.log, what, fn);
      for (const leg of this.liveLegs) {
        leg.left = true;
        await step('BYE to a leg', () => leg.sip.release());
      }
      await step('conference release', () => this.conference.destroy());
      for (const leg of this.legs.values()) await step('endpoint release', () => leg.ep.destroy());
      await step('conversation record', () => this.deps.store.end(this.cc, this.id));
      this.log.info({ reason }, 'conversation ended');
      this.resolveEnded();
    })();
    return this.ending;
  }
}
