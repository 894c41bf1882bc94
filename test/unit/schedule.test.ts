import { Schedule } from '../../lib/routing/schedule';
import type { ScheduleConfig } from '../../lib/config/schema';
import { ConfigError } from '../../lib/errors';

/** Every instant here is given in UTC; the local time each one is meant to be is asserted. */
const utc = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`);
  return ms;
};

const closed = { announcement: 'ivr/closed.wav' };
const OFFICE = ['09:00-17:00'];

function schedule(timezone: string, weekly: ScheduleConfig['weekly'], holidays: string[] = []): Schedule {
  return new Schedule({ timezone, weekly, holidays, closed });
}

const weekdays = (ranges: string[]): ScheduleConfig['weekly'] => ({ mon: ranges, tue: ranges, wed: ranges, thu: ranges, fri: ranges });
const everyDay = (ranges: string[]): ScheduleConfig['weekly'] => ({ ...weekdays(ranges), sat: ranges, sun: ranges });

/** Asserts the instant's local time and returns whether the schedule is open then. */
function openAt(s: Schedule, iso: string, local: string): boolean {
  const d = s.describe(utc(iso));
  expect(d.local).toBe(local);
  expect(s.isOpen(utc(iso))).toBe(d.open);
  return d.open;
}

describe('Schedule.isOpen around DST changes', () => {
  const berlin = schedule('Europe/Berlin', weekdays(OFFICE));
  const newYork = schedule('America/New_York', weekdays(OFFICE));

  it('a Mon-Fri 09:00-17:00 Berlin schedule is open at 09:30 local on the Friday before the spring change (CET)', () => {
    expect(openAt(berlin, '2026-03-27T08:30:00Z', '2026-03-27T09:30:00+01:00')).toBe(true);
    expect(openAt(berlin, '2026-03-27T07:30:00Z', '2026-03-27T08:30:00+01:00')).toBe(false);
  });

  it('a Mon-Fri 09:00-17:00 Berlin schedule is open at 09:30 local on the Monday after the spring change and closed at 08:30 local', () => {
    expect(openAt(berlin, '2026-03-30T07:30:00Z', '2026-03-30T09:30:00+02:00')).toBe(true);
    expect(openAt(berlin, '2026-03-30T06:30:00Z', '2026-03-30T08:30:00+02:00')).toBe(false);
  });

  it('a Berlin schedule closes at 17:00 local after the spring change, an hour earlier in UTC', () => {
    expect(openAt(berlin, '2026-03-30T14:59:00Z', '2026-03-30T16:59:00+02:00')).toBe(true);
    expect(openAt(berlin, '2026-03-30T15:00:00Z', '2026-03-30T17:00:00+02:00')).toBe(false);
  });

  it('a Mon-Fri 09:00-17:00 Berlin schedule is open at 09:30 local on the Monday after the autumn change and closed at 08:30 local', () => {
    expect(openAt(berlin, '2026-10-26T08:30:00Z', '2026-10-26T09:30:00+01:00')).toBe(true);
    expect(openAt(berlin, '2026-10-26T07:30:00Z', '2026-10-26T08:30:00+01:00')).toBe(false);
    // The same UTC time on the Friday before was already 09:30 summer time.
    expect(openAt(berlin, '2026-10-23T07:30:00Z', '2026-10-23T09:30:00+02:00')).toBe(true);
  });

  it('a Mon-Fri 09:00-17:00 New York schedule is open at 09:30 local on the Monday after the spring change and closed at 08:30 local', () => {
    expect(openAt(newYork, '2026-03-09T13:30:00Z', '2026-03-09T09:30:00-04:00')).toBe(true);
    expect(openAt(newYork, '2026-03-09T12:30:00Z', '2026-03-09T08:30:00-04:00')).toBe(false);
    // The same UTC time on the Friday before was 08:30 standard time.
    expect(openAt(newYork, '2026-03-06T13:30:00Z', '2026-03-06T08:30:00-05:00')).toBe(false);
  });

  it('a Mon-Fri 09:00-17:00 New York schedule is open at 09:30 local on the Monday after the autumn change and closed at 08:30 local', () => {
    expect(openAt(newYork, '2026-11-02T14:30:00Z', '2026-11-02T09:30:00-05:00')).toBe(true);
    expect(openAt(newYork, '2026-11-02T13:30:00Z', '2026-11-02T08:30:00-05:00')).toBe(false);
    expect(openAt(newYork, '2026-10-30T13:30:00Z', '2026-10-30T09:30:00-04:00')).toBe(true);
  });

  it('a Berlin range over the skipped hour opens at 01:00 and closes at 04:00 local, two real hours', () => {
    const s = schedule('Europe/Berlin', { sun: ['01:00-04:00'] });
    expect(openAt(s, '2026-03-28T23:59:00Z', '2026-03-29T00:59:00+01:00')).toBe(false);
    expect(openAt(s, '2026-03-29T00:00:00Z', '2026-03-29T01:00:00+01:00')).toBe(true);
    expect(openAt(s, '2026-03-29T01:00:00Z', '2026-03-29T03:00:00+02:00')).toBe(true);
    expect(openAt(s, '2026-03-29T01:59:00Z', '2026-03-29T03:59:00+02:00')).toBe(true);
    expect(openAt(s, '2026-03-29T02:00:00Z', '2026-03-29T04:00:00+02:00')).toBe(false);
  });

  it('a New York range that starts inside the skipped hour is open from the change on', () => {
    const s = schedule('America/New_York', { sun: ['02:30-05:00'] });
    expect(openAt(s, '2026-03-08T06:59:00Z', '2026-03-08T01:59:00-05:00')).toBe(false);
    expect(openAt(s, '2026-03-08T07:00:00Z', '2026-03-08T03:00:00-04:00')).toBe(true);
  });

  it('a Berlin range inside the repeated hour is open both times 02:10 local comes round', () => {
    const s = schedule('Europe/Berlin', { sun: ['02:00-02:45'] });
    expect(openAt(s, '2026-10-25T00:10:00Z', '2026-10-25T02:10:00+02:00')).toBe(true);
    expect(openAt(s, '2026-10-25T00:50:00Z', '2026-10-25T02:50:00+02:00')).toBe(false);
    expect(openAt(s, '2026-10-25T01:10:00Z', '2026-10-25T02:10:00+01:00')).toBe(true);
    expect(openAt(s, '2026-10-25T01:50:00Z', '2026-10-25T02:50:00+01:00')).toBe(false);
  });
});

describe('Schedule.isOpen range edges and holidays', () => {
  it('opens at the first millisecond of the start and closes at the end', () => {
    const s = schedule('UTC', weekdays(OFFICE));
    expect(s.isOpen(utc('2026-06-01T08:59:59.999Z'))).toBe(false);
    expect(s.isOpen(utc('2026-06-01T09:00:00.000Z'))).toBe(true);
    expect(s.isOpen(utc('2026-06-01T16:59:59.999Z'))).toBe(true);
    expect(s.isOpen(utc('2026-06-01T17:00:00.000Z'))).toBe(false);
  });

  it('is closed on a day without ranges', () => {
    const s = schedule('UTC', weekdays(OFFICE));
    expect(s.isOpen(utc('2026-06-06T12:00:00Z'))).toBe(false); // a Saturday
  });

  it('takes a Date as well as epoch milliseconds', () => {
    const s = schedule('UTC', weekdays(OFFICE));
    expect(s.isOpen(new Date('2026-06-01T12:00:00Z'))).toBe(true);
    expect(s.isOpen(new Date('2026-06-01T18:00:00Z'))).toBe(false);
  });

  it('refuses an instant that is not a number of milliseconds', () => {
    const s = schedule('UTC', weekdays(OFFICE));
    expect(() => s.isOpen(Number.NaN)).toThrow(RangeError);
    expect(() => s.isOpen(new Date('nonsense'))).toThrow(RangeError);
  });

  it('a range ending 24:00 is open at 23:59 local and closed at midnight when the next day has no ranges', () => {
    const s = schedule('Europe/Berlin', { fri: ['18:00-24:00'] });
    expect(openAt(s, '2026-06-05T21:59:59Z', '2026-06-05T23:59:59+02:00')).toBe(true);
    expect(openAt(s, '2026-06-05T22:00:00Z', '2026-06-06T00:00:00+02:00')).toBe(false);
  });

  it('00:00-24:00 is open the whole local day', () => {
    const s = schedule('Asia/Tokyo', { wed: ['00:00-24:00'] });
    expect(openAt(s, '2026-06-02T14:59:59Z', '2026-06-02T23:59:59+09:00')).toBe(false);
    expect(openAt(s, '2026-06-02T15:00:00Z', '2026-06-03T00:00:00+09:00')).toBe(true);
    expect(openAt(s, '2026-06-03T14:59:59Z', '2026-06-03T23:59:59+09:00')).toBe(true);
    expect(openAt(s, '2026-06-03T15:00:00Z', '2026-06-04T00:00:00+09:00')).toBe(false);
  });

  it('a holiday closes the whole local day, already at 23:30 UTC the evening before in Berlin', () => {
    const s = schedule('Europe/Berlin', everyDay(['00:00-24:00']), ['2026-12-25']);
    expect(openAt(s, '2026-12-24T22:30:00Z', '2026-12-24T23:30:00+01:00')).toBe(true);
    expect(openAt(s, '2026-12-24T23:30:00Z', '2026-12-25T00:30:00+01:00')).toBe(false);
    expect(openAt(s, '2026-12-25T22:59:59Z', '2026-12-25T23:59:59+01:00')).toBe(false);
    expect(openAt(s, '2026-12-25T23:00:00Z', '2026-12-26T00:00:00+01:00')).toBe(true);
  });

  it('a holiday in New York is still open at 23:30 UTC the day itself begins (18:30 local the day before)', () => {
    const s = schedule('America/New_York', everyDay(['00:00-24:00']), ['2026-07-03']);
    expect(openAt(s, '2026-07-03T03:59:00Z', '2026-07-02T23:59:00-04:00')).toBe(true);
    expect(openAt(s, '2026-07-03T04:00:00Z', '2026-07-03T00:00:00-04:00')).toBe(false);
    expect(openAt(s, '2026-07-03T23:30:00Z', '2026-07-03T19:30:00-04:00')).toBe(false);
    expect(openAt(s, '2026-07-04T03:59:00Z', '2026-07-03T23:59:00-04:00')).toBe(false);
    expect(openAt(s, '2026-07-04T04:00:00Z', '2026-07-04T00:00:00-04:00')).toBe(true);
  });
});

describe('Schedule.describe', () => {
  it('gives the local time with its offset, the zone and the holiday', () => {
    const s = schedule('Europe/Berlin', weekdays(OFFICE), ['2026-12-25']);
    expect(s.describe(utc('2026-12-25T09:00:00Z'))).toEqual({ open: false, local: '2026-12-25T10:00:00+01:00', zone: 'Europe/Berlin', holiday: '2026-12-25' });
    expect(s.describe(utc('2026-12-28T09:00:00.250Z'))).toEqual({ open: true, local: '2026-12-28T10:00:00.250+01:00', zone: 'Europe/Berlin' });
  });
});

describe('Schedule.nextChange', () => {
  const iso = (d: Date | undefined): string | undefined => d?.toISOString();

  it('after Friday 17:00 in Berlin the next change is Monday 09:00 summer time, after the spring change', () => {
    const s = schedule('Europe/Berlin', weekdays(OFFICE));
    expect(iso(s.nextChange(utc('2026-03-27T16:00:00Z')))).toBe('2026-03-30T07:00:00.000Z');
    expect(s.describe(utc('2026-03-30T07:00:00Z')).local).toBe('2026-03-30T09:00:00+02:00');
  });

  it('while open in New York before the autumn change the next change is 17:00 local that day', () => {
    const s = schedule('America/New_York', weekdays(OFFICE));
    expect(iso(s.nextChange(utc('2026-10-30T14:00:00Z')))).toBe('2026-10-30T21:00:00.000Z');
    expect(iso(s.nextChange(utc('2026-10-30T21:00:00Z')))).toBe('2026-11-02T14:00:00.000Z');
  });

  it('is strictly after the instant asked about, even on a boundary', () => {
    const s = schedule('UTC', weekdays(OFFICE));
    expect(iso(s.nextChange(utc('2026-06-01T09:00:00Z')))).toBe('2026-06-01T17:00:00.000Z');
  });

  it('a range starting in the skipped hour opens at the change itself', () => {
    const s = schedule('Europe/Berlin', { sun: ['02:30-05:00'] });
    expect(iso(s.nextChange(utc('2026-03-28T12:00:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    expect(iso(s.nextChange(utc('2026-03-29T01:00:00Z')))).toBe('2026-03-29T03:00:00.000Z');
  });

  it('a range inside the repeated hour opens and closes twice', () => {
    const s = schedule('Europe/Berlin', { sun: ['02:00-02:45'] });
    const seen: string[] = [];
    let t = utc('2026-10-24T12:00:00Z');
    for (let i = 0; i < 5; i++) {
      const next = s.nextChange(t);
      if (next === undefined) break;
      seen.push(next.toISOString());
      t = next.getTime();
    }
    expect(seen).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T00:45:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:45:00.000Z', '2026-11-01T01:00:00.000Z']);
  });

  it('ranges touching at midnight are one opening', () => {
    const s = schedule('Europe/Berlin', { mon: ['18:00-24:00'], tue: ['00:00-06:00'] });
    expect(iso(s.nextChange(utc('2026-06-01T18:00:00Z')))).toBe('2026-06-02T04:00:00.000Z');
  });

  it('a holiday in an always-open schedule changes at its local midnights', () => {
    const s = schedule('Europe/Berlin', everyDay(['00:00-24:00']), ['2026-12-25']);
    expect(iso(s.nextChange(utc('2026-12-20T12:00:00Z')))).toBe('2026-12-24T23:00:00.000Z');
    expect(iso(s.nextChange(utc('2026-12-24T23:00:00Z')))).toBe('2026-12-25T23:00:00.000Z');
  });

  it('gives nothing when the state holds for 14 days', () => {
    expect(schedule('Europe/Berlin', everyDay(['00:00-24:00'])).nextChange(utc('2026-03-25T12:00:00Z'))).toBeUndefined();
    expect(schedule('Europe/Berlin', {}).nextChange(utc('2026-03-25T12:00:00Z'))).toBeUndefined();
  });

  it('finds a change 14 days ahead but not one further away', () => {
    const s = schedule('UTC', { mon: OFFICE });
    expect(iso(s.nextChange(utc('2026-06-01T17:00:00Z')))).toBe('2026-06-08T09:00:00.000Z');
    const holidays = ['2026-06-08', '2026-06-15'];
    expect(iso(schedule('UTC', { mon: OFFICE }, holidays).nextChange(utc('2026-06-08T09:00:00Z')))).toBe('2026-06-22T09:00:00.000Z');
    expect(schedule('UTC', { mon: OFFICE }, holidays).nextChange(utc('2026-06-08T08:59:59Z'))).toBeUndefined();
  });
});

describe('Schedule.problems', () => {
  const at = 'callcenters.default.schedules.office';
  const base: ScheduleConfig = { timezone: 'Europe/Berlin', weekly: weekdays(OFFICE), holidays: ['2026-12-25', '2028-02-29'], closed };

  it('finds nothing wrong with a well-formed schedule, touching ranges included', () => {
    expect(Schedule.problems({ ...base, weekly: { mon: ['09:00-12:00', '12:00-17:00'], tue: ['00:00-24:00'] } }, at)).toEqual([]);
    expect(Schedule.problems(base, at)).toEqual([]);
  });

  it('reports an unknown time zone', () => {
    expect(Schedule.problems({ ...base, timezone: 'Europe/Atlantis' }, at)).toEqual([`${at}.timezone: unknown time zone 'Europe/Atlantis'`]);
  });

  it('reports a range that ends before it starts or when it starts', () => {
    expect(Schedule.problems({ ...base, weekly: { mon: ['08:00-08:30', '17:00-09:00'], fri: ['10:00-10:00'] } }, at)).toEqual([
      `${at}.weekly.mon.1: 17:00-09:00 ends before it starts`,
      `${at}.weekly.fri.0: 10:00-10:00 is empty (it ends when it starts)`,
    ]);
  });

  it('reports overlapping ranges of one day, naming the earlier one', () => {
    expect(Schedule.problems({ ...base, weekly: { tue: ['09:00-12:00', '13:00-17:00', '11:00-14:00'] } }, at)).toEqual([`${at}.weekly.tue.2: 11:00-14:00 overlaps ${at}.weekly.tue.0 09:00-12:00`]);
  });

  it('reports a range that is no time of day', () => {
    expect(Schedule.problems({ ...base, weekly: { wed: ['24:00-24:00', '09:60-10:00', '9-17'] } }, at)).toEqual([
      `${at}.weekly.wed.0: '24:00-24:00' is not HH:MM-HH:MM`,
      `${at}.weekly.wed.1: '09:60-10:00' is not HH:MM-HH:MM`,
      `${at}.weekly.wed.2: '9-17' is not HH:MM-HH:MM`,
    ]);
  });

  it('reports an impossible holiday date', () => {
    expect(Schedule.problems({ ...base, holidays: ['2026-12-25', '2026-02-30', '2026-13-01', '2027-02-29'] }, at)).toEqual([
      `${at}.holidays.1: '2026-02-30' is not a calendar date`,
      `${at}.holidays.2: '2026-13-01' is not a calendar date`,
      `${at}.holidays.3: '2027-02-29' is not a calendar date`,
    ]);
  });

  it('the constructor refuses a schedule with problems', () => {
    expect(() => new Schedule({ ...base, timezone: 'Nowhere/Special' }, at)).toThrow(ConfigError);
    expect(() => new Schedule({ ...base, timezone: 'Nowhere/Special' }, at)).toThrow(`${at}.timezone: unknown time zone 'Nowhere/Special'`);
  });
});
