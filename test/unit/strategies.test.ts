import { planOffer, pickNext, STRATEGY_MEANING, type Candidate, type SelectContext, type SequentialStrategy, type TaskConditions } from '../../lib/acd/strategies';
import { STRATEGIES, type Strategy } from '../../lib/config/schema';

/** A deterministic PRNG (mulberry32): the same seed gives the same draws on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fake clock every history is expressed against. */
const NOW = 1_700_000_000_000;
const SEC = 1000;

/** An agent that has been Ready for `idleMs` before NOW, with otherwise neutral history. */
function agent(id: string, idleMs: number, more: Partial<Candidate> = {}): Candidate {
  return { id, readySince: NOW - idleMs, order: 0, answeredCalls: 0, talkTimeMs: 0, skills: {}, ...more };
}

/** A context whose RNG fails the test if a non-random strategy draws from it. */
function ctx(more: Partial<SelectContext> = {}): SelectContext {
  return {
    random: () => {
      throw new Error('this strategy must not draw random numbers');
    },
    ...more,
  };
}

const SEQUENTIAL = STRATEGIES.filter((s): s is SequentialStrategy => s !== 'ring_all');

function plan(strategy: Strategy, candidates: Candidate[], conditions?: TaskConditions, c: SelectContext = ctx()) {
  return planOffer(strategy, candidates, conditions, c);
}

describe('ring_all', () => {
  it('rings every eligible agent in parallel', () => {
    const p = plan('ring_all', [agent('b', 5 * SEC), agent('a', 60 * SEC), agent('c', 1 * SEC)]);
    expect(p.mode).toBe('parallel');
    expect(p.agents).toEqual(['a', 'b', 'c']);
  });
});

describe('longest_idle', () => {
  it('offers the agent that has been Ready the longest first', () => {
    const p = plan('longest_idle', [agent('1001', 10 * SEC), agent('1002', 300 * SEC), agent('1003', 45 * SEC)]);
    expect(p).toEqual({ mode: 'sequential', agents: ['1002', '1003', '1001'] });
  });

  it('breaks a tie on ready time by the smaller id, whatever the input order', () => {
    const tied = [agent('1003', 30 * SEC), agent('1001', 30 * SEC), agent('1002', 30 * SEC)];
    expect(plan('longest_idle', tied).agents).toEqual(['1001', '1002', '1003']);
    expect(plan('longest_idle', [...tied].reverse()).agents).toEqual(['1001', '1002', '1003']);
  });

  it('compares ids by code unit, not by locale or numeric value', () => {
    expect(plan('longest_idle', [agent('a', 0), agent('B', 0), agent('10', 0), agent('9', 0)]).agents).toEqual(['10', '9', 'B', 'a']);
  });
});

describe('top_down', () => {
  it("offers members in the queue's configured order, starting from the top every time", () => {
    const members = [agent('x', 1 * SEC, { order: 2 }), agent('y', 500 * SEC, { order: 1 }), agent('z', 0, { order: 0 })];
    expect(plan('top_down', members).agents).toEqual(['z', 'y', 'x']);
    // History (idle time, calls) does not matter: the top member is offered first again.
    const busier = members.map((m) => (m.id === 'z' ? { ...m, answeredCalls: 50, talkTimeMs: 9e6 } : m));
    expect(plan('top_down', busier).agents[0]).toBe('z');
  });

  it('skips a top member who is not a candidate', () => {
    expect(plan('top_down', [agent('x', 0, { order: 2 }), agent('y', 0, { order: 1 })]).agents).toEqual(['y', 'x']);
  });
});

describe('round_robin', () => {
  const members = [agent('a', 0, { order: 0 }), agent('b', 0, { order: 1 }), agent('c', 0, { order: 2 }), agent('d', 0, { order: 3 })];

  it('starts from the first member when nobody has been offered yet', () => {
    expect(plan('round_robin', members).agents).toEqual(['a', 'b', 'c', 'd']);
  });

  it('offers the member after the one offered last, wrapping around', () => {
    expect(plan('round_robin', members, undefined, ctx({ rrCursor: { order: 1, id: 'b' } })).agents).toEqual(['c', 'd', 'a', 'b']);
    expect(plan('round_robin', members, undefined, ctx({ rrCursor: { order: 3, id: 'd' } })).agents).toEqual(['a', 'b', 'c', 'd']);
  });

  it('continues after the last-offered member even when that member is no longer a candidate', () => {
    const withoutB = members.filter((m) => m.id !== 'b');
    expect(plan('round_robin', withoutB, undefined, ctx({ rrCursor: { order: 1, id: 'b' } })).agents).toEqual(['c', 'd', 'a']);
  });

  it('visits every member once per round when the caller advances the cursor after each offer', () => {
    const offered: string[] = [];
    let c: SelectContext = ctx();
    for (let i = 0; i < 8; i++) {
      const next = pickNext('round_robin', members, undefined, c)!;
      offered.push(next);
      const m = members.find((x) => x.id === next)!;
      c = ctx({ rrCursor: { order: m.order, id: m.id } });
    }
    expect(offered).toEqual(['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd']);
  });

  it('orders members sharing a position by id, so the cursor never skips or repeats one', () => {
    const shared = [agent('p', 0, { order: 1 }), agent('q', 0, { order: 1 }), agent('r', 0, { order: 0 })];
    expect(plan('round_robin', shared, undefined, ctx({ rrCursor: { order: 1, id: 'p' } })).agents).toEqual(['q', 'r', 'p']);
  });
});

describe('fewest_calls', () => {
  it('offers the agent who answered the fewest calls first', () => {
    const p = plan('fewest_calls', [agent('1001', 100 * SEC, { answeredCalls: 7 }), agent('1002', 1 * SEC, { answeredCalls: 2 }), agent('1003', 50 * SEC, { answeredCalls: 4 })]);
    expect(p.agents).toEqual(['1002', '1003', '1001']);
  });

  it('breaks a tie on calls by longest idle, then by id', () => {
    const p = plan('fewest_calls', [agent('c', 10 * SEC, { answeredCalls: 3 }), agent('b', 90 * SEC, { answeredCalls: 3 }), agent('a', 10 * SEC, { answeredCalls: 3 })]);
    expect(p.agents).toEqual(['b', 'a', 'c']);
  });
});

describe('least_talk_time', () => {
  it('offers the agent with the least talk time first, whatever the call count', () => {
    const p = plan('least_talk_time', [
      agent('1001', 0, { answeredCalls: 1, talkTimeMs: 900 * SEC }),
      agent('1002', 0, { answeredCalls: 20, talkTimeMs: 120 * SEC }),
      agent('1003', 0, { answeredCalls: 5, talkTimeMs: 300 * SEC }),
    ]);
    expect(p.agents).toEqual(['1002', '1003', '1001']);
  });

  it('breaks a tie on talk time by longest idle, then by id', () => {
    const p = plan('least_talk_time', [agent('c', 5 * SEC, { talkTimeMs: 60 }), agent('a', 5 * SEC, { talkTimeMs: 60 }), agent('b', 70 * SEC, { talkTimeMs: 60 })]);
    expect(p.agents).toEqual(['b', 'a', 'c']);
  });
});

describe('skills', () => {
  const billing: TaskConditions = { skills: [{ name: 'billing', min: 3 }] };

  it('keeps only agents meeting every skill bound and offers the highest total level first', () => {
    const p = plan(
      'skills',
      [
        agent('novice', 500 * SEC, { skills: { billing: 2 } }),
        agent('good', 10 * SEC, { skills: { billing: 5 } }),
        agent('expert', 1 * SEC, { skills: { billing: 9 } }),
        agent('none', 900 * SEC, { skills: { sales: 10 } }),
      ],
      billing,
    );
    expect(p).toEqual({ mode: 'sequential', agents: ['expert', 'good'] });
  });

  it('scores the sum of the levels in the skills the task names, ignoring other skills', () => {
    const conditions: TaskConditions = { skills: [{ name: 'billing' }, { name: 'french', max: 6 }] };
    const p = plan(
      'skills',
      [
        agent('a', 0, { skills: { billing: 4, french: 6, sales: 100 } }), // 10
        agent('b', 0, { skills: { billing: 9, french: 3 } }), // 12
        agent('c', 0, { skills: { billing: 10, french: 7 } }), // french above max
        agent('d', 0, { skills: { billing: 10 } }), // lacks french
      ],
      conditions,
    );
    expect(p.agents).toEqual(['b', 'a']);
  });

  it('breaks a tie on score by longest idle, then by id', () => {
    const p = plan('skills', [agent('z', 5 * SEC, { skills: { billing: 5 } }), agent('y', 80 * SEC, { skills: { billing: 5 } }), agent('x', 5 * SEC, { skills: { billing: 5 } })], billing);
    expect(p.agents).toEqual(['y', 'x', 'z']);
  });

  it('falls back to longest idle when the task names no skill', () => {
    expect(plan('skills', [agent('a', 1 * SEC, { skills: { billing: 9 } }), agent('b', 99 * SEC)]).agents).toEqual(['b', 'a']);
  });

  it('treats min and max as inclusive bounds', () => {
    const cands = [2, 3, 4, 5, 6].map((l) => agent(`l${l}`, 0, { skills: { billing: l } }));
    expect(plan('skills', cands, { skills: [{ name: 'billing', min: 3, max: 5 }] }).agents.sort()).toEqual(['l3', 'l4', 'l5']);
  });

  it('a level-0 skill still counts as having the skill; a missing one fails even without bounds', () => {
    const cands = [agent('zero', 0, { skills: { billing: 0 } }), agent('missing', 0)];
    expect(plan('skills', cands, { skills: [{ name: 'billing' }] }).agents).toEqual(['zero']);
    expect(plan('skills', cands, { skills: [{ name: 'billing', max: 5 }] }).agents).toEqual(['zero']);
  });

  it('does not read skills from the object prototype', () => {
    expect(plan('skills', [agent('a', 0)], { skills: [{ name: 'constructor' }] }).agents).toEqual([]);
    expect(plan('skills', [agent('a', 0)], { skills: [{ name: 'toString', min: 0 }] }).agents).toEqual([]);
  });
});

describe('random', () => {
  const four = ['d', 'a', 'c', 'b'].map((id, i) => agent(id, i * SEC, { order: i }));

  it('returns a permutation of the eligible agents, the same for the same seed', () => {
    const p1 = plan('random', four, undefined, ctx({ random: mulberry32(42) }));
    const p2 = plan('random', four, undefined, ctx({ random: mulberry32(42) }));
    expect(p1.mode).toBe('sequential');
    expect([...p1.agents].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(p2).toEqual(p1);
  });

  it('shuffles from id order with a forward Fisher–Yates, so the first draw alone picks the first agent', () => {
    // Draw 0 → first by id; a draw just under 1 → last by id. Input order does not matter.
    expect(plan('random', four, undefined, ctx({ random: () => 0 })).agents).toEqual(['a', 'b', 'c', 'd']);
    expect(plan('random', [...four].reverse(), undefined, ctx({ random: () => 0 })).agents).toEqual(['a', 'b', 'c', 'd']);
    const draws = [0.99, 0.5, 0];
    expect(plan('random', four, undefined, ctx({ random: () => draws.shift()! })).agents).toEqual(['d', 'c', 'b', 'a']);
  });

  it('stays within the candidates even if the RNG returns exactly 1', () => {
    expect(plan('random', four, undefined, ctx({ random: () => 1 })).agents).toEqual(['d', 'a', 'b', 'c']);
    expect(pickNext('random', four, undefined, ctx({ random: () => 1 }))).toBe('d');
  });

  it('offers each agent first about equally often over many draws', () => {
    const rng = mulberry32(20240601);
    const draws = 40_000;
    const firsts = new Map<string, number>();
    const seconds = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const p = plan('random', four, undefined, ctx({ random: rng }));
      firsts.set(p.agents[0]!, (firsts.get(p.agents[0]!) ?? 0) + 1);
      seconds.set(p.agents[1]!, (seconds.get(p.agents[1]!) ?? 0) + 1);
    }
    // Expected 10 000 each; the seed is fixed, so this cannot flake, and a biased shuffle
    // (e.g. j drawn over the whole array) would miss the ±5% band.
    for (const counts of [firsts, seconds]) {
      expect([...counts.keys()].sort()).toEqual(['a', 'b', 'c', 'd']);
      for (const n of counts.values()) expect(Math.abs(n - draws / 4)).toBeLessThan(draws / 4 / 20);
    }
  });

  it('gives all 24 orders of four agents about equally often', () => {
    const rng = mulberry32(7);
    const draws = 48_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const key = plan('random', four, undefined, ctx({ random: rng })).agents.join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('conditions', () => {
  const pool = [
    agent('1001', 40 * SEC, { order: 0, answeredCalls: 1, talkTimeMs: 10, skills: { billing: 5 } }),
    agent('1002', 30 * SEC, { order: 1, answeredCalls: 2, talkTimeMs: 20, skills: { billing: 1 } }),
    agent('1003', 20 * SEC, { order: 2, answeredCalls: 3, talkTimeMs: 30, skills: { sales: 8 } }),
    agent('1004', 10 * SEC, { order: 3, answeredCalls: 4, talkTimeMs: 40, skills: { billing: 9, sales: 2 } }),
  ];
  const rng = () => ctx({ random: mulberry32(1) });

  it.each(STRATEGIES)('%s offers only the agents the task lists', (strategy) => {
    const p = plan(strategy, pool, { agents: ['1004', '1002', '9999'] }, rng());
    expect([...p.agents].sort()).toEqual(['1002', '1004']);
  });

  it.each(STRATEGIES)('%s offers only agents meeting the skill conditions', (strategy) => {
    const p = plan(strategy, pool, { skills: [{ name: 'billing', min: 2 }] }, rng());
    expect([...p.agents].sort()).toEqual(['1001', '1004']);
  });

  it.each(STRATEGIES)('%s applies the agent list and the skill conditions together', (strategy) => {
    const p = plan(strategy, pool, { agents: ['1002', '1003', '1004'], skills: [{ name: 'billing', min: 2 }] }, rng());
    expect(p.agents).toEqual(['1004']);
  });

  it.each(STRATEGIES)('%s offers nobody when the agent list is empty', (strategy) => {
    expect(plan(strategy, pool, { agents: [] }, rng()).agents).toEqual([]);
  });

  it.each(STRATEGIES)('%s offers nobody when there are no candidates', (strategy) => {
    const p = plan(strategy, [], { skills: [{ name: 'billing' }] }, rng());
    expect(p).toEqual({ mode: strategy === 'ring_all' ? 'parallel' : 'sequential', agents: [] });
  });

  it.each(SEQUENTIAL)('pickNext(%s) finds no one among no candidates', (strategy) => {
    expect(pickNext(strategy, [], undefined, rng())).toBeUndefined();
    expect(pickNext(strategy, pool, { agents: ['nobody'] }, rng())).toBeUndefined();
  });

  it('an empty conditions object filters nothing', () => {
    expect(plan('top_down', pool, {}).agents).toEqual(['1001', '1002', '1003', '1004']);
  });
});

describe('pickNext', () => {
  /** Random but reproducible candidate sets with many ties, to exercise every tie-break. */
  function scenario(rng: () => number): { candidates: Candidate[]; conditions: TaskConditions | undefined; rrCursor: SelectContext['rrCursor'] } {
    const n = Math.floor(rng() * 7);
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].filter(() => rng() < 0.8).slice(0, n);
    const small = (k: number) => Math.floor(rng() * k);
    const candidates = ids.map((id) =>
      agent(id, small(3) * SEC, { order: small(4), answeredCalls: small(3), talkTimeMs: small(3) * 1000, skills: rng() < 0.8 ? { billing: small(4), sales: small(3) } : {} }),
    );
    const conditions = rng() < 0.5 ? undefined : { skills: [{ name: 'billing', min: small(2) }, { name: 'sales' }], ...(rng() < 0.3 ? { agents: ['a', 'c', 'e'] } : {}) };
    const rrCursor = rng() < 0.7 ? { order: small(5), id: ['a', 'c', 'z'][small(3)]! } : undefined;
    return { candidates, conditions, rrCursor };
  }

  it.each(SEQUENTIAL)('%s picks exactly the first agent of the plan', (strategy) => {
    const gen = mulberry32(99);
    let nonEmpty = 0;
    for (let i = 0; i < 500; i++) {
      const { candidates, conditions, rrCursor } = scenario(gen);
      const seed = Math.floor(gen() * 1e9);
      const expected = planOffer(strategy, candidates, conditions, { random: mulberry32(seed), ...(rrCursor ? { rrCursor } : {}) }).agents[0];
      const got = pickNext(strategy, candidates, conditions, { random: mulberry32(seed), ...(rrCursor ? { rrCursor } : {}) });
      expect(got).toBe(expected);
      if (got !== undefined) nonEmpty++;
    }
    expect(nonEmpty).toBeGreaterThan(100);
  });
});

describe('planOffer', () => {
  it('does not reorder or change the caller’s candidate array', () => {
    const cands = [agent('c', 1), agent('a', 3), agent('b', 2)];
    const copy = structuredClone(cands);
    for (const s of STRATEGIES) plan(s, cands, undefined, ctx({ random: mulberry32(3) }));
    expect(cands).toEqual(copy);
  });

  it('has a one-line meaning for every configured strategy', () => {
    expect(Object.keys(STRATEGY_MEANING).sort()).toEqual([...STRATEGIES].sort());
  });
});
