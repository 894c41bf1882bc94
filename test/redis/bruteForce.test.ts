/**
 * Brute force on the REST API (issue "faults", item 7): wrong bearer tokens are counted per
 * source address in Redis; past `http.authFailureLimit` the source gets 429 whatever it sends
 * — a right token too — until the window is over. Real Redis, real HTTP.
 */
import { Redis } from 'ioredis';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let a: RunningApp;
let raw: Redis;

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, http: { authFailureLimit: { count: 5, seconds: 1 } } });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});

describe('bearer-token brute force', () => {
  it('5 wrong tokens in a second are 401; then even the right token is 429 with Retry-After, and nothing is applied; after the window it works again', async () => {
    const wrong = { headers: { authorization: 'Bearer not-the-token-0000000000' } };
    for (let i = 0; i < 5; i++) expect((await a.call('GET', '/callcenter/default/agents', wrong)).status).toBe(401);
    const blocked = await a.call('POST', '/callcenter/default/agent/1001/login');
    expect(blocked.status).toBe(429);
    expect(blocked.body).toEqual({ error: 'too_many_failures', message: expect.any(String) });
    expect(blocked.headers.get('retry-after')).toBe('1');
    expect(await raw.hget('ccs:{default}:agent:1001', 'q:8000:state')).toBeNull();
    // The counter is a Redis key with the window as its expiry: wait for it to go.
    while ((await raw.pttl('ccs:authfail:http:127.0.0.1')) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await a.call('POST', '/callcenter/default/agent/1001/login')).status).toBe(200);
  });

  it('public paths are not limited', async () => {
    const wrong = { headers: { authorization: 'Bearer not-the-token-0000000000' } };
    for (let i = 0; i < 6; i++) await a.call('GET', '/callcenter/default/agents', wrong);
    expect((await a.call('GET', '/healthz')).status).toBe(200);
    await raw.del('ccs:authfail:http:127.0.0.1');
  });
});
