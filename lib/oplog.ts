/**
 * Operation-log codes of the vendor CTI in seeds/004_e3d7e644c5367999.txt. The numbers are
 * the contract with CTI clients that already understand that vendor's logs; never renumber.
 */
import { AgentEvent, AgentState } from './agent/stateMachine';

/** Operation types (seed 004, table 1). */
export enum OpType {
  SignOut = 0,
  SignIn = 1,
  Idle = 2,
  Busy = 3,
  Talking = 4,
  ThreeParty = 10,
  ListenInsertWhisper = 20,
  WorkStatus = 27,
  ForcedSignOut = 29,
  ForcedIdle = 30,
  ForcedBusy = 31,
  Hold = 38,
  InternalHelp = 40,
  InternalCall = 41,
  Intercept = 43,
  InternalTransfer = 45,
  TransferOut = 46,
  Conference = 58,
}

/** Reasons of operation 0 (sign out). */
export enum SignOutReason {
  Disconnected = 256,
  Forced = 257,
  Self = 258,
  ReSignIn = 259,
}

/** Reasons of operation 3 (busy, i.e. Not Ready). 200-250 are site-defined. */
export enum BusyReason {
  Busy = 1,
  NoAnswer = 2,
  ForcedByInspector = 3,
  Rest = 4,
  PhoneUnavailable = 5,
  RejectedCall = 7,
}

/** "No object" / "no reason" in the vendor's log. */
export const NONE = -1;

/** Reason of operation 27 for after-call work entered automatically. */
export const AFTER_CALL_WORK = 0;

/** Sign-out reasons accepted from clients (1-255 client errors, 256-264 the table's). */
export function isSignOutReason(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 264;
}

/** Busy reasons accepted from clients: the table's 1-7 and the site-defined 200-250. */
export function isBusyReason(n: number): boolean {
  return Number.isInteger(n) && ((n >= 1 && n <= 7) || (n >= 200 && n <= 250));
}

/**
 * The operation logged when an agent arrives in `state`, unless the caller names one
 * (a call start names Talking or InternalCall). Kept beside the codes so the Lua script
 * receives it as data rather than duplicating it.
 */
export const OP_FOR_STATE: Readonly<Record<AgentState, OpType>> = {
  [AgentState.LoggedOut]: OpType.SignOut,
  [AgentState.NotReady]: OpType.Busy,
  [AgentState.Ready]: OpType.Idle,
  [AgentState.QueueCall]: OpType.Talking,
  [AgentState.OtherCall]: OpType.Talking,
  [AgentState.WrapUp]: OpType.WorkStatus,
};

/**
 * Operations logged by event rather than by the state reached: signing in is operation 1
 * whether it lands in Ready or Not Ready.
 */
export const OP_FOR_EVENT: Readonly<Partial<Record<AgentEvent, OpType>>> = {
  [AgentEvent.Login]: OpType.SignIn,
};

/** One operation-log entry as stored and served. */
export interface OplogEntry {
  seq: number;
  ts: number;
  agent: string;
  queue: string;
  op: number;
  object: number;
  reason: number;
  state: AgentState;
  instance: string;
  /** Who forced the change or monitored the agent (a supervisor id or a token name). */
  by?: string;
  /** The conversation of a call operation (ops 10, 20, 38, 40-46). */
  conversation?: string;
}
