/**
 * How an agent state looks: a label in words, a colour, and a shape, so that a reader who
 * cannot tell the colours apart still tells the states apart (the shape and the word differ).
 */
import { h } from './dom';
import type { Reason } from './api';
import type { AgentState } from './wire';

/** Label and shape of each state. */
export const STATES: Record<AgentState, { label: string; shape: string }> = {
  ready: { label: 'Ready', shape: 'circle' },
  not_ready: { label: 'Not Ready', shape: 'square' },
  queue_call: { label: 'Queue Call', shape: 'diamond' },
  other_call: { label: 'Other Call', shape: 'triangle' },
  wrap_up: { label: 'Wrap Up', shape: 'bar' },
  logged_out: { label: 'Logged Out', shape: 'ring' },
};

/** The order states are listed in (the busiest first). */
export const STATE_ORDER: AgentState[] = ['queue_call', 'other_call', 'wrap_up', 'ready', 'not_ready', 'logged_out'];

/** Sign-out reasons of seed 004 (operation 0) worth a word. */
const SIGN_OUT: Record<number, string> = { 256: 'disconnected', 257: 'forced', 258: 'self', 259: 're-sign-in' };

/** A state badge: shape, then the state in words. */
export function stateBadge(state: AgentState): HTMLElement {
  const s = STATES[state];
  return h('span', { class: `state state-${state}`, 'data-state': state }, h('span', { class: `shape shape-${s.shape}`, 'aria-hidden': 'true' }), h('span', { class: 'state-label' }, s.label));
}

/** The words for a reason code in a state (Not Ready: its label; Logged Out: how). */
export function reasonText(state: AgentState, reason: number | null, reasons: readonly Reason[]): string {
  if (reason === null || reason < 0) return '';
  if (state === 'not_ready') return reasons.find((r) => r.code === reason)?.label ?? `reason ${reason}`;
  if (state === 'logged_out') return SIGN_OUT[reason] ?? '';
  return '';
}
