/**
 * Where an inbound call goes (issue "trunk routing"): a trunk's number through the call
 * center's number map (exact numbers and longest prefixes), a queue's or a number's business
 * hours, and what a closed schedule does instead. Pure: the INVITE handler acts on the
 * decision (app/sip/invite.ts).
 */
import type { CallCenterConfig, CallTarget } from '../config/schema';
import { NumberMap } from './numbers';
import { Schedule } from './schedule';

/** Where a call is sent. */
export type InboundTarget =
  | { kind: 'queue'; queue: string; priority?: number | undefined }
  | { kind: 'agent'; agent: string }
  | { kind: 'announcement'; sound: string }
  | { kind: 'number'; number: string };

/** A routing decision: the target, and why (the number map entry, a closed schedule). */
export interface InboundDecision {
  target: InboundTarget;
  /** The number map key that matched, if the number map decided. */
  entry?: string | undefined;
  /** Set when business hours sent the call to the schedule's closed target. */
  closed?: { schedule: string; local: string; holiday?: string | undefined; queue?: string | undefined } | undefined;
}

/** The target a configured {@link CallTarget} names (the config checks that it names exactly one). */
export function targetOf(t: CallTarget): InboundTarget {
  if (t.queue !== undefined) return { kind: 'queue', queue: t.queue, ...(t.priority === undefined ? {} : { priority: t.priority }) };
  if (t.agent !== undefined) return { kind: 'agent', agent: t.agent };
  if (t.announcement !== undefined) return { kind: 'announcement', sound: t.announcement };
  if (t.number !== undefined) return { kind: 'number', number: t.number };
  throw new Error('a call target names none of queue, agent, announcement, number');
}

/** The inbound routing of one call center. */
export class InboundRouter {
  private readonly numbers: NumberMap<CallCenterConfig['numbers'][string]>;
  private readonly schedules = new Map<string, Schedule>();

  constructor(private readonly cc: CallCenterConfig) {
    this.numbers = new NumberMap(cc.numbers);
    for (const [name, s] of Object.entries(cc.schedules)) this.schedules.set(name, new Schedule(s));
  }

  /** The number map's decision for a trunk's (normalised) number; undefined: no entry (404). */
  byNumber(number: string, now: number): InboundDecision | undefined {
    const m = this.numbers.match(number);
    if (m === undefined) return undefined;
    const target = targetOf(m.entry);
    return { ...this.withHours(target, now, m.entry.hours), entry: m.key };
  }

  /**
   * Business hours of a target: the number entry's `hours`, else the queue's; closed, the
   * schedule's `closed` target instead (followed once: a closed target is not checked again).
   */
  withHours(target: InboundTarget, now: number, entryHours?: string): InboundDecision {
    const name = entryHours ?? (target.kind === 'queue' ? this.cc.queues[target.queue]?.hours : undefined);
    const schedule = name === undefined ? undefined : this.schedules.get(name);
    if (name === undefined || schedule === undefined) return { target };
    const d = schedule.describe(now);
    if (d.open) return { target };
    return {
      target: targetOf(this.cc.schedules[name]!.closed),
      closed: { schedule: name, local: d.local, ...(d.holiday === undefined ? {} : { holiday: d.holiday }), ...(target.kind === 'queue' ? { queue: target.queue } : {}) },
    };
  }
}
