import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { Redis } from 'ioredis';

let server: RedisServer;
let a: RunningApp;
let raw: Redis;

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, bodyLimitBytes: 1024 });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await raw.flushall();
});

const agentPath = (agent: string, op: string, cc = 'default'): string => `/callcenter/${cc}/agent/${agent}/${op}`;

describe('REST agent operations', () => {
  it('login without a body logs in to all queues and returns the per-queue results and event seqs', async () => {
    const res = await a.call('POST', agentPath('1003', 'login'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      agent: '1003',
      results: [
        { queue: '8000', from: 'logged_out', to: 'ready', changed: true },
        { queue: '8001', from: 'logged_out', to: 'not_ready', changed: true },
      ],
      seqs: [1, 2],
    });
  });

  it('login to one queue with a JSON body', async () => {
    const res = await a.call('POST', agentPath('1003', 'login'), { json: { queue: '8001' } });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8001', from: 'logged_out', to: 'not_ready', changed: true }]);
  });

  it('accepts form-encoded bodies (not_ready with reason 4 in queue 8000)', async () => {
    await a.call('POST', agentPath('1001', 'login'));
    const res = await a.call('POST', agentPath('1001', 'not_ready'), {
      body: 'queue=8000&reason=4',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    const agent = await a.call('GET', '/callcenter/default/agent/1001');
    expect(agent.body.queues[0]).toMatchObject({ queue: '8000', state: 'not_ready', reason: 4 });
  });

  it('ready, not_ready and logout move the agent and are logged with seed 004 codes', async () => {
    await a.call('POST', agentPath('1001', 'login'));
    await a.call('POST', agentPath('1001', 'not_ready'), { json: { reason: 4 } });
    await a.call('POST', agentPath('1001', 'ready'), { json: {} });
    const out = await a.call('POST', agentPath('1001', 'logout'), { json: { queue: '8000' } });
    expect(out.body.results[0]).toMatchObject({ from: 'ready', to: 'logged_out', changed: true });
    const log = await a.call('GET', '/callcenter/default/oplog?agent=1001');
    expect(log.status).toBe(200);
    expect(log.body.entries.map((e: { op: number; reason: number }) => [e.op, e.reason])).toEqual([
      [1, -1],
      [3, 4],
      [2, -1],
      [0, 258],
    ]);
  });

  it('an illegal transition is 409 illegal_transition and changes nothing', async () => {
    const res = await a.call('POST', agentPath('1001', 'ready'), { json: { queue: '8000' } });
    expect(res.status).toBe(409);
    expect(res.body.error).toBe('illegal_transition');
    expect(res.body.details).toMatchObject({ from: 'logged_out', event: 'ready', queue: '8000' });
    expect(await raw.exists('ccs:{default}:events')).toBe(0);
  });
});

describe('REST bad input', () => {
  it('no token is 401 with a Bearer challenge', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { auth: false });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('unauthorized');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a wrong token is 401 and nothing is written but the failure count of its address', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { headers: { authorization: 'Bearer not-the-right-token-xx' } });
    expect(res.status).toBe(401);
    expect(await raw.keys('*')).toEqual(['ccs:authfail:http:127.0.0.1']);
  });

  it('a GET without a token is 401 too', async () => {
    expect((await a.call('GET', '/callcenter/default/agents', { auth: false })).status).toBe(401);
    expect((await a.call('GET', '/callcenter/default/oplog', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it.each([
    { name: 'unknown call center', path: agentPath('1001', 'login', 'nope'), json: {}, status: 404, code: 'unknown_callcenter' },
    { name: 'unknown agent', path: agentPath('9999', 'login'), json: {}, status: 404, code: 'unknown_agent' },
    { name: 'unknown queue', path: agentPath('1001', 'login'), json: { queue: '7777' }, status: 404, code: 'unknown_queue' },
    { name: 'agent not a member of the queue', path: agentPath('1001', 'login'), json: { queue: '8001' }, status: 403, code: 'not_member' },
    { name: 'unknown field', path: agentPath('1001', 'login'), json: { queue: '8000', force: true }, status: 400, code: 'bad_request' },
    { name: 'queue that is not a number', path: agentPath('1001', 'login'), json: { queue: '80a0' }, status: 400, code: 'bad_request' },
    { name: 'reason that is not an integer', path: agentPath('1001', 'not_ready'), json: { reason: 'tired' }, status: 400, code: 'bad_request' },
    { name: 'not-ready reason outside the seed ranges', path: agentPath('1001', 'not_ready'), json: { reason: 99 }, status: 422, code: 'invalid_request' },
    { name: 'sign-out reason outside the seed ranges', path: agentPath('1001', 'logout'), json: { reason: 999 }, status: 422, code: 'invalid_request' },
  ])('$name → $status $code, nothing written', async ({ path, json, status, code }) => {
    const res = await a.call('POST', path, { json });
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(code);
    expect(typeof res.body.message).toBe('string');
    // The instance's own background keys (presence beat, timers, call guard liveness, command
    // bus) may be written meanwhile; nothing else may be.
    expect((await raw.keys('*')).filter((k) => !/:(presence|cmd|deadlines|guard)(:|$)/.test(k))).toEqual([]);
  });

  it('malformed JSON is 400 malformed_body', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { body: '{"queue":', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('malformed_body');
  });

  it('a JSON body that is not an object is 400', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { body: '[1,2]', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_request');
  });

  it('a prototype-poisoning body is refused', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { body: '{"__proto__":{"x":1}}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
  });

  it('an oversized body is 413 body_too_large', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { json: { queue: '8000', pad: 'x'.repeat(4096) } });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('body_too_large');
  });

  it('an unsupported content type is 415', async () => {
    const res = await a.call('POST', agentPath('1001', 'login'), { body: '<queue/>', headers: { 'content-type': 'application/xml' } });
    expect(res.status).toBe(415);
    expect(res.body.error).toBe('unsupported_media_type');
  });

  it('an unknown route is 404 not_found in the same JSON shape', async () => {
    const res = await a.call('GET', '/callcenter/default/nothing');
    expect(res.status).toBe(404);
    expect(res.body.error).toBe('not_found');
  });

  it('oplog with a bad limit is 400 and with an unknown agent 404', async () => {
    expect((await a.call('GET', '/callcenter/default/oplog?limit=0')).status).toBe(400);
    expect((await a.call('GET', '/callcenter/default/oplog?limit=5000')).status).toBe(400);
    expect((await a.call('GET', '/callcenter/default/oplog?agent=9999')).body.error).toBe('unknown_agent');
  });
});

describe('REST queries', () => {
  it('GET agent shows state per queue, skills, and empty registration/reservation/conversations', async () => {
    await a.call('POST', agentPath('1003', 'login'), { json: { queue: '8000' } });
    const res = await a.call('GET', '/callcenter/default/agent/1003');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: '1003', extension: '1003', registration: null, reservation: null, conversations: [] });
    expect(res.body.queues.map((q: { queue: string; state: string }) => [q.queue, q.state])).toEqual([
      ['8000', 'ready'],
      ['8001', 'logged_out'],
    ]);
  });

  it('GET agents lists every agent of the call center', async () => {
    await a.call('POST', agentPath('1002', 'login'));
    const res = await a.call('GET', '/callcenter/default/agents');
    expect(res.status).toBe(200);
    expect(res.body.agents.map((x: { id: string }) => x.id)).toEqual(['1001', '1002', '1003', '1004', '1005']);
    expect(res.body.agents[1].queues).toEqual([{ queue: '8000', state: 'ready', reason: null, since: expect.any(Number) }]);
  });

  it('GET queues counts agents per state in each queue', async () => {
    await a.call('POST', agentPath('1001', 'login'));
    await a.call('POST', agentPath('1003', 'login'));
    const res = await a.call('GET', '/callcenter/default/queues');
    const q8000 = res.body.queues.find((q: { id: string }) => q.id === '8000');
    const q8001 = res.body.queues.find((q: { id: string }) => q.id === '8001');
    expect(q8000.agents).toMatchObject({ ready: 2, logged_out: 1, not_ready: 0 });
    expect(q8001.agents).toMatchObject({ not_ready: 1, logged_out: 2 });
    expect(q8000).toMatchObject({ name: 'Sales', autoReady: true, wrapUpSeconds: 5, waiting: 0 });
  });

  it('GET queue/{q} lists members, and an unknown queue is 404', async () => {
    await a.call('POST', agentPath('1004', 'login'));
    const res = await a.call('GET', '/callcenter/default/queue/8001');
    expect(res.status).toBe(200);
    expect(res.body.members.map((m: { agent: string; state: string }) => [m.agent, m.state])).toEqual([
      ['1003', 'logged_out'],
      ['1004', 'not_ready'],
      ['1005', 'logged_out'],
    ]);
    const missing = await a.call('GET', '/callcenter/default/queue/7777');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe('unknown_queue');
  });

  it('GET queue/{q} lists waiting callers in queue order with their wait, and the queue counters', async () => {
    const tasks = a.app.tasks;
    const base = { queue: '8000', callId: 'c', owner: 'test', maxWaitMs: 600000 };
    await tasks.enqueue('default', { ...base, id: 'low-1', priority: 0, caller: '+15550001', callId: 'c1' });
    await tasks.enqueue('default', { ...base, id: 'vip-1', priority: 9, caller: '+15550002', callId: 'c2' });
    await tasks.enqueue('default', { ...base, id: 'low-2', priority: 0, caller: '+15550003', callId: 'c3' });
    await tasks.end('default', 'low-2', '8000', 'abandoned');
    const res = await a.call('GET', '/callcenter/default/queue/8000');
    expect(res.status).toBe(200);
    expect(res.body.callers.map((c: { task: string; position: number; caller: string }) => [c.task, c.position, c.caller])).toEqual([
      ['vip-1', 1, '+15550002'],
      ['low-1', 2, '+15550001'],
    ]);
    for (const c of res.body.callers as { waitedMs: number }[]) expect(c.waitedMs).toBeGreaterThanOrEqual(0);
    expect(res.body.stats).toMatchObject({ entered: 3, answered: 0, abandoned: 1, waiting: 2, avgWaitMs: null, avgHandleMs: null });
    expect(res.body.stats.longestWaitMs).toBe(Math.max(...(res.body.callers as { waitedMs: number }[]).map((c) => c.waitedMs)));
  });

  it('oplog pages forward with since and next', async () => {
    for (const agent of ['1001', '1002', '1003']) await a.call('POST', agentPath(agent, 'login'));
    const first = await a.call('GET', '/callcenter/default/oplog?since=0&limit=2');
    expect(first.body.entries.map((e: { seq: number }) => e.seq)).toEqual([1, 2]);
    const rest = await a.call('GET', `/callcenter/default/oplog?since=${first.body.next}&limit=10`);
    expect(rest.body.entries.map((e: { seq: number }) => e.seq)).toEqual([3, 4]);
    const latest = await a.call('GET', '/callcenter/default/oplog?limit=2');
    expect(latest.body.entries.map((e: { seq: number }) => e.seq)).toEqual([3, 4]);
  });
});

describe('system routes', () => {
  it('/healthz is public, reports Redis up and drachtio/media down as degraded', async () => {
    const res = await a.call('GET', '/healthz', { auth: false });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(res.body.components.redis).toEqual({ up: true });
    expect(res.body.components.drachtio.up).toBe(false);
    expect(res.body.components.media.up).toBe(false);
  });

  it('/metrics exposes request and transition counters', async () => {
    await a.call('POST', agentPath('1001', 'login'));
    const res = await a.call('GET', '/metrics', { auth: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/ccswitch_agent_transitions_total\{op="login",to="ready"\} \d+/);
    expect(res.body).toMatch(/ccswitch_http_requests_total\{method="POST",route="\/callcenter\/:cc\/agent\/:agent\/login",status="200"\}/);
  });

  it('/docs serves the OpenAPI document with every agent route and bearer security', async () => {
    const res = await a.call('GET', '/docs/json', { auth: false });
    expect(res.status).toBe(200);
    for (const op of ['login', 'logout', 'ready', 'not_ready']) expect(res.body.paths).toHaveProperty([`/callcenter/{cc}/agent/{agent}/${op}`, 'post']);
    expect(res.body.paths).toHaveProperty(['/callcenter/{cc}/oplog', 'get']);
    expect(res.body.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
  });
});

describe('Redis outage', () => {
  it('is 503 unavailable on REST and down on /healthz, and recovers when Redis is back', async () => {
    await server.stop();
    const res = await a.call('POST', agentPath('1001', 'login'));
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('unavailable');
    const health = await a.call('GET', '/healthz', { auth: false });
    expect(health.status).toBe(503);
    expect(health.body.status).toBe('down');
    const ready = new Promise((resolve) => a.redis.once('ready', resolve));
    await server.restart();
    await ready;
    expect((await a.call('POST', agentPath('1001', 'login'))).status).toBe(200);
  });
});
