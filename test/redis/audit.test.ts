/**
 * The invariant audit (issue "faults", item 1) on a real Redis: a healthy call center audits
 * empty; each invariant broken on purpose is found once, with its key and an explanation.
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
  a = await startApp({ redisUrl: server.url, apiTokens: ['test-token-0123456789', { token: 'supervisor-token-0123456789', role: 'supervisor', supervisor: 's1', callcenter: 'default' }] });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  for (const k of await raw.keys('ccs:{default}:*')) if (!k.includes(':presence:')) await raw.del(k);
});

const findings = async (): Promise<{ kind: string; key: string; explanation: string }[]> => {
  const res = await a.call('GET', '/callcenter/default/audit');
  expect(res.status).toBe(200);
  return res.body.findings as { kind: string; key: string; explanation: string }[];
};

describe('invariant audit', () => {
  it('a call center with agents logged in, Ready and on a guarded call audits empty', async () => {
    await a.app.engine.login('default', '1001');
    await a.app.engine.login('default', '1002');
    await a.app.guard.track('default', 'call-1', ['1002']);
    await a.app.engine.callStarted('default', '1002', { callId: 'call-1', acdQueue: '8000' });
    expect(await findings()).toEqual([]);
    await a.app.engine.callEnded('default', '1002', { callId: 'call-1' });
    await a.app.guard.untrack('default', 'call-1');
  });

  it('finds an agent Ready but missing from the Ready set', async () => {
    await a.app.engine.login('default', '1001');
    await raw.zrem('ccs:{default}:queue:8000:ready', '1001');
    expect(await findings()).toEqual([{ kind: 'ready_set', key: 'ccs:{default}:queue:8000:ready', explanation: expect.stringMatching(/agent 1001 is Ready in queue 8000 but not in its Ready set/) }]);
  });

  it('finds an agent on a queue call no live instance guards', async () => {
    await a.app.engine.login('default', '1001');
    await a.app.engine.callStarted('default', '1001', { callId: 'lost-call', acdQueue: '8000' });
    expect(await findings()).toEqual([{ kind: 'unguarded_call', key: 'ccs:{default}:agent:1001', explanation: expect.stringMatching(/queue_call in queue 8000 on call lost-call, which no live instance guards/) }]);
  });

  it('finds a reservation without a lease', async () => {
    await raw.set('ccs:{default}:resv:1001', 'task-1|token');
    expect((await findings()).map((f) => [f.kind, f.key])).toEqual([['reservation_without_lease', 'ccs:{default}:resv:1001']]);
  });

  it('finds a live conversation whose owner is gone', async () => {
    await a.app.conversations.create('default', { id: 'c-dead', owner: 'nobody-incarnation' });
    const f = await findings();
    expect(f.map((x) => [x.kind, x.key])).toEqual([['conversation_dead_owner', 'ccs:{default}:conv:c-dead']]);
  });

  it('finds an event counter behind its stream', async () => {
    await a.app.engine.login('default', '1001');
    await raw.set('ccs:{default}:events:seq', '0');
    expect((await findings()).map((f) => [f.kind, f.key])).toEqual([['sequence_behind', 'ccs:{default}:events:seq']]);
  });

  it('finds a binding past its expiry that no sweep removed', async () => {
    await raw.zadd('ccs:{default}:reg:1001:exp', Date.now() - 60_000, 'sip:1001@192.0.2.1');
    expect((await findings()).map((f) => [f.kind, f.key])).toEqual([['registration_expired', 'ccs:{default}:reg:1001']]);
  });

  it('is admin only: a supervisor token gets 403 forbidden', async () => {
    const res = await a.call('GET', '/callcenter/default/audit', { headers: { authorization: 'Bearer supervisor-token-0123456789' } });
    expect(res).toMatchObject({ status: 403, body: { error: 'forbidden' } });
  });
});
