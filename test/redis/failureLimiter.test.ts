/**
 * The brute-force limiter's memory of "not blocked" (lib/security/failureLimiter.ts): it saves
 * the Redis GET of a source's second request within 250 ms, and never weakens the limit within
 * an instance. Two limiters on one real Redis stand for two instances; their clocks are
 * injected so the 250 ms are stepped over, not waited for.
 */
import { Redis } from 'ioredis';
import { FailureLimiter, NOT_BLOCKED_CACHE_MS } from '../../lib/security/failureLimiter';
import { createRedis } from '../../lib/store/redis';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let conn: Redis;
let raw: Redis;
const LIMIT = { count: 3, seconds: 30 };

beforeAll(async () => {
  server = await startRedis();
  conn = createRedis(server.url);
  raw = new Redis(server.url);
});
afterAll(async () => {
  conn.disconnect();
  raw.disconnect();
  await server.stop();
});

/** A limiter with a clock the test moves. */
function instance(): { limiter: FailureLimiter; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  return { limiter: new FailureLimiter(conn, 'ccs', 'sip', LIMIT, () => clock.t), clock };
}

/** GETs Redis has executed so far. */
async function gets(): Promise<number> {
  const m = /cmdstat_get:calls=(\d+)/.exec(await raw.info('commandstats'));
  return m === null ? 0 : Number(m[1]);
}

describe('failure limiter memory', () => {
  it("a source's second request within 250 ms is answered without a Redis GET, the one after that asks again", async () => {
    const { limiter, clock } = instance();
    const g0 = await gets();
    expect(await limiter.blocked('10.0.0.1')).toBe(false);
    expect(await limiter.blocked('10.0.0.1')).toBe(false);
    expect((await gets()) - g0).toBe(1);
    clock.t += NOT_BLOCKED_CACHE_MS + 1;
    expect(await limiter.blocked('10.0.0.1')).toBe(false);
    expect((await gets()) - g0).toBe(2);
  });

  it('a failure here that reaches the limit refuses the very next request, remembered "not blocked" or not', async () => {
    const { limiter } = instance();
    expect(await limiter.blocked('10.0.0.2')).toBe(false);
    expect(await limiter.failed('10.0.0.2')).toBe(false);
    expect(await limiter.failed('10.0.0.2')).toBe(false);
    expect(await limiter.blocked('10.0.0.2')).toBe(false);
    expect(await limiter.failed('10.0.0.2')).toBe(true);
    expect(await limiter.blocked('10.0.0.2')).toBe(true);
  });

  it('a source blocked by failures at another instance is refused here once 250 ms have passed, and at once after a failure here', async () => {
    const a = instance();
    const b = instance();
    expect(await a.limiter.blocked('10.0.0.3')).toBe(false);
    for (let i = 0; i < LIMIT.count; i++) await b.limiter.failed('10.0.0.3');
    expect(await b.limiter.blocked('10.0.0.3')).toBe(true);
    // Instance a still remembers its answer: the bounded staleness this memory allows.
    expect(await a.limiter.blocked('10.0.0.3')).toBe(false);
    a.clock.t += NOT_BLOCKED_CACHE_MS + 1;
    expect(await a.limiter.blocked('10.0.0.3')).toBe(true);

    const c = instance();
    expect(await c.limiter.blocked('10.0.0.4')).toBe(false);
    for (let i = 0; i < LIMIT.count; i++) await b.limiter.failed('10.0.0.4');
    await c.limiter.failed('10.0.0.4'); // one more guess at c: over the limit, the memory goes
    expect(await c.limiter.blocked('10.0.0.4')).toBe(true);
  });

  it('"blocked" is never remembered: when the window ends the source is served again at once', async () => {
    const { limiter } = instance();
    for (let i = 0; i < LIMIT.count; i++) await limiter.failed('10.0.0.5');
    expect(await limiter.blocked('10.0.0.5')).toBe(true);
    await raw.del('ccs:authfail:sip:10.0.0.5'); // the window's key expiring
    expect(await limiter.blocked('10.0.0.5')).toBe(false);
  });
});
