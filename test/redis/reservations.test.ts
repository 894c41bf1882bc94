/**
 * Leased reservations with fencing tokens (DESIGN.md section 6), raced by two instances on a
 * real Redis: one agent never holds two reservations, one task is never offered twice at once,
 * an expired lease frees the agent by itself and a stale token can no longer answer.
 */
import { randomUUID } from 'node:crypto';
import { TaskStore, type Reservation } from '../../lib/acd/taskStore';
import { AgentEngine } from '../../lib/agent/engine';
import { Registrar } from '../../lib/sip/registrar';
import { startHarness, type Harness } from '../helpers/harness';

const AGENTS = Array.from({ length: 8 }, (_, i) => `a${i + 1}`);

describe('reservations', () => {
  let h: Harness;
  let a: { store: TaskStore; engine: AgentEngine };
  let b: { store: TaskStore; engine: AgentEngine };

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  beforeEach(async () => {
    await h.raw.flushall();
    const mk = (id: string) => {
      const { engine, redis, config } = h.engine({ extraAgents: AGENTS.length, instanceId: id });
      return { store: new TaskStore({ redis, config }), engine, registrar: new Registrar({ redis, config }) };
    };
    const ia = mk('a');
    a = ia;
    b = mk('b');
    for (const ag of AGENTS) {
      await ia.engine.login('default', ag);
      await ia.registrar.register('default', {
        agent: ag,
        contacts: [{ uri: `sip:${ag}@127.0.0.1:5099`, expires: 3600 }],
        callId: `reg-${ag}`,
        cseq: 1,
        source: '127.0.0.1:5099',
        transport: 'udp',
        server: 'test',
        userAgent: 'test',
      });
    }
  });

  const task = async (store: TaskStore, opts: { conditions?: { agents: string[] } } = {}): Promise<string> => {
    const id = randomUUID();
    await store.enqueue('default', { id, queue: '8000', priority: 0, callId: `call-${id}`, caller: '+15550100', owner: 'test', maxWaitMs: 600000, ...opts });
    return id;
  };
  const shuffled = <T>(xs: T[]): T[] => [...xs].sort(() => Math.random() - 0.5);

  it('two instances racing for the same tasks for 1000 rounds never double-reserve an agent or double-offer a task', async () => {
    const held = new Map<string, string>(); // agent -> task
    const offering = new Set<string>();
    let wins = 0;
    let refusals = 0;
    // Tasks with conditions may all reserve at once; a few unconditioned ones race for the head.
    const tasks = [await task(a.store), await task(b.store), ...(await Promise.all([1, 2, 3].map(() => task(a.store, { conditions: { agents: AGENTS } }))))];
    for (let round = 0; round < 1000; round++) {
      const t = tasks[round % tasks.length]!;
      const attempt = async (store: TaskStore): Promise<Reservation[] | string> => store.reserve('default', t, '8000', shuffled(AGENTS), 1 + (round % 2), 60000);
      const [ra, rb] = await Promise.all([attempt(a.store), attempt(b.store)]);
      const won = [ra, rb].filter((r): r is Reservation[] => Array.isArray(r));
      refusals += 2 - won.length;
      // One task, one offer at a time: never both instances.
      expect(won.length).toBeLessThanOrEqual(1);
      for (const rs of won) {
        expect(offering.has(t)).toBe(false);
        offering.add(t);
        wins++;
        for (const r of rs) {
          expect(held.get(r.agent)).toBeUndefined();
          held.set(r.agent, t);
          expect(await a.store.reservationOf('default', r.agent)).toBe(r.value);
        }
        // End the offer: release the leases (fencing values) and put the task back.
        const store = round % 3 === 0 ? b.store : a.store;
        for (const r of rs) {
          expect(await store.release('default', r)).toBe(true);
          held.delete(r.agent);
        }
        expect(await store.requeue('default', t, '8000')).toBe(true);
        offering.delete(t);
      }
    }
    expect(wins).toBeGreaterThan(500);
    expect(refusals).toBeGreaterThan(0);
    // Nothing left reserved.
    for (const ag of AGENTS) expect(await a.store.reservationOf('default', ag)).toBeNull();
  });

  it('concurrent tasks never get the same agent: many reservations in flight at once stay disjoint', async () => {
    const tasks = await Promise.all(Array.from({ length: 12 }, (_, i) => task(i % 2 ? a.store : b.store, { conditions: { agents: AGENTS } })));
    const results = await Promise.all(tasks.map((t, i) => (i % 2 ? a.store : b.store).reserve('default', t, '8000', shuffled(AGENTS), 1, 60000)));
    const agents = results.flatMap((r) => (Array.isArray(r) ? r.map((x) => x.agent) : []));
    expect(agents).toHaveLength(AGENTS.length); // 12 tasks, 8 agents: 8 offers, 4 refused
    expect(new Set(agents).size).toBe(agents.length);
    expect(results.filter((r) => r === 'no_agent')).toHaveLength(4);
  });

  it('unconditioned tasks are served in order: only the first waiting one may reserve', async () => {
    const first = await task(a.store);
    const second = await task(b.store);
    expect(await b.store.reserve('default', second, '8000', AGENTS, 1, 60000)).toBe('not_first');
    const got = await a.store.reserve('default', first, '8000', AGENTS, 1, 60000);
    expect(Array.isArray(got)).toBe(true);
    expect(Array.isArray(await b.store.reserve('default', second, '8000', AGENTS, 1, 60000))).toBe(true);
  });

  it('callers of equal priority keep their arrival order even within one millisecond', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await task(i % 2 ? a.store : b.store));
    expect(await h.raw.zrange('ccs:{default}:queue:8000:tasks', 0, -1)).toEqual(ids);
  });

  it('only Ready, registered agents are reserved', async () => {
    await a.engine.notReady('default', 'a1');
    await h.raw.del('ccs:{default}:reg:a2');
    const t = await task(a.store, { conditions: { agents: AGENTS } });
    const got = await a.store.reserve('default', t, '8000', ['a1', 'a2', 'a3'], 3, 60000);
    expect(Array.isArray(got) && got.map((r) => r.agent)).toEqual(['a3']);
  });

  it('an expired lease frees the agent by itself, and its stale token can no longer answer', async () => {
    const t1 = await task(a.store, { conditions: { agents: ['a1'] } });
    const got = await a.store.reserve('default', t1, '8000', ['a1'], 1, 150);
    expect(Array.isArray(got)).toBe(true);
    const stale = (got as Reservation[])[0]!;
    // Wait on Redis itself: the key disappears when the lease runs out (no sleeps in the test).
    const watcher = h.raw.duplicate();
    await watcher.config('SET', 'notify-keyspace-events', 'Kgx');
    await watcher.subscribe('__keyspace@0__:ccs:{default}:resv:a1');
    const expired = new Promise<void>((resolve) => watcher.on('message', (_c: string, ev: string) => ev === 'expired' && resolve()));
    if ((await a.store.reservationOf('default', 'a1')) !== null) await expired;
    watcher.disconnect();
    expect(await a.store.reservationOf('default', 'a1')).toBeNull();
    // Another task reserves the agent now; the old offer's answer is refused by its token.
    const t2 = await task(b.store, { conditions: { agents: ['a1'] } });
    const again = await b.store.reserve('default', t2, '8000', ['a1'], 1, 60000);
    expect(Array.isArray(again)).toBe(true);
    expect(await a.store.claimAnswer('default', t1, '8000', stale)).toEqual({ ok: false, why: 'stale_reservation' });
    expect(await a.store.release('default', stale)).toBe(false);
    const fresh = (again as Reservation[])[0]!;
    const claim = await b.store.claimAnswer('default', t2, '8000', fresh);
    expect(claim.ok).toBe(true);
    expect((await b.store.get('default', t2))?.state).toBe('answered');
  });

  it('ending a task removes it from the queue, counts it and writes a queue.caller event; a second end is a no-op', async () => {
    const t = await task(a.store);
    expect(await a.store.end('default', t, '8000', 'abandoned')).toBe(true);
    expect(await a.store.end('default', t, '8000', 'abandoned')).toBe(false);
    expect(await h.raw.zcard('ccs:{default}:queue:8000:tasks')).toBe(0);
    expect(await h.raw.hget('ccs:{default}:queue:8000:stats', 'abandoned')).toBe('1');
    const events = (await h.raw.xrange('ccs:{default}:events', '-', '+')).filter(([, f]) => f[1] === 'queue.caller').map(([, f]) => [f[1], (JSON.parse(f[5]!) as { reason: string }).reason]);
    expect(events).toEqual([
      ['queue.caller', 'enqueued'],
      ['queue.caller', 'abandoned'],
    ]);
  });

  it('an agent whose answer was claimed stays leased until released, so the next caller cannot reserve it while it is still Ready', async () => {
    const t1 = await task(a.store, { conditions: { agents: ['a1'] } });
    const [r] = (await a.store.reserve('default', t1, '8000', ['a1'], 1, 60000)) as Reservation[];
    expect((await a.store.claimAnswer('default', t1, '8000', r!)).ok).toBe(true);
    // Between the claim and Queue Call the agent is still Ready in the queue: the lease must hold.
    expect((await a.engine.states('default', 'a1'))[0]!.state).toBe('ready');
    const pttl = await h.raw.pttl('ccs:{default}:resv:a1');
    expect(pttl).toBeGreaterThan(20000);
    expect(pttl).toBeLessThanOrEqual(30000);
    const t2 = await task(b.store, { conditions: { agents: ['a1'] } });
    expect(await b.store.reserve('default', t2, '8000', ['a1'], 1, 60000)).toBe('no_agent');
    // The owner put the agent on the call and released the lease.
    await a.engine.callStarted('default', 'a1', { callId: 'c-a1', acdQueue: '8000' });
    expect(await a.store.release('default', r!)).toBe(true);
    expect(await b.store.reserve('default', t2, '8000', ['a1'], 1, 60000)).toBe('no_agent'); // on the call now
  });
});
