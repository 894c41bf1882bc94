/**
 * The browser UI's model of a queue (ui/src/queueBoard.ts): what a snapshot and the events
 * after it make of the waiting list, the members, the counters and the chart's minutes.
 */
import { QueueBoard } from '../../ui/src/queueBoard';
import type { QueueSnapshot, WireEvent, WireStats } from '../../ui/src/wire';

const T0 = 1_800_000_000_000; // a minute boundary (ms)

const STATS: WireStats = { entered: 3, answered: 1, abandoned: 0, overflow: 0, timeout: 0, closed: 0, waiting: 2, longestWaitMs: 5000, avgWaitMs: 4000, avgHandleMs: null, slaSeconds: 20, answeredInSla: 1, abandonedInSla: 0, serviceLevel: 1 };

const snapshot = (): QueueSnapshot => ({
  queue: '8000',
  name: 'Sales',
  callers: [
    { task: 't1', caller: '+1555001', position: 1, priority: 0, state: 'waiting', waitedMs: 5000 },
    { task: 't2', caller: '+1555002', position: 2, priority: 0, state: 'waiting', waitedMs: 1000 },
  ],
  members: [
    { agent: '1001', state: 'ready', reason: null, since: T0 - 60_000, callId: null },
    { agent: '1002', state: 'not_ready', reason: 4, since: T0 - 10_000, callId: null },
  ],
  stats: STATS,
});

let seq = 10;
const ev = (type: string, data: Record<string, unknown>, ts = T0 + 1000): WireEvent => ({ type, seq: ++seq, ts, ...data });
const caller = (task: string, reason: string, more: Record<string, unknown> = {}, ts?: number) => ev('queue.caller', { queue: '8000', task, caller: `+1${task}`, position: 0, reason, ...more }, ts);

describe('QueueBoard', () => {
  let b: QueueBoard;
  beforeEach(() => {
    seq = 10;
    b = new QueueBoard('8000');
    b.applySnapshot(snapshot(), 10, T0);
  });

  it('takes the waiting callers from a snapshot with the server time they started waiting', () => {
    expect(b.name).toBe('Sales');
    expect(b.callers.map((c) => [c.task, c.since])).toEqual([['t1', T0 - 5000], ['t2', T0 - 1000]]);
    expect(b.longestWait(T0 + 2000)).toBe(7000);
  });

  it('puts an enqueued caller at its position, counting a transferred caller\'s earlier wait', () => {
    b.applyEvent(caller('t3', 'enqueued', { position: 2, waitedMs: 30_000 }, T0 + 2000));
    expect(b.callers.map((c) => c.task)).toEqual(['t1', 't3', 't2']);
    expect(b.callers[1]!.since).toBe(T0 + 2000 - 30_000);
  });

  it('removes a caller that was answered, abandoned or went elsewhere, and counts it until the next queue.stats', () => {
    b.applyEvent(caller('t1', 'answered', { agent: '1001', waitedMs: 6000 }));
    b.applyEvent(caller('t2', 'abandoned'));
    expect(b.callers).toEqual([]);
    expect([b.count('answered'), b.count('abandoned')]).toEqual([2, 1]);
    // The next statistics include them: no double count.
    b.applyEvent(ev('queue.stats', { ...STATS, queue: '8000', answered: 2, abandoned: 1 }));
    expect([b.count('answered'), b.count('abandoned')]).toEqual([2, 1]);
  });

  it("keeps a ringing caller in its place with the agents it rings, until it is answered", () => {
    b.applyEvent(caller('t1', 'offered', { agents: ['1001'] }));
    expect(b.callers[0]).toMatchObject({ task: 't1', ringing: ['1001'] });
    b.applyEvent(caller('t1', 'forwarded', { position: 2, agent: '1001' }));
    expect(b.callers.map((c) => [c.task, c.ringing])).toEqual([['t2', []], ['t1', []]]);
  });

  it("changes a member's state, reason and time in state from its agent.state event, and only for its own queue", () => {
    expect(b.applyEvent(ev('agent.state', { agent: '1001', queue: '8001', state: 'not_ready', reason: 1 }))).toBe(false);
    expect(b.applyEvent(ev('agent.state', { agent: '1001', queue: '8000', state: 'not_ready', reason: 1 }, T0 + 3000))).toBe(true);
    expect(b.members.get('1001')).toEqual({ agent: '1001', state: 'not_ready', reason: 1, since: T0 + 3000 });
    expect(b.counts()).toMatchObject({ ready: 0, not_ready: 2 });
  });

  it("adds answered calls to the chart's current minute and keeps the most callers waiting in it", () => {
    b.applyHistory([{ minute: T0 - 60_000, answered: 3, waiting: 1 }]);
    b.noteWaiting(T0 + 100);
    b.applyEvent(caller('t1', 'answered', { agent: '1001' }, T0 + 500));
    b.applyEvent(caller('t9', 'enqueued', { position: 2 }, T0 + 600));
    expect(b.minutes).toEqual([
      { minute: T0 - 60_000, answered: 3, waiting: 1 },
      { minute: T0, answered: 1, waiting: 2 },
    ]);
    // A quiet minute later: the minute in between had the callers still waiting.
    b.noteWaiting(T0 + 125_000);
    expect(b.minutes.slice(-2)).toEqual([
      { minute: T0 + 60_000, answered: 0, waiting: 2 },
      { minute: T0 + 120_000, answered: 0, waiting: 2 },
    ]);
  });

  it('keeps at most the last 60 minutes', () => {
    b.noteWaiting(T0);
    b.noteWaiting(T0 + 90 * 60_000);
    expect(b.minutes).toHaveLength(60);
    expect(b.minutes.at(-1)!.minute).toBe(T0 + 90 * 60_000);
  });
});
