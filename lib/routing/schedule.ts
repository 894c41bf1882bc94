/**
 * Business hours (issue "trunk routing"): whether a schedule is open at an instant, judged by
 * the wall clock of the schedule's IANA time zone. Time zones and DST come from luxon, which
 * follows the tz database, so nothing here does offset arithmetic of its own beyond asking the
 * zone for its offset at an instant.
 */
import { DateTime, IANAZone } from 'luxon';
import { ConfigError } from '../errors';
import { WEEKDAYS, type CallTarget, type ScheduleConfig } from '../config/schema';

const MINUTES_PER_DAY = 24 * 60;
const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 24 * 60 * MS_PER_MINUTE;
/** How far {@link Schedule.nextChange} looks ahead. */
const LOOKAHEAD_DAYS = 14;
/**
 * Offset samples are this far apart when looking for DST changes: no zone changes its offset
 * twice within six hours, so two samples with the same offset have no change between them.
 */
const SAMPLE_MS = 6 * 60 * MS_PER_MINUTE;

const RANGE = /^([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

/** One opening range of a day, in minutes after local midnight: start inclusive, end exclusive. */
interface Range {
  start: number;
  end: number;
}

/** Minutes after midnight of `HH:MM` (00:00..24:00), or undefined when it is no such time. */
function minutesOf(hh: string, mm: string): number | undefined {
  const h = Number(hh);
  const m = Number(mm);
  if (m > 59 || h > 24 || (h === 24 && m !== 0)) return undefined;
  return h * 60 + m;
}

function parseRange(text: string): Range | undefined {
  const r = RANGE.exec(text);
  if (r === null) return undefined;
  const start = minutesOf(r[1]!, r[2]!);
  const end = minutesOf(r[3]!, r[4]!);
  // 24:00 only ends a day; as a start it would be the next day's 00:00.
  if (start === undefined || end === undefined || start === MINUTES_PER_DAY) return undefined;
  return { start, end };
}

function isDate(text: string): boolean {
  return DATE.test(text) && DateTime.fromISO(text, { zone: 'UTC' }).isValid;
}

function instant(at: Date | number): number {
  const ms = typeof at === 'number' ? at : at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid instant: ${String(at)}`);
  return ms;
}

/** What {@link Schedule.describe} tells logs and events. */
export interface ScheduleState {
  open: boolean;
  /** The instant as the schedule's local time, ISO 8601 with its offset. */
  local: string;
  zone: string;
  /** The local date when it is a holiday. */
  holiday?: string;
}

/**
 * A business-hours schedule (`callcenters.<cc>.schedules.<name>`).
 *
 * It is open at an instant when the instant's local date (in `timezone`) is not a holiday and
 * its local time lies in one of the ranges of its local weekday, start inclusive and end
 * exclusive (`09:00-17:00` is open at 09:00 and closed at 17:00; `24:00` is the end of the
 * day). A range cannot pass midnight: `22:00-02:00` is written as `22:00-24:00` on one day and
 * `00:00-02:00` on the next.
 *
 * Across a DST change the wall clock decides: 09:00 local opens on both sides of it; a range
 * that covers the skipped hour is that much shorter in real time, one that covers the
 * repeated hour that much longer, and a repeated local time is open or closed both times.
 */
export class Schedule {
  /** The configured time zone name. */
  readonly zone: string;
  /** What callers get while it is closed. */
  readonly closed: CallTarget;
  private readonly tz: IANAZone;
  /** Ranges by luxon weekday - 1 (0 = Monday), sorted by start. */
  private readonly days: Range[][];
  private readonly holidays: ReadonlySet<string>;

  /** @throws ConfigError with {@link Schedule.problems} (under `at`) when the schedule has any. */
  constructor(config: ScheduleConfig, at = 'schedule') {
    const problems = Schedule.problems(config, at);
    if (problems.length > 0) throw new ConfigError(problems);
    this.zone = config.timezone;
    this.closed = config.closed;
    this.tz = IANAZone.create(config.timezone);
    this.days = WEEKDAYS.map((d) =>
      (config.weekly[d] ?? [])
        .map(parseRange)
        .filter((r): r is Range => r !== undefined)
        .sort((a, b) => a.start - b.start),
    );
    this.holidays = new Set(config.holidays);
  }

  /**
   * Problems of a schedule that its schema cannot express, each naming its key under `at`:
   * an unknown time zone, a range that is not a time of day or does not end after it starts,
   * two ranges of one day that overlap (touching, `09:00-12:00` and `12:00-17:00`, is fine),
   * and a holiday that is no calendar date.
   */
  static problems(s: ScheduleConfig, at: string): string[] {
    const problems: string[] = [];
    if (!IANAZone.isValidZone(s.timezone)) problems.push(`${at}.timezone: unknown time zone '${s.timezone}'`);
    for (const day of WEEKDAYS) {
      const parsed: { i: number; text: string; r: Range }[] = [];
      (s.weekly[day] ?? []).forEach((text, i) => {
        const key = `${at}.weekly.${day}.${i}`;
        const r = parseRange(text);
        if (r === undefined) problems.push(`${key}: '${text}' is not HH:MM-HH:MM`);
        else if (r.end < r.start) problems.push(`${key}: ${text} ends before it starts`);
        else if (r.end === r.start) problems.push(`${key}: ${text} is empty (it ends when it starts)`);
        else {
          const clash = parsed.find((p) => p.r.start < r.end && r.start < p.r.end);
          if (clash !== undefined) problems.push(`${key}: ${text} overlaps ${at}.weekly.${day}.${clash.i} ${clash.text}`);
          parsed.push({ i, text, r });
        }
      });
    }
    s.holidays.forEach((h, i) => {
      if (!isDate(h)) problems.push(`${at}.holidays.${i}: '${h}' is not a calendar date`);
    });
    return problems;
  }

  private local(at: Date | number): DateTime {
    return DateTime.fromMillis(instant(at), { zone: this.tz });
  }

  private openAt(t: DateTime): boolean {
    if (this.holidays.has(t.toISODate() ?? '')) return false;
    const minute = t.hour * 60 + t.minute;
    return (this.days[t.weekday - 1] ?? []).some((r) => r.start <= minute && minute < r.end);
  }

  /** Whether the schedule is open at `at` (an instant; its local time is what counts). */
  isOpen(at: Date | number): boolean {
    return this.openAt(this.local(at));
  }

  /** The state at `at` for logs and events. */
  describe(at: Date | number): ScheduleState {
    const t = this.local(at);
    const date = t.toISODate() ?? '';
    const out: ScheduleState = { open: this.openAt(t), local: t.toISO({ suppressMilliseconds: true }) ?? '', zone: this.zone };
    if (this.holidays.has(date)) out.holiday = date;
    return out;
  }

  /**
   * The first instant after `at`, at most 14 days later, at which the schedule opens or
   * closes; undefined when it stays as it is that long.
   *
   * The state can only change where the local wall clock reaches a range's start or end or a
   * midnight, or jumps (a DST change). Those instants are listed and the first whose state
   * differs from now is the answer: between two neighbours nothing can change. A wall time
   * that occurs twice (the repeated hour) gives two candidates, one that does not occur (the
   * skipped hour) none, the DST change itself standing in for it.
   */
  nextChange(at: Date | number): Date | undefined {
    const from = instant(at);
    const to = from + LOOKAHEAD_DAYS * MS_PER_DAY;
    const { offsets, changes } = this.offsetsBetween(from - MS_PER_DAY, to + MS_PER_DAY);
    const candidates = changes.filter((c) => c > from && c <= to);
    const first = this.local(from).startOf('day');
    for (let d = 0; d <= LOOKAHEAD_DAYS + 1; d++) {
      const day = first.plus({ days: d });
      // The local midnight of `day` as if the zone were UTC; minus an offset it is an instant.
      const midnight = Date.UTC(day.year, day.month - 1, day.day);
      const minutes = new Set<number>([0]);
      for (const r of this.days[day.weekday - 1] ?? []) minutes.add(r.start).add(r.end);
      for (const m of minutes)
        for (const o of offsets) {
          const t = midnight + (m - o) * MS_PER_MINUTE;
          if (t > from && t <= to && this.tz.offset(t) === o) candidates.push(t);
        }
    }
    candidates.sort((a, b) => a - b);
    const now = this.isOpen(from);
    const hit = candidates.find((t) => this.isOpen(t) !== now);
    return hit === undefined ? undefined : new Date(hit);
  }

  /** The zone's offsets (minutes) in force between two instants and the instants they change. */
  private offsetsBetween(start: number, end: number): { offsets: Set<number>; changes: number[] } {
    const offsets = new Set<number>();
    const changes: number[] = [];
    let prev = this.tz.offset(start);
    offsets.add(prev);
    for (let t = start + SAMPLE_MS; t < end + SAMPLE_MS; t += SAMPLE_MS) {
      const o = this.tz.offset(t);
      if (o === prev) continue;
      // Bisect to the millisecond: `lo` still has the old offset, `hi` the new one.
      let lo = t - SAMPLE_MS;
      let hi = t;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (this.tz.offset(mid) === prev) lo = mid;
        else hi = mid;
      }
      changes.push(hi);
      offsets.add(o);
      prev = o;
    }
    return { offsets, changes };
  }
}
