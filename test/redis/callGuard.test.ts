/**
 * Crash safety of calls (lib/calls/guard.ts): an instance that dies with agents on a call
 * must not leave them there. Another instance ends the calls once the dead one stops beating.
 */
import { randomUUID } from 'node:crypto';
import { TaskStore } from '../../lib/acd/taskStore';
import { CallGuard } from '../../lib/calls/guard';
import { ConversationStore } from '../../lib/conversation/store';
import { LegKind, LegState } from '../../lib/conversation/model';
import { Registrar } from '../../lib/sip/registrar';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { createLogger } from '../../lib/logger';
import { DeadlineWorker } from '../../lib/timers/deadlineWorker';
import { startHarness, type Harness } from '../helpers/harness';
import { waitForEvent } from '../helpers/events';

describe('call guard', () => {
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

  const instance = (name: string) => {
    const { engine, redis, config } = h.engine({ callGuardMs: 600, instanceId: name });
    const logger = createLogger('silent');
    const store = new TaskStore({ redis, config });
    const conversations = new ConversationStore({ redis, config });
    const guard = new CallGuard({ redis, config, engine, logger, endTask: (cc, id, q, reason, agent) => store.end(cc, id, q, reason, agent), endConversations: (cc, owner) => conversations.endOwnedBy(cc, owner) });
    let fired: (kind: string) => void = () => undefined;
    /** Resolves when this instance's worker has handled a deadline of `kind`. */
    const handled = (kind: string): Promise<void> => new Promise((resolve) => (fired = (k) => k === kind && resolve()));
    const worker = new DeadlineWorker({ redis, config, logger, handlers: { guard: guard.onDeadline }, onFired: (k) => fired(k) });
    const registrar = new Registrar({ redis, config });
    return { engine, guard, worker, store, registrar, handled, conversations };
  };

  /** Queues a caller the way the queue-call handler does: guarded first, then enqueued. */
  const queueCaller = async (x: ReturnType<typeof instance>, callId: string): Promise<string> => {
    const id = randomUUID();
    await x.guard.track('default', callId, [], { id, queue: '8000' });
    await x.store.enqueue('default', { id, queue: '8000', priority: 0, callId, caller: '5550100', owner: x.guard.incarnation, maxWaitMs: 600000 });
    return id;
  };

  it('agents on a call of an instance that stopped beating are returned to their states by another instance', async () => {
    const a = instance('a');
    const b = instance('b');
    await a.engine.login('default', '1001');
    await a.engine.login('default', '1003');
    await a.guard.track('default', 'call-1', ['1001', '1003']);
    await a.engine.callStarted('default', '1001', { callId: 'call-1', op: 41 });
    await a.engine.callStarted('default', '1003', { callId: 'call-1', op: 41 });
    // Instance a "crashes": it never beats and never ends the call. Instance b only runs timers.
    b.worker.start();
    b.guard.start();
    try {
      await waitForEvent(h.server.url, 'ccs:{default}:events', (e) => e.type === 'agent.state' && e.agent === '1003' && e.queue === '8001' && e.prev === S.OtherCall);
      expect((await a.engine.states('default', '1001')).map((v) => v.state)).toEqual([S.Ready]);
      expect((await a.engine.states('default', '1003')).map((v) => v.state)).toEqual([S.Ready, S.NotReady]);
      expect(await h.raw.exists(`ccs:{default}:guard:${a.guard.incarnation}`)).toBe(0);
    } finally {
      await b.worker.stop();
      await b.guard.stop();
    }
  });

  it('a live instance keeps its calls: heartbeats push its deadline out and nobody ends them', async () => {
    const a = instance('a');
    const b = instance('b');
    await a.engine.login('default', '1001');
    await a.guard.track('default', 'call-2', ['1001']);
    await a.engine.callStarted('default', '1001', { callId: 'call-2' });
    const member = `guard|${a.guard.incarnation}`;
    await a.guard.beat();
    const [sec, usec] = await h.raw.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    // The beat put the deadline a full guard time (600 ms) after Redis's clock.
    const due = Number(await h.raw.zscore('ccs:{default}:deadlines', member));
    expect(due).toBeGreaterThan(now + 600 - 100);
    expect(due).toBeLessThanOrEqual(now + 600);
    await b.worker.tick();
    expect((await a.engine.states('default', '1001')).map((v) => v.state)).toEqual([S.OtherCall]);
    // The call ends normally: once nothing is tracked, a beat removes the deadline.
    await a.engine.callEnded('default', '1001', { callId: 'call-2' });
    await a.guard.untrack('default', 'call-2');
    await a.guard.beat();
    expect(await h.raw.zscore('ccs:{default}:deadlines', member)).toBeNull();
  });

  it('a caller still waiting in the queue of an instance that stopped is closed with an event, and the callers behind it are served', async () => {
    const a = instance('a');
    const b = instance('b');
    const orphan = await queueCaller(a, 'call-orphan');
    const next = await queueCaller(b, 'call-next');
    await b.engine.login('default', '1001');
    await b.registrar.register('default', {
      agent: '1001', contacts: [{ uri: 'sip:1001@127.0.0.1:5099', expires: 3600 }], callId: 'reg-1001', cseq: 1, source: '127.0.0.1:5099', transport: 'udp', server: 'test', userAgent: 'test',
    });
    // The orphan is first in line: while its instance lives, the caller behind it must wait.
    expect(await b.store.reserve('default', next, '8000', ['1001'], 1, 5000)).toBe('not_first');
    // Instance a "crashes": it never beats. Instance b runs its timers and closes a's task.
    b.worker.start();
    try {
      const ev = await waitForEvent(h.server.url, 'ccs:{default}:events', (e) => e.type === 'queue.caller' && e.task === orphan && e.reason === 'closed');
      expect(ev).toMatchObject({ queue: '8000', caller: '5550100' });
      expect(await b.store.get('default', orphan)).toMatchObject({ state: 'ended', endReason: 'closed' });
      expect(await h.raw.hget('ccs:{default}:queue:8000:stats', 'closed')).toBe('1');
      const got = await b.store.reserve('default', next, '8000', ['1001'], 1, 5000);
      expect(Array.isArray(got) && got.map((r) => r.agent)).toEqual(['1001']);
      expect(await h.raw.exists(`ccs:{default}:guard:${a.guard.incarnation}`)).toBe(0);
    } finally {
      await b.worker.stop();
    }
  });

  it('an answered queue call of an instance that stopped ends for its agent and its task is closed without a second caller event', async () => {
    const a = instance('a');
    const b = instance('b');
    await a.engine.login('default', '1001');
    await a.registrar.register('default', {
      agent: '1001', contacts: [{ uri: 'sip:1001@127.0.0.1:5099', expires: 3600 }], callId: 'reg-1001', cseq: 1, source: '127.0.0.1:5099', transport: 'udp', server: 'test', userAgent: 'test',
    });
    const id = await queueCaller(a, 'call-q');
    const [r] = (await a.store.reserve('default', id, '8000', ['1001'], 1, 5000)) as { agent: string; token: string; value: string }[];
    expect((await a.store.claimAnswer('default', id, '8000', r!)).ok).toBe(true);
    await a.guard.track('default', 'call-q', ['1001'], { id, queue: '8000' });
    await a.engine.callStarted('default', '1001', { callId: 'call-q', acdQueue: '8000' });
    const guardFired = b.handled('guard');
    b.worker.start();
    try {
      await guardFired;
      expect((await a.engine.states('default', '1001')).map((v) => v.state)).toEqual([S.WrapUp]);
      expect(await h.raw.exists(`ccs:{default}:guard:${a.guard.incarnation}`)).toBe(0);
      expect(await b.store.get('default', id)).toMatchObject({ state: 'ended', endReason: 'closed', agent: '1001' });
      const stats = await h.raw.hgetall('ccs:{default}:queue:8000:stats');
      expect(stats).toMatchObject({ answered: '1', handled: '1' });
      expect(stats.closed).toBeUndefined();
      const reasons = (await h.events()).map((e) => e as unknown as { type: string; reason?: string }).filter((e) => e.type === 'queue.caller').map((e) => e.reason);
      expect(reasons).toEqual(['enqueued', 'offered', 'answered']);
    } finally {
      await b.worker.stop();
    }
  });

  it('the conversations of an instance that stopped are ended by another, with their legs; those of a live instance stay', async () => {
    const a = instance('a');
    const b = instance('b');
    await a.engine.login('default', '1001');
    await a.guard.track('default', 'call-c', ['1001']);
    await a.conversations.create('default', { id: 'conv-a', owner: a.guard.incarnation });
    await a.conversations.join('default', 'conv-a', { leg: 'l1', kind: LegKind.Agent, agent: '1001', mode: 1, state: LegState.Up });
    await b.conversations.create('default', { id: 'conv-b', owner: b.guard.incarnation });
    const guardFired = b.handled('guard');
    b.worker.start();
    try {
      await guardFired;
      expect(await b.conversations.get('default', 'conv-a')).toMatchObject({ state: 'ended', legs: [{ leg: 'l1', state: 'gone' }] });
      expect(await b.conversations.ofAgent('default', '1001')).toEqual([]);
      expect((await b.conversations.list('default')).map((c) => c.id)).toEqual(['conv-b']);
    } finally {
      await b.worker.stop();
    }
  });
});
