/**
 * queue.stats events (DESIGN.md section 7, issue 4 item 6): published from a Redis deadline
 * per queue by whichever instance claims it, only when the figures changed, with the same
 * figures GET queue shows plus the members per agent state.
 */
import { randomUUID } from 'node:crypto';
import { QueueStatsPublisher, queueStatsSnapshot, type QueueStatsEvent } from '../../lib/acd/statsPublisher';
import { TaskStore } from '../../lib/acd/taskStore';
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { createLogger } from '../../lib/logger';
import { callCenterKeys, queueStatsMember } from '../../lib/store/keys';
import { DeadlineWorker } from '../../lib/timers/deadlineWorker';
import { waitForEvent } from '../helpers/events';
import { startHarness, type Harness } from '../helpers/harness';

const keys = callCenterKeys('ccs', 'default');
type StatsEvent = CcsEvent & QueueStatsEvent;

describe('queue.stats events', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    await h.raw.flushall();
  });

  const instance = (name: string, queueStatsMs = 150) => {
    const { engine, redis, config } = h.engine({ instanceId: name, queueStatsMs, pollMs: 20 });
    const publisher = new QueueStatsPublisher({ redis, config });
    const store = new TaskStore({ redis, config });
    const worker = new DeadlineWorker({ redis, config, logger: createLogger('silent'), handlers: { qstats: async (cc, args, token) => void (await publisher.onDeadline(cc, args, token)) } });
    return { engine, publisher, store, worker, redis, config };
  };
  /** Claims the queue's stats deadline as a worker would, returning the claim token. */
  const claim = async (x: ReturnType<typeof instance>, queue: string): Promise<string> => {
    await h.raw.zadd(keys.deadlines, 0, queueStatsMember(queue));
    const [claimed] = await x.redis.ccsDeadlineClaim(keys.deadlines, keys.deadlineClaims, keys.deadlineToken, 5000, 10);
    const i = claimed.indexOf(queueStatsMember(queue));
    if (i < 0) throw new Error(`deadline of ${queue} not claimed`);
    return claimed[i + 1]!;
  };
  const statsEvents = async (queue: string): Promise<StatsEvent[]> => (await h.events()).map((e) => e as unknown as StatsEvent).filter((e) => e.type === 'queue.stats' && e.queue === queue);
  const enqueue = (x: ReturnType<typeof instance>, queue = '8000') =>
    x.store.enqueue('default', { id: randomUUID(), queue, priority: 0, callId: randomUUID(), caller: '5550100', owner: 'test', maxWaitMs: 600000 });

  it('publishes the waiting callers, counters and members per state of a queue', async () => {
    const x = instance('a');
    await x.engine.login('default', '1001');
    await x.engine.login('default', '1003');
    await x.engine.notReady('default', '1003', { queue: '8000', reason: 4 });
    await enqueue(x);
    const seq = await x.publisher.onDeadline('default', ['8000'], await claim(x, '8000'));
    expect(seq).toBeGreaterThan(0);
    const [ev] = await statsEvents('8000');
    expect(ev).toMatchObject({ seq, queue: '8000', waiting: 1, entered: 1, answered: 0, abandoned: 0, avgWaitMs: null });
    expect(ev!.agents).toMatchObject({ [S.Ready]: 1, [S.NotReady]: 1, [S.LoggedOut]: 1 });
    expect(ev!.longestWaitMs).toBeGreaterThanOrEqual(0);
    // The same figures as a fresh read (bar the growing wait).
    const now = await queueStatsSnapshot(h.raw, keys, x.config.callcenters.default!, '8000');
    expect({ ...ev, longestWaitMs: 0 }).toMatchObject({ ...now, longestWaitMs: 0 });
  });

  it('publishes nothing when the figures have not changed, and again once they do', async () => {
    const x = instance('a');
    await x.engine.login('default', '1001');
    expect(await x.publisher.onDeadline('default', ['8000'], await claim(x, '8000'))).toBeGreaterThan(0);
    expect(await x.publisher.onDeadline('default', ['8000'], await claim(x, '8000'))).toBe(0);
    expect(await statsEvents('8000')).toHaveLength(1);
    await x.engine.notReady('default', '1001');
    expect(await x.publisher.onDeadline('default', ['8000'], await claim(x, '8000'))).toBeGreaterThan(0);
    const evs = await statsEvents('8000');
    expect(evs.map((e) => e.agents[S.Ready])).toEqual([1, 0]);
  });

  it('re-arms the deadline one period later, and a claim that is no longer ours publishes nothing', async () => {
    const x = instance('a', 60000);
    const token = await claim(x, '8000');
    const [sec] = await h.raw.time();
    expect(await x.publisher.onDeadline('default', ['8000'], token)).toBeGreaterThan(0);
    const due = Number(await h.raw.zscore(keys.deadlines, queueStatsMember('8000')));
    expect(due).toBeGreaterThanOrEqual(Number(sec) * 1000 + 60000 - 1000);
    expect(await h.raw.hexists(keys.deadlineClaims, queueStatsMember('8000'))).toBe(0);
    await x.engine.login('default', '1001');
    // Replaying the consumed token: refused, no event, the deadline left as it is.
    expect(await x.publisher.onDeadline('default', ['8000'], token)).toBe(0);
    expect(await statsEvents('8000')).toHaveLength(1);
    expect(Number(await h.raw.zscore(keys.deadlines, queueStatsMember('8000')))).toBe(due);
  });

  it('with two instances running, each queue is published once per period while a caller waits', async () => {
    const a = instance('a');
    const b = instance('b');
    await a.publisher.seed();
    await b.publisher.seed();
    expect(await h.raw.zrangebyscore(keys.deadlines, 0, 0)).toEqual(['qstats|8000', 'qstats|8001']);
    await enqueue(a);
    a.worker.start();
    b.worker.start();
    try {
      // The wait grows, so every period has news: wait for the sixth publication of 8000.
      let last = 0;
      for (let i = 0; i < 6; i++) last = (await waitForEvent(h.server.url, keys.events, (e) => e.type === 'queue.stats' && e.queue === '8000', last)).seq;
    } finally {
      await a.worker.stop();
      await b.worker.stop();
    }
    const evs = await statsEvents('8000');
    // One deadline, one claimer per period: consecutive publications are a period apart
    // (Redis clock), never two in the same period from the two instances.
    for (let i = 1; i < evs.length; i++) expect(evs[i]!.ts - evs[i - 1]!.ts).toBeGreaterThanOrEqual(150);
    expect(evs.map((e) => e.longestWaitMs)).toEqual([...evs.map((e) => e.longestWaitMs)].sort((p, q) => p - q));
    expect((await statsEvents('8001')).length).toBe(1); // 8001 is quiet: published once
  });
});
