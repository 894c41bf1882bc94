/**
 * The selector's shortcuts (lib/acd/selector.ts) against the reference model: for a queue of
 * 300 members, some Ready, the plan read from Redis must start with the same agents as
 * planOffer over every Ready member, for each strategy whose read does not grow with the queue.
 */
import { Selector } from '../../lib/acd/selector';
import { planOffer, type Candidate } from '../../lib/acd/strategies';
import { MAX_CANDIDATES } from '../../lib/acd/taskStore';
import type { Config, Strategy } from '../../lib/config/schema';
import { callCenterKeys } from '../../lib/store/keys';
import { startHarness, type Harness } from '../helpers/harness';

const keys = callCenterKeys('ccs', 'default');
const MEMBERS = 300;

describe('selector shortcuts agree with the reference model', () => {
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

  /** A config where 8000 uses `strategy`, with agents Ready at distinct times; every third one is not Ready. */
  const setUp = async (strategy: Strategy): Promise<{ config: Config; ready: Candidate[] }> => {
    const config = h.config({ extraAgents: MEMBERS, queues: { '8000': { strategy } } });
    const cc = config.callcenters.default!;
    const members = Object.keys(cc.agents).filter((a) => Object.hasOwn(cc.agents[a]!.queues, '8000'));
    const ready: Candidate[] = [];
    const pipe = h.raw.pipeline();
    members.forEach((id, order) => {
      if (order % 3 === 1) return;
      // Idle-since deliberately unrelated to member order.
      const readySince = 1_000_000 + ((order * 7919) % 1000) * 10 + order;
      ready.push({ id, readySince, order, answeredCalls: 0, talkTimeMs: 0, skills: {} });
      pipe.zadd(keys.queueReady('8000'), readySince, id);
    });
    await pipe.exec();
    return { config, ready };
  };
  const reference = (strategy: Strategy, ready: Candidate[], rrCursor?: { order: number; id: string }): string[] =>
    planOffer(strategy, ready, undefined, { random: () => 0, ...(rrCursor ? { rrCursor } : {}) }).agents.slice(0, MAX_CANDIDATES);

  it.each(['longest_idle', 'ring_all', 'top_down', 'round_robin'] as Strategy[])('%s: the first agents offered are the reference plan\'s', async (strategy) => {
    const { config, ready } = await setUp(strategy);
    const selector = new Selector({ redis: h.raw });
    const plan = await selector.plan(config.callcenters.default!, keys, '8000', undefined);
    expect(plan.agents.slice(0, MAX_CANDIDATES)).toEqual(reference(strategy, ready));
  });

  it('round_robin continues after the member offered last, wrapping around the member list', async () => {
    const { config, ready } = await setUp('round_robin');
    const cc = config.callcenters.default!;
    const selector = new Selector({ redis: h.raw });
    const nearEnd = ready[ready.length - 5]!; // the rotation must wrap to the top within 50
    selector.offered(cc, keys, '8000', nearEnd.id);
    const plan = await selector.plan(cc, keys, '8000', undefined);
    const expected = reference('round_robin', ready, { order: nearEnd.order, id: nearEnd.id });
    expect(plan.agents.slice(0, MAX_CANDIDATES)).toEqual(expected);
    expect(expected.slice(0, 4)).toEqual(ready.slice(-4).map((c) => c.id));
  });

  it('random offers distinct Ready agents, and over many plans reaches agents beyond any fixed 50', async () => {
    const { config, ready } = await setUp('random');
    const selector = new Selector({ redis: h.raw });
    const readyIds = new Set(ready.map((c) => c.id));
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const plan = await selector.plan(config.callcenters.default!, keys, '8000', undefined);
      expect(plan.agents).toHaveLength(MAX_CANDIDATES);
      expect(new Set(plan.agents).size).toBe(MAX_CANDIDATES);
      for (const a of plan.agents) {
        expect(readyIds.has(a)).toBe(true);
        seen.add(a);
      }
    }
    expect(seen.size).toBeGreaterThan(150);
  });

  it('a sparse queue (few Ready among many members) still finds every Ready member in order', async () => {
    const config = h.config({ extraAgents: MEMBERS, queues: { '8000': { strategy: 'top_down' } } });
    await h.raw.zadd(keys.queueReady('8000'), 5, 'a290', 6, 'a7', 7, 'a150');
    const plan = await new Selector({ redis: h.raw }).plan(config.callcenters.default!, keys, '8000', undefined);
    expect(plan.agents).toEqual(['a7', 'a150', 'a290']);
  });
});
