/**
 * What a feature code did, told to the agent who dialed it (DESIGN.md section 4, issue 14):
 * one outcome per result, computed once from the engine's result or error and used for the
 * prompt played, the SIP `Reason` of the BYE (or the final response's reason phrase without a
 * media server) and the log line.
 */
import type { ApplyResult } from '../lib/agent/engine';
import { AgentState, type AgentState as State } from '../lib/agent/stateMachine';
import type { FacOutcome } from '../lib/config/schema';
import { CcsError } from '../lib/errors';
import type { FacAction } from './dialString';

/** The outcomes a desk-phone user can tell apart by ear (the list is the config's, lib/config/schema.ts). */
export { FAC_OUTCOMES, type FacOutcome } from '../lib/config/schema';

/** A FAC's result as the agent hears and sees it. */
export interface FacResult {
  outcome: FacOutcome;
  /** Queues the operation changed (success), 0 when it changed nothing (already so). */
  queues: number;
  /** Text for the BYE's Reason, the reason phrase and the log: `ready in 2 queues`. */
  text: string;
  /** SIP status: 200 for success, the failure's final response otherwise. */
  status: number;
}

const plural = (n: number): string => `${n} queue${n === 1 ? '' : 's'}`;

/** The outcome of a successful operation from the engine's per-queue result. */
export function outcomeOf(action: Exclude<FacAction, 'status'>, result: ApplyResult): FacResult {
  const changed = result.results.filter((r) => r.changed);
  const n = changed.length;
  const count = (s: State): number => changed.filter((r) => r.to === s).length;
  const ok = (outcome: FacOutcome, text: string): FacResult => ({ outcome, queues: n, text, status: 200 });
  switch (action) {
    case 'login': {
      const ready = count(AgentState.Ready);
      const notReady = n - ready;
      if (n === 0) return ok('logged_in_ready', 'already logged in');
      const parts = [ready > 0 ? `ready in ${plural(ready)}` : '', notReady > 0 ? `not ready in ${plural(notReady)}` : ''].filter((p) => p !== '');
      return ok(ready > 0 ? 'logged_in_ready' : 'logged_in_not_ready', `logged in: ${parts.join(', ')}`);
    }
    case 'ready':
      return ok('ready', n === 0 ? 'already ready' : `ready in ${plural(n)}`);
    case 'notReady':
      return ok('not_ready', n === 0 ? 'already not ready' : `not ready in ${plural(n)}`);
    case 'logout':
      return ok('logged_out', n === 0 ? 'already logged out' : `logged out of ${plural(n)}`);
  }
}

/** The `status` code's result: the agent's state per queue, as text (`8000 ready, 8001 not ready`). */
export function statusOf(states: readonly { queue: string; state: State }[]): FacResult {
  return { outcome: 'status', queues: states.length, text: states.map((s) => `${s.queue} ${s.state.replace('_', ' ')}`).join(', '), status: 200 };
}

/** The outcome of a refused feature code. */
export function failureOf(err: unknown): FacResult {
  const fail = (outcome: FacOutcome, status: number, text: string): FacResult => ({ outcome, queues: 0, text, status });
  if (!(err instanceof CcsError)) return fail('failed', 500, 'server error');
  const d = err.details ?? {};
  const str = (k: string): string => (typeof d[k] === 'string' ? d[k] : '');
  switch (err.code) {
    case 'not_member':
      return fail('not_member', 403, `not a member of queue ${str('queue')}`);
    case 'unknown_queue':
      return fail('unknown_queue', 404, `no queue ${str('queue')}`);
    case 'illegal_transition':
      return fail('not_allowed', 409, `not allowed while ${str('from').replace('_', ' ')}${str('queue') === '' ? '' : ` in queue ${str('queue')}`}`);
    case 'invalid_request':
    case 'malformed_dial_string':
      return fail('malformed', 484, 'malformed feature code');
    case 'unauthorized':
      return fail('not_authenticated', 403, 'not authenticated');
    default:
      return fail('failed', err.code === 'unavailable' ? 503 : 500, err.code === 'unavailable' ? 'service unavailable' : 'server error');
  }
}

/** The SIP `Reason` header value (RFC 3326) that carries a result in the BYE. */
export function reasonHeader(r: FacResult): string {
  return `SIP;cause=${r.status};text="${r.text.replace(/["\\\r\n]/g, ' ')}"`;
}

/** A reason phrase for a final response (the same text, capitalised). */
export function reasonPhrase(r: FacResult): string {
  return r.text.replace(/^./, (c) => c.toUpperCase());
}
