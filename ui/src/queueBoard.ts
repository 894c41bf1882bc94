/**
 * What a page knows of one queue, kept from its `queue:<q>` snapshot and the events after it:
 * the waiting callers in queue order (with the server time they started waiting), the
 * members' states, the statistics, and the last hour per minute for the chart. No DOM here:
 * pages render it, unit tests drive it.
 */
import type { AgentState, QueueCallerEvent, QueueSnapshot, WireEvent, WireStats } from './wire';
import { isAgentState, isQueueCaller, isQueueStats } from './wire';

/** A waiting caller. */
export interface BoardCaller {
  task: string;
  caller: string;
  priority: number;
  /** When it started waiting (server ms). */
  since: number;
  /** Agents its offer rings, while it rings. */
  ringing: string[];
}

/** A member and its state in the queue. */
export interface BoardMember {
  agent: string;
  state: AgentState;
  reason: number | null;
  /** When the state was entered (server ms), if known. */
  since: number | null;
}

/** One minute of the chart. */
export interface BoardMinute {
  /** Start of the minute (server ms). */
  minute: number;
  answered: number;
  waiting: number | null;
}

/** The counters a `queue.caller` event moves before the next `queue.stats` says so. */
const COUNTED = ['answered', 'abandoned', 'overflow', 'timeout'] as const;
type Counted = (typeof COUNTED)[number];

/** Reasons that take a caller out of the queue. */
const LEAVES = new Set(['answered', 'abandoned', 'overflow', 'rejected', 'timeout', 'closed']);

/** Minutes the chart shows. */
export const CHART_MINUTES = 60;

/** One queue as a page sees it. */
export class QueueBoard {
  name: string;
  callers: BoardCaller[] = [];
  readonly members = new Map<string, BoardMember>();
  stats: WireStats | undefined;
  /** The sequence the statistics are as of. */
  private statsSeq = 0;
  /** Counted callers since the statistics' sequence. */
  private readonly since: Record<Counted, number> = { answered: 0, abandoned: 0, overflow: 0, timeout: 0 };
  minutes: BoardMinute[] = [];

  constructor(
    readonly id: string,
    name = id,
  ) {
    this.name = name;
  }

  /** Everything from a snapshot read at server time `now` (sequence `seq`). */
  applySnapshot(s: QueueSnapshot, seq: number, now: number): void {
    this.name = s.name;
    this.callers = s.callers.map((c) => ({ task: c.task, caller: c.caller, priority: c.priority, since: now - c.waitedMs, ringing: [] }));
    this.members.clear();
    for (const m of s.members) this.members.set(m.agent, { agent: m.agent, state: m.state, reason: m.reason, since: m.since });
    this.stats = s.stats;
    this.statsSeq = seq;
    for (const k of COUNTED) this.since[k] = 0;
    this.noteWaiting(now);
  }

  /** The chart's minutes as `GET queue/{q}/history` gave them. */
  applyHistory(minutes: BoardMinute[]): void {
    this.minutes = minutes.slice(-CHART_MINUTES);
  }

  /** One event of the queue's topic; true when it changed what the board shows. */
  applyEvent(e: WireEvent): boolean {
    if (isAgentState(e)) {
      if (e.queue !== this.id) return false;
      this.members.set(e.agent, { agent: e.agent, state: e.state, reason: e.reason, since: e.ts });
      return true;
    }
    if (isQueueStats(e)) {
      if (e.queue !== this.id) return false;
      this.stats = e;
      this.statsSeq = e.seq;
      for (const k of COUNTED) this.since[k] = 0;
      return true;
    }
    if (isQueueCaller(e)) {
      if (e.queue !== this.id) return false;
      this.applyCaller(e);
      return true;
    }
    return false;
  }

  private applyCaller(e: QueueCallerEvent): void {
    const i = this.callers.findIndex((c) => c.task === e.task);
    if (e.reason === 'enqueued') {
      const c: BoardCaller = { task: e.task, caller: e.caller, priority: 0, since: e.ts - (e.waitedMs ?? 0), ringing: [] };
      if (i >= 0) this.callers.splice(i, 1);
      this.callers.splice(Math.max(0, Math.min(this.callers.length, e.position - 1)), 0, c);
      this.noteWaiting(e.ts);
      return;
    }
    if (e.reason === 'offered') {
      if (i >= 0) this.callers[i]!.ringing = e.agents ?? [];
      return;
    }
    if (e.reason === 'forwarded') {
      if (i < 0) return;
      const [c] = this.callers.splice(i, 1);
      c!.ringing = [];
      this.callers.splice(Math.max(0, Math.min(this.callers.length, e.position - 1)), 0, c!);
      return;
    }
    if (LEAVES.has(e.reason)) {
      if (i >= 0) this.callers.splice(i, 1);
      if (e.seq > this.statsSeq && (COUNTED as readonly string[]).includes(e.reason)) this.since[e.reason as Counted] += 1;
      if (e.reason === 'answered') this.minuteAt(e.ts).answered += 1;
    }
  }

  /** A counter as of now: the statistics plus the callers counted since. */
  count(k: Counted): number {
    return (this.stats?.[k] ?? 0) + this.since[k];
  }

  /** The longest current wait (ms) at server time `now`. */
  longestWait(now: number): number | null {
    return this.callers.length === 0 ? null : Math.max(...this.callers.map((c) => now - c.since));
  }

  /** Members in each state. */
  counts(): Record<AgentState, number> {
    const out: Record<AgentState, number> = { ready: 0, not_ready: 0, queue_call: 0, other_call: 0, wrap_up: 0, logged_out: 0 };
    for (const m of this.members.values()) out[m.state] += 1;
    return out;
  }

  /** The chart's minute holding server time `t` (added, and older ones dropped, as time goes on). */
  minuteAt(t: number): BoardMinute {
    const start = Math.floor(t / 60000) * 60000;
    const last = this.minutes[this.minutes.length - 1];
    if (last !== undefined && last.minute === start) return last;
    if (last !== undefined && last.minute > start) return this.minutes.find((m) => m.minute === start) ?? { minute: start, answered: 0, waiting: null };
    // Minutes without an event between the last one and now had the callers waiting now.
    for (let m = (last?.minute ?? start - 60000) + 60000; m <= start; m += 60000) this.minutes.push({ minute: m, answered: 0, waiting: this.callers.length });
    if (this.minutes.length > CHART_MINUTES) this.minutes.splice(0, this.minutes.length - CHART_MINUTES);
    return this.minutes[this.minutes.length - 1]!;
  }

  /** Records the number waiting now in the current minute (its most waiting). */
  noteWaiting(now: number): void {
    const m = this.minuteAt(now);
    m.waiting = Math.max(m.waiting ?? 0, this.callers.length);
  }
}
