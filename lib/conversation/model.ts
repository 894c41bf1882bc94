/**
 * The conversation model and its rules (DESIGN.md sections 5 and 5.1, seed 002): a
 * conversation is a mixing point (a FreeSWITCH conference) holding legs, each with a
 * listen/speak mode. The rules here are pure functions over records, so they can be read
 * (and tested) as tables; lib/store/convScripts.ts applies them atomically in Redis.
 */
import { InvalidRequestError, NotInConversationError, UnknownConversationError } from '../errors';

/** A leg's listen/speak mode: 1 listen and speak, 2 listen only, 3 speak only, 4 neither (hold). */
export type Mode = 1 | 2 | 3 | 4;

/** Hold: neither listen nor speak. */
export const HOLD: Mode = 4;

/** What a leg is. */
export enum LegKind {
  /** The party who called in (from a trunk or an agent's phone dialing a queue). */
  Caller = 'caller',
  /** An agent's extension leg. */
  Agent = 'agent',
  /** An outside party the platform called (overflow to a number, call-out). */
  External = 'external',
  /** A supervisor monitoring (section 12). */
  Supervisor = 'supervisor',
}

/** Where a leg is in its life. */
export enum LegState {
  Dialing = 'dialing',
  Up = 'up',
  Gone = 'gone',
}

/**
 * How a supervisor's leg is in a conversation (DESIGN.md section 12), by its DTMF digit:
 * 1 listen (hears both, heard by nobody), 2 whisper (heard by the agents only), 3 barge
 * (heard by everyone), 4 intercept (takes the call; the agent's leg leaves).
 */
export const MONITOR_MODES = ['listen', 'whisper', 'barge', 'intercept'] as const;
/** A supervisor leg's monitoring mode. */
export type MonitorMode = (typeof MONITOR_MODES)[number];

/** The monitoring mode of DTMF digit / dial suffix `d` (1-4), or undefined. */
export function monitorModeOf(d: string | number): MonitorMode | undefined {
  const n = Number(d);
  return Number.isInteger(n) && n >= 1 && n <= 4 ? MONITOR_MODES[n - 1] : undefined;
}

/** A supervisor leg's listen/speak mode: listen only in `listen`, else listen and speak (whisper is narrowed by who hears it). */
export function monitorLegMode(m: MonitorMode): Mode {
  return m === 'listen' ? 2 : 1;
}

/**
 * A supervisor leg the monitored parties are not told of (DESIGN.md section 12): listening in
 * or whispering. Agent tokens never see such a leg, in REST views or events.
 */
export function isSilentMonitor(leg: object): boolean {
  const l = leg as { kind?: unknown; monitor?: unknown };
  return l.kind === LegKind.Supervisor && (l.monitor === 'listen' || l.monitor === 'whisper');
}

/** The conversation as an agent may see it: without supervisors listening in or whispering. */
export function withoutSilentMonitors<C extends { legs: readonly LegRecord[] }>(c: C): C {
  return c.legs.some(isSilentMonitor) ? { ...c, legs: c.legs.filter((l) => !isSilentMonitor(l)) } : c;
}

/** One leg as stored (JSON in the conversation's legs hash). */
export interface LegRecord {
  leg: string;
  kind: LegKind;
  agent?: string;
  /** A supervisor leg: the supervisor and how it monitors. */
  supervisor?: string;
  monitor?: MonitorMode;
  mode: Mode;
  state: LegState;
  /** When the leg entered its state (ms, Redis clock). */
  since: number;
}

/** A conversation as stored. */
export interface ConversationRecord {
  id: string;
  cc: string;
  /** Incarnation of the process holding its dialogs and conference. */
  owner: string;
  state: 'active' | 'ended';
  created: number;
  /** The queue task of the conversation (the caller's), if any. */
  task?: string;
  queue?: string;
  /** True while the task waits in a queue (not yet answered). */
  taskQueued: boolean;
  legs: LegRecord[];
}

/** Whether `n` is a mode. */
export function isMode(n: unknown): n is Mode {
  return n === 1 || n === 2 || n === 3 || n === 4;
}

/** Mute (cannot speak) and deaf (cannot hear) of a mode: a conference member's flags. */
export function modeFlags(mode: Mode): { mute: boolean; deaf: boolean } {
  return { mute: mode === 2 || mode === 4, deaf: mode === 3 || mode === 4 };
}

/** Legs that count as in the conversation: not gone. */
export function liveLegs<L extends Pick<LegRecord, 'state'>>(c: { legs: readonly L[] }): L[] {
  return c.legs.filter((l) => l.state !== LegState.Gone);
}

/**
 * Who may act on a conversation: an agent with a live extension leg in it. Returns that leg.
 * Throws UnknownConversationError for a missing or ended conversation, NotInConversationError
 * for an agent without a live leg.
 */
export function agentLegOf(c: ConversationRecord | undefined, id: string, agent: string): LegRecord {
  if (c === undefined || c.state === 'ended') throw new UnknownConversationError(id);
  const leg = liveLegs(c).find((l) => l.kind === LegKind.Agent && l.agent === agent);
  if (leg === undefined) throw new NotInConversationError(agent, id);
  return leg;
}

/** An agent's place in one conversation, as `GET agent` and the agent snapshot show it. */
export interface AgentConversationView {
  id: string;
  leg: string;
  mode: Mode;
  /** Not on hold there. */
  active: boolean;
}

/** The agent's live legs in the given live conversations, with their mode. */
export function agentConversationViews(agent: string, conversations: readonly { id: string; state: string; legs: readonly LegRecord[] }[]): AgentConversationView[] {
  const out: AgentConversationView[] = [];
  for (const c of conversations) {
    if (c.state !== 'active') continue;
    for (const l of liveLegs(c)) if (l.agent === agent) out.push({ id: c.id, leg: l.leg, mode: l.mode, active: l.mode !== HOLD });
  }
  return out;
}

/** The mode a `resume` asks for: 1..3 (default 1); hold (4) or anything else is refused (seed 002). */
export function resumeMode(mode: unknown): Mode {
  const m = mode === undefined ? 1 : mode;
  if (m === 4) throw new InvalidRequestError('resume takes mode 1, 2 or 3; mode 4 (hold) is pause', { mode: m });
  if (!isMode(m)) throw new InvalidRequestError(`mode must be 1, 2 or 3, not ${JSON.stringify(m)}`, { mode: m });
  return m;
}

/** The agent's live legs in other conversations that are not on hold: what a change to active must hold first. */
export interface ActiveElsewhere {
  conversation: string;
  leg: string;
}

/**
 * The one-active rule (seed 002): an agent's extension may be in a mode other than 4 in at
 * most one conversation at a time. Making `target` active (mode 1..3) requires every other
 * conversation of the agent to have the agent on 4 first: this returns those that do not.
 */
export function activeElsewhere(agent: string, target: string, conversations: readonly ConversationRecord[]): ActiveElsewhere[] {
  const out: ActiveElsewhere[] = [];
  for (const c of conversations) {
    if (c.id === target || c.state === 'ended') continue;
    for (const l of liveLegs(c)) if (l.kind === LegKind.Agent && l.agent === agent && l.mode !== HOLD) out.push({ conversation: c.id, leg: l.leg });
  }
  return out;
}

/** Legs that are parties of the conversation (a supervisor only listens in). */
const PARTY: ReadonlySet<LegKind> = new Set([LegKind.Caller, LegKind.Agent, LegKind.External]);

/**
 * The ending rule (DESIGN.md 5.1, made precise here): a conversation ends when no leg is up;
 * or, unless a task is queued for it, when fewer than two parties (caller, agent, external,
 * a supervisor who intercepted) are left, or only callers are. A queued task keeps it: a
 * transfer queues the task before the agent leaves, so the caller stays and hears music
 * while queued again. Legs still dialing count as parties: a call-out in progress keeps it.
 */
export function shouldEnd(c: { legs: readonly (Pick<LegRecord, 'kind' | 'state'> & { monitor?: MonitorMode | undefined })[]; taskQueued: boolean }): boolean {
  const live = liveLegs(c);
  if (!live.some((l) => l.state === LegState.Up)) return true;
  if (c.taskQueued) return false;
  // A supervisor who intercepted the call is the party the agent was.
  const parties = live.filter((l) => PARTY.has(l.kind) || l.monitor === 'intercept');
  return parties.length < 2 || !parties.some((l) => l.kind !== LegKind.Caller);
}

/**
 * Hold music for a leg (DESIGN.md 5, seed 002): a leg that can hear hears the conversation's
 * music when there are other live legs and every one of them is on hold. (Alone, the
 * conference's own music plays.)
 */
export function hearsHoldMusic(leg: Pick<LegRecord, 'leg' | 'mode'>, legs: readonly Pick<LegRecord, 'leg' | 'mode'>[]): boolean {
  if (modeFlags(leg.mode).deaf) return false;
  const others = legs.filter((l) => l.leg !== leg.leg);
  return others.length > 0 && others.every((l) => l.mode === HOLD);
}
