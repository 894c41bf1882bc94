/**
 * Crash safety of calls (lib/calls/guard.ts): an instance that dies with agents on a call
 * must not leave them there. Another instance ends the calls once the dead one stops beating.
 */
import { CallGuard } from '../../lib/calls/guard';
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
    const guard = new CallGuard({ redis, config, engine, logger });
    const worker = new DeadlineWorker({ redis, config, logger, handlers: { guard: guard.onDeadline } });
    return { engine, guard, worker };
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
});
