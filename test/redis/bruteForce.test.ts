/**
 * Brute force on the REST API (issue "faults", item 7): wrong bearer tokens are counted per
 * source address in Redis; past `http.authFailureLimit` the source gets 429 whatever it sends
 * — a right token too — until the window is over. Real Redis, real HTTP.
 */
import { Redis } from 'ioredis';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { connectEvents } from '../helpers/wsClient';

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

  it('the event socket counts wrong tokens too: after 5, the next upgrade is refused with 429 before it happens, the right token included', async () => {
    const url = `${a.base.replace('http', 'ws')}/callcenter/default/events`;
    for (let i = 0; i < 5; i++) {
      const c = await connectEvents(url, { token: 'not-the-token-0000000000' });
      expect((await c.closed).code).toBe(4001);
    }
    // The count is written as the socket closes: wait for the fifth to be in Redis.
    while (Number(await raw.get('ccs:authfail:http:127.0.0.1')) < 5) await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(connectEvents(url, { token: a.token })).rejects.toThrow(/429/);
    await raw.del('ccs:authfail:http:127.0.0.1');
    const ok = await connectEvents(url, { token: a.token });
    expect((await ok.next('hello')).op).toBe('hello');
    await ok.close();
  });
});
