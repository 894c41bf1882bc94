/**
 * The Not Ready (busy) reasons a client may offer (operation 3 of seed 004): the table's own
 * and the site's 200-250 codes from config `callcenters.<cc>.busyReasons`.
 */
import type { CallCenterConfig } from './config/schema';
import { BusyReason } from './oplog';

/** One Not Ready reason as offered to a client. */
export interface BusyReasonView {
  code: number;
  label: string;
  /** `seed`: the operation-log table; `site`: the call center's config. */
  origin: 'seed' | 'site';
  /** Set by the platform or a supervisor rather than chosen by agents themselves. */
  system: boolean;
}

/** The table's busy reasons (seed 004, operation 3) with their meaning. */
export const SEED_BUSY_REASONS: readonly BusyReasonView[] = [
  { code: BusyReason.Busy, label: 'Busy', origin: 'seed', system: false },
  { code: BusyReason.NoAnswer, label: 'No answer', origin: 'seed', system: true },
  { code: BusyReason.ForcedByInspector, label: 'Forced by a QC inspector', origin: 'seed', system: true },
  { code: BusyReason.Rest, label: 'Rest', origin: 'seed', system: false },
  { code: BusyReason.PhoneUnavailable, label: 'Phone unavailable', origin: 'seed', system: false },
  { code: BusyReason.RejectedCall, label: 'Rejected a call', origin: 'seed', system: true },
];

/** The busy reasons of call center `cc`: the table's, then the site's in code order. */
export function busyReasons(cc: CallCenterConfig): BusyReasonView[] {
  const site = Object.entries(cc.busyReasons)
    .map(([code, label]) => ({ code: Number(code), label, origin: 'site' as const, system: false }))
    .sort((a, b) => a.code - b.code);
  return [...SEED_BUSY_REASONS, ...site];
}
