/**
 * One handler per feature code (DESIGN.md section 4). Each applies exactly the engine
 * operation the matching REST route applies, so a FAC writes the same transition,
 * operation-log entry and event as the REST call.
 */
import type { AgentEngine, ApplyResult } from '../lib/agent/engine';
import type { FacAction } from './dialString';

/** What a FAC handler is given: the authenticated agent and the parsed code. */
export interface FacContext {
  engine: AgentEngine;
  cc: string;
  /** The authenticated SIP user, never a header the caller chose. */
  agent: string;
  queue?: string | undefined;
  reason?: number | undefined;
}

/** A FAC handler. */
export type FacHandler = (ctx: FacContext) => Promise<ApplyResult>;

/** `*36[queue]`: Ready. */
export const ready: FacHandler = (c) => c.engine.ready(c.cc, c.agent, { queue: c.queue });
/** `*37[queue][*reason]`: Not Ready with a busy reason. */
export const notReady: FacHandler = (c) => c.engine.notReady(c.cc, c.agent, { queue: c.queue, reason: c.reason });
/** `*38[queue]`: log in. */
export const login: FacHandler = (c) => c.engine.login(c.cc, c.agent, { queue: c.queue });
/** `*39[queue][*reason]`: log out. */
export const logout: FacHandler = (c) => c.engine.logout(c.cc, c.agent, { queue: c.queue, reason: c.reason });

/** The handler of each action. */
export const FAC_HANDLERS: Readonly<Record<Exclude<FacAction, 'status'>, FacHandler>> = { ready, notReady, login, logout };
