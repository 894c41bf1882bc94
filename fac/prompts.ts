/**
 * What the agent hears for each FAC outcome (issue 14). A site may set `fac.prompts.<outcome>`
 * to a FreeSWITCH sound URI (a file, a `say:` phrase); the shipped defaults are tone patterns
 * that need no sound files, each learnable by ear:
 *
 * | outcome | pattern |
 * |---|---|
 * | logged_in_ready | three rising tones (C E G), then one short high beep per queue |
 * | logged_in_not_ready | two rising tones, then a low one (C E B), then the beeps |
 * | ready | two rising tones (E A), then the beeps |
 * | not_ready | two falling tones (A E), then the beeps |
 * | logged_out | three falling tones (G D G below), then the beeps |
 * | status | one tone per queue: high = ready, middle = not ready, low = logged out, higher = on a call, between = wrap-up |
 * | not_member | three short low tones at 330 Hz |
 * | unknown_queue | three short low tones at 262 Hz |
 * | not_allowed | three short low tones at 415 Hz |
 * | malformed | four quick tones at 220 Hz |
 * | not_authenticated | one long very low tone |
 * | failed | one long two-frequency tone |
 * | not_on_call | (a supervisor's `*63`) two short low tones at 349 Hz: the agent is on no call, or not one to monitor |
 */
import { AgentState, type AgentState as State } from '../lib/agent/stateMachine';
import type { FacOutcome, FacResult } from './outcome';

/** Teletone segment `%(on_ms,off_ms,hz)`. */
const tone = (on: number, off: number, hz: number | string): string => `%(${on},${off},${hz})`;
const stream = (...segments: string[]): string => `tone_stream://${segments.join(';')}`;
const triple = (hz: number): string[] => [tone(200, 100, hz), tone(200, 100, hz), tone(200, 100, hz)];

/** The shipped tone pattern of each outcome (without the per-queue beeps). */
export const DEFAULT_PATTERNS: Readonly<Record<FacOutcome, string[]>> = {
  logged_in_ready: [tone(250, 50, 523), tone(250, 50, 659), tone(400, 150, 784)],
  logged_in_not_ready: [tone(250, 50, 523), tone(250, 50, 659), tone(400, 150, 494)],
  ready: [tone(300, 50, 659), tone(450, 150, 880)],
  not_ready: [tone(300, 50, 880), tone(450, 150, 659)],
  logged_out: [tone(300, 50, 784), tone(300, 50, 587), tone(500, 150, 392)],
  status: [],
  not_member: triple(330),
  unknown_queue: triple(262),
  not_allowed: triple(415),
  malformed: [tone(150, 75, 220), tone(150, 75, 220), tone(150, 75, 220), tone(150, 75, 220)],
  not_authenticated: [tone(800, 100, 196)],
  failed: [tone(800, 100, '300,350')],
  not_on_call: [tone(200, 100, 349), tone(200, 100, 349)],
};

/** The beep per queue an operation changed. */
export const QUEUE_BEEP = tone(80, 120, 1200);

/** The tone of one queue's state in a `status` read-back. */
export const STATE_TONES: Readonly<Record<State, number>> = {
  [AgentState.Ready]: 880,
  [AgentState.NotReady]: 659,
  [AgentState.LoggedOut]: 392,
  [AgentState.WrapUp]: 740,
  [AgentState.QueueCall]: 1047,
  [AgentState.OtherCall]: 1047,
};

/**
 * The sound for a result: the site's prompt for the outcome if it set one, else the tone
 * pattern, followed (for a success) by one beep per queue changed. `states` are the queues'
 * states in queue order for `status`.
 */
export function promptFor(r: FacResult, prompts: Readonly<Record<string, string>> | undefined, states: readonly State[] = []): string {
  const site = prompts?.[r.outcome];
  if (site !== undefined) return site;
  if (r.outcome === 'status') return stream(...(states.length === 0 ? [tone(500, 100, STATE_TONES[AgentState.LoggedOut])] : states.map((s) => tone(250, 350, STATE_TONES[s]))));
  const beeps = r.status === 200 ? Array.from({ length: Math.min(r.queues, 9) }, () => QUEUE_BEEP) : [];
  return stream(...DEFAULT_PATTERNS[r.outcome], ...beeps);
}
