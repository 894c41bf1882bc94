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
import { HOLD, LegKind, LegState, monitorLegMode, shouldEnd, type Mode, type MonitorMode } from '../../lib/conversation/model';
import type { ConversationStore } from '../../lib/conversation/store';
import type { Conference, Endpoint, MediaServer, Prompt } from '../../media/port';
import { cleanUpStep, type Leg } from '../sip/leg';
import type { AgentLine } from './line';

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
  /**
   * A line left this conversation while its media was anchored here and it is still in
   * others: anchor it in one of those, so the phone's media path stays live.
   */
  lineFreed(line: AgentLine): void;
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
  /**
   * The leg's media endpoint. Absent only for an agent's `line` whose media is anchored in
   * another conversation: it is re-anchored here when the leg joins in a mode other than 4.
   */
  ep?: Endpoint | undefined;
  /** The answered SIP leg; shared with the handler that made it (release is idempotent). */
  sip: Leg;
  /** For an agent's extension call that may be in several conversations (seed 002). */
  line?: AgentLine | undefined;
  mode: Mode;
  /** The id of the dialing leg this answered leg replaces ({@link Conversation.dialing}). */
  id?: string | undefined;
  /** A supervisor leg: who, and how it monitors (its `mode` follows from that). */
  supervisor?: string | undefined;
  monitor?: MonitorMode | undefined;
}

/** One leg of a live conversation. */
export class ConversationLeg {
  mode: Mode;
  /** A supervisor leg's monitoring mode. */
  monitor: MonitorMode | undefined;
  /** A supervisor leg's supervisor. */
  supervisor: string | undefined;
  /** True once the leg has left the conversation. */
  left = false;
  private resolveGone!: () => void;
  /** Resolves when the leg has left (hung up, removed, transferred away, or the conversation ended). */
  readonly hasLeft = new Promise<void>((resolve) => (this.resolveGone = resolve));

  /** The media endpoint in this conversation's conference; undefined while a line's media is elsewhere. */
  ep: Endpoint | undefined;

  constructor(
    readonly id: string,
    readonly kind: LegKind,
    readonly agent: string | undefined,
    ep: Endpoint | undefined,
    /** The SIP side: BYE unless the far end hung up (for a line: unless it is in another conversation). */
    readonly sip: Leg,
    mode: Mode,
    readonly line: AgentLine | undefined,
  ) {
    this.ep = ep;
    this.mode = mode;
  }

  /** Marks the leg as left (once). */
  markLeft(): void {
    this.left = true;
    this.resolveGone();
  }

  /** True once the far end hung up (or we released the leg). */
  get gone(): boolean {
    return this.sip.gone;
  }
}

/** A supervisor listening in or whispering is not a party of the conversation (hold music, DESIGN.md 12). */
function isBystander(leg: ConversationLeg): boolean {
  return leg.monitor === 'listen' || leg.monitor === 'whisper';
}

/** How many times a change is retried after the one-active rule moved under it. */
const ACTIVE_RETRIES = 3;

/** A conversation owned by this instance. Create it with {@link Conversation.open}. */
export class Conversation {
  private readonly legs = new Map<string, ConversationLeg>();
  /** Legs being dialed (recorded `dialing`): they count as parties for the ending rule. */
  private readonly dialingLegs = new Map<string, LegKind>();
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

  /** The queue of the conversation's task, if it has one. */
  get queue(): string | undefined {
    return this.taskQueue;
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
      if (spec.ep === undefined && spec.line === undefined) throw new Error('a leg needs an endpoint or a line');
      const mode = spec.monitor === undefined ? spec.mode : monitorLegMode(spec.monitor);
      const leg = new ConversationLeg(spec.id ?? randomUUID(), spec.kind, spec.agent, spec.ep, spec.sip, mode, spec.line);
      leg.supervisor = spec.supervisor;
      leg.monitor = spec.monitor;
      if (spec.id !== undefined) this.dialingLegs.delete(spec.id);
      this.legs.set(leg.id, leg);
      void leg.sip.hungUp.then(() => {
        if (!leg.left && this.ending === undefined) void this.remove(leg.id).catch((err: unknown) => this.log.warn({ err, leg: leg.id }, 'removing a hung-up leg failed'));
      });
      if (leg.ep !== undefined) this.watchMedia(leg, leg.ep);
      try {
        // The one-active rule before any media: the agent goes on hold elsewhere first.
        if (spec.agent !== undefined && spec.mode !== HOLD) await this.holdOthers(spec.agent);
        // A browser's line moved its endpoint in: joined already.
        let moved = false;
        if (spec.line !== undefined) {
          spec.line.enter(this.id);
          if (leg.ep !== undefined) spec.line.anchored(this.id, () => this.detach(leg), { ep: leg.ep, conference: this.conference });
          else if (spec.mode !== HOLD && spec.line.keepsMedia) {
            this.watchMedia(leg, (leg.ep = await spec.line.moveIn(this.id, this.conference, mode, () => this.detach(leg))));
            moved = true;
          } else if (spec.mode !== HOLD) this.watchMedia(leg, (leg.ep = await spec.line.anchorIn(this.id, () => this.detach(leg))));
        }
        // A whisperer joins muted, and speaks once the caller cannot hear it.
        if (leg.ep !== undefined && !moved) await this.conference.join(leg.ep, leg.monitor === 'whisper' ? 2 : mode, { bystander: isBystander(leg) });
        await this.whisperTo(leg);
        if (leg.ep !== undefined && leg.monitor === 'whisper') await this.conference.setMode(leg.ep, mode, { bystander: true });
      } catch (err) {
        await this.releaseLeg(leg);
        throw err instanceof MediaFailedError ? err : new MediaFailedError(`the join of a ${spec.kind} leg to conversation ${this.id}`, err);
      }
      for (let attempt = 0; ; attempt++) {
        const r = await this.deps.store.join(this.cc, this.id, { leg: leg.id, kind: spec.kind, agent: spec.agent, mode, state: LegState.Up, supervisor: spec.supervisor, monitor: spec.monitor });
        if (!('conflict' in r)) break;
        if (attempt >= ACTIVE_RETRIES || spec.agent === undefined) {
          await this.releaseLeg(leg);
          throw new ConflictError(`agent ${spec.agent ?? '?'} stays active in another conversation`, { conversations: r.conflict });
        }
        for (const other of r.conflict) await this.deps.holdElsewhere(this.cc, other, spec.agent);
      }
      this.log.info({ leg: leg.id, kind: spec.kind, agent: spec.agent, supervisor: spec.supervisor, monitor: spec.monitor, mode, anchored: leg.ep !== undefined }, 'leg joined');
      return leg;
    });
  }

  /** The endpoints of the live legs other than `leg` that are not agents: who must not hear a whisperer. */
  private nonAgentEndpoints(leg: ConversationLeg): Endpoint[] {
    return this.liveLegs.filter((l) => l !== leg && l.kind !== LegKind.Agent && l.ep !== undefined).map((l) => l.ep!);
  }

  /**
   * Whisper (DESIGN.md section 12): a whispering supervisor is heard by the agents only. For a
   * new leg: a whispering supervisor is not heard by it unless it is an agent; a supervisor
   * joining in whisper is not heard by the non-agent legs already there.
   */
  private async whisperTo(leg: ConversationLeg): Promise<void> {
    const others = this.liveLegs.filter((l) => l !== leg && l.ep !== undefined);
    if (leg.monitor === 'whisper' && leg.ep !== undefined) {
      const notAgents = this.nonAgentEndpoints(leg);
      if (notAgents.length > 0) await this.conference.setHeard(leg.ep, notAgents, false);
    }
    if (leg.kind === LegKind.Agent || leg.ep === undefined) return;
    for (const sup of others) if (sup.monitor === 'whisper') await this.conference.setHeard(sup.ep!, [leg.ep], false);
  }

  /**
   * Changes a supervisor leg's monitoring mode (DTMF 1-4, or REST): its mute and who hears it
   * in the conference first, then the record (event `mode`). Intercept here is the media side
   * only: the monitoring script then removes the agent's leg. Returns the mode before.
   */
  setMonitor(legId: string, monitor: MonitorMode): Promise<MonitorMode> {
    return this.serial(async () => {
      this.assertLive();
      const leg = this.legs.get(legId);
      if (leg === undefined || leg.left || leg.monitor === undefined) throw new NotInConversationError(legId, this.id);
      const prev = leg.monitor;
      if (prev === monitor) return prev;
      const mode = monitorLegMode(monitor);
      const ep = leg.ep;
      if (ep !== undefined) {
        const notAgents = this.nonAgentEndpoints(leg);
        try {
          // Whisper narrows who hears it before it may speak; leaving whisper widens it after.
          if (monitor === 'whisper' && notAgents.length > 0) await this.conference.setHeard(ep, notAgents, false);
          await this.conference.setMode(ep, mode, { bystander: monitor !== 'intercept' && monitor !== 'barge' });
          if (prev === 'whisper' && notAgents.length > 0) await this.conference.setHeard(ep, notAgents, true);
        } catch (err) {
          throw new MediaFailedError(`monitoring mode ${monitor} for leg ${leg.id}`, err);
        }
      }
      leg.monitor = monitor;
      leg.mode = mode;
      await this.deps.store.setMonitor(this.cc, this.id, leg.id, monitor, mode);
      this.log.info({ leg: leg.id, supervisor: leg.supervisor, from: prev, to: monitor }, 'monitoring mode changed');
      return prev;
    });
  }

  /** The supervisor's live leg, if it monitors this conversation. */
  supervisorLeg(supervisor: string): ConversationLeg | undefined {
    return this.liveLegs.find((l) => l.kind === LegKind.Supervisor && l.supervisor === supervisor);
  }

  /**
   * The media server losing a leg's endpoint (FreeSWITCH died: issue "faults") loses the
   * conference with it: the conversation ends, so every leg gets its BYE and every agent its
   * normal call end, instead of SIP legs up with no media and agents stuck on their calls.
   */
  private watchMedia(leg: ConversationLeg, ep: Endpoint): void {
    void ep.lost.then(() => {
      if (leg.ep !== ep || this.ending !== undefined) return;
      this.log.error({ leg: leg.id, kind: leg.kind, agent: leg.agent, endpoint: ep.id }, 'the media server lost a leg; ending the conversation');
      void this.end('media server lost the call');
    });
  }

  /** Puts `agent` on hold in each other conversation where it is not (the one-active rule). */
  private async holdOthers(agent: string): Promise<void> {
    for (const other of await this.deps.store.ofAgent(this.cc, agent)) {
      if (other.id === this.id) continue;
      if (other.legs.some((l) => l.agent === agent && l.state !== LegState.Gone && l.mode !== HOLD)) await this.deps.holdElsewhere(this.cc, other.id, agent);
    }
  }

  /**
   * The line's media moved to another conversation: this one releases its endpoint (the leg
   * stays, on hold); a browser's line took its endpoint along, so it is only forgotten here.
   */
  private detach(leg: ConversationLeg): Promise<void> {
    return this.serial(async () => {
      const ep = leg.ep;
      leg.ep = undefined;
      if (ep !== undefined && leg.line?.keepsMedia !== true) await cleanUpStep(this.log, 'endpoint release of a moved line', () => ep.destroy());
    });
  }

  /**
   * Anchors `agent`'s line here again (it left the conversation that had its media), in the
   * mode its leg has; a no-op when the leg has media here already or is gone.
   */
  reanchor(agent: string): Promise<void> {
    return this.serial(async () => {
      if (this.ending !== undefined) return;
      const leg = this.legOf(agent);
      if (leg?.line === undefined || leg.ep !== undefined || leg.line.gone) return;
      if (leg.line.keepsMedia) {
        const kept = await leg.line.moveIn(this.id, this.conference, leg.mode, () => this.detach(leg));
        leg.ep = kept;
        this.watchMedia(leg, kept);
        return;
      }
      const ep = await leg.line.anchorIn(this.id, () => this.detach(leg));
      leg.ep = ep;
      this.watchMedia(leg, ep);
      await this.conference.join(ep, leg.mode);
    });
  }

  /**
   * Lets go of a leg's SIP side and media: BYE (for a line, only when this was its last
   * conversation), endpoint released; a line anchored here is anchored in another of its
   * conversations. A browser's line keeps its endpoint until its last conversation: it stays
   * in this conference until it moves (or this conference ends under it).
   */
  private async releaseLeg(leg: ConversationLeg): Promise<void> {
    leg.markLeft();
    const ep = leg.ep;
    leg.ep = undefined;
    const line = leg.line;
    const wasAnchored = line !== undefined && line.anchoredIn === this.id;
    const last = line === undefined || line.leave(this.id);
    // The BYE goes out now, but its answer is not waited for: a far end that is gone takes
    // Timer F (32 s on UDP) to time out, and the media, the records and the agents' call end
    // after this must not wait for it (a failed BYE is logged by cleanUpStep).
    if (last) void cleanUpStep(this.log, 'BYE to the leg', () => leg.sip.release());
    const kept = line?.keepsMedia === true ? line.keptEndpoint : undefined;
    if (ep !== undefined && (last || kept === undefined)) await cleanUpStep(this.log, 'endpoint release', () => ep.destroy());
    if (last && kept !== undefined && kept !== ep) await cleanUpStep(this.log, 'endpoint release of a browser line', () => kept.destroy());
    if (line !== undefined && !last && wasAnchored && !line.gone) this.deps.lineFreed(line);
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
    /** Puts the conference back to what the record says. */
    const putBack = async (): Promise<void> => {
      const ep = leg.ep;
      if (ep === undefined) return;
      await this.conference.setMode(ep, prev).catch((undo: unknown) => this.log.error({ err: undo, leg: leg.id, mode: prev }, 'could not put the conference back after a refused mode change'));
    };
    for (let attempt = 0; ; attempt++) {
      if (agent !== undefined && mode !== HOLD) await this.holdOthers(agent);
      try {
        if (leg.ep !== undefined) {
          await this.conference.setMode(leg.ep, mode);
        } else if (mode !== HOLD && leg.line?.keepsMedia === true) {
          // A browser's line: its endpoint moves here from the conference it is in.
          const ep = await leg.line.moveIn(this.id, this.conference, mode, () => this.detach(leg));
          leg.ep = ep;
          this.watchMedia(leg, ep);
        } else if (mode !== HOLD && leg.line !== undefined) {
          // The line's media is in another conversation: bring it here (re-INVITE), in the new mode.
          const ep = await leg.line.anchorIn(this.id, () => this.detach(leg));
          leg.ep = ep;
          this.watchMedia(leg, ep);
          await this.conference.join(ep, mode);
        }
      } catch (err) {
        // Half applied (mute done, deaf refused)? Put the member back to what the record says.
        await putBack();
        throw err instanceof MediaFailedError ? err : new MediaFailedError(`mode ${mode} for leg ${leg.id}`, err);
      }
      const r = await this.deps.store.setMode(this.cc, this.id, { leg: leg.id, kind: leg.kind, agent }, mode, { expected: prev, queue: this.taskQueue });
      if ('prev' in r) {
        leg.mode = mode;
        return prev;
      }
      // Not recorded: the conference goes back to what the record says.
      await putBack();
      if ('refused' in r) throw r.refused === 'ended' ? new UnknownConversationError(this.id) : new ConflictError(`leg ${leg.id} changed meanwhile (${r.refused})`);
      if (attempt >= ACTIVE_RETRIES) throw new ConflictError(`agent ${agent ?? '?'} was made active elsewhere meanwhile`, { conversations: r.conflict });
    }
  }

  /** The ending rule over the live and dialing legs. */
  private shouldEnd(): boolean {
    const legs = [...this.liveLegs.map((l) => ({ kind: l.kind, state: LegState.Up, monitor: l.monitor })), ...[...this.dialingLegs.values()].map((kind) => ({ kind, state: LegState.Dialing }))];
    return shouldEnd({ taskQueued: this.taskQueued, legs });
  }

  /**
   * Records a leg being dialed (event `joined`, state dialing); it keeps the conversation as
   * a party would. Returns its id, for {@link LegSpec.id} once answered or
   * {@link Conversation.dialFailed}.
   */
  dialing(kind: LegKind): Promise<string> {
    return this.serial(async () => {
      this.assertLive();
      const id = randomUUID();
      await this.deps.store.join(this.cc, this.id, { leg: id, kind, mode: 1, state: LegState.Dialing });
      this.dialingLegs.set(id, kind);
      return id;
    });
  }

  /** A dialed leg was not answered (event `left` with the cause); the ending rule applies. */
  dialFailed(id: string, cause: string): Promise<void> {
    return this.serial(async () => {
      if (!this.dialingLegs.delete(id) || this.ending !== undefined) return;
      await cleanUpStep(this.log, 'dialing leg record', () => this.deps.store.leave(this.cc, this.id, { leg: id }, cause));
      this.log.info({ leg: id, cause }, 'dialed leg not answered');
      if (this.shouldEnd()) void this.end('ending rule');
    });
  }

  /** Removes `agent`'s leg (a transfer: the agent leaves, the others stay). */
  async removeAgent(agent: string): Promise<void> {
    const leg = this.legOf(agent);
    if (leg === undefined) throw new NotInConversationError(agent, this.id);
    await this.remove(leg.id);
  }

  /**
   * Hands a leg over to another conversation (consult_complete): it leaves this one without a
   * BYE — its endpoint here is released and its record leaves — so the receiving conversation
   * can re-INVITE it to an endpoint of its own. The ending rule applies here afterwards.
   */
  handOver(legId: string): Promise<{ kind: LegKind; agent: string | undefined; sip: Leg; line: AgentLine | undefined }> {
    return this.serial(async () => {
      this.assertLive();
      const leg = this.legs.get(legId);
      if (leg === undefined || leg.left || leg.gone) throw new NotInConversationError(legId, this.id);
      leg.markLeft();
      const ep = leg.ep;
      leg.ep = undefined;
      leg.line?.leave(this.id);
      // A browser's line keeps its endpoint: the receiving conversation moves it out of here.
      if (ep !== undefined && leg.line?.keepsMedia !== true) await cleanUpStep(this.log, 'endpoint release of a handed-over leg', () => ep.destroy());
      await cleanUpStep(this.log, 'leg record', () => this.deps.store.leave(this.cc, this.id, { leg: leg.id, ...(leg.agent === undefined ? {} : { agent: leg.agent }) }, 'handed over'));
      this.log.info({ leg: leg.id, kind: leg.kind, agent: leg.agent }, 'leg handed over');
      if (this.shouldEnd()) void this.end('ending rule');
      return { kind: leg.kind, agent: leg.agent, sip: leg.sip, line: leg.line };
    });
  }

  /** Plays a prompt to one leg (the error prompt after a failed transfer, say). */
  playTo(legId: string, prompt: Prompt): Promise<void> {
    return this.serial(async () => {
      const ep = this.legs.get(legId)?.ep;
      if (ep !== undefined && !this.isEnded) await ep.play(prompt);
    });
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
      await this.releaseLeg(leg);
      await cleanUpStep(this.log, 'leg record', () => this.deps.store.leave(this.cc, this.id, { leg: leg.id, ...(leg.agent === undefined ? {} : { agent: leg.agent }) }));
      this.log.info({ leg: leg.id, kind: leg.kind, agent: leg.agent }, 'leg left');
      if (this.shouldEnd()) void this.end('ending rule');
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
      for (const leg of this.liveLegs) await this.releaseLeg(leg);
      await step('conference release', () => this.conference.destroy());
      await step('conversation record', () => this.deps.store.end(this.cc, this.id));
      this.log.info({ reason }, 'conversation ended');
      this.resolveEnded();
    })();
    return this.ending;
  }
}
