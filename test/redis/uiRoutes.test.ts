/**
 * What the browser UI reads besides the documented API, on a real instance and Redis: the
 * token's own description (`GET me`), the Not Ready reasons with the site's codes (`GET
 * reasons`), the service level against the queue's `slaSeconds` (REST, `queue.stats`, the
 * stream's snapshot), the last hour per minute (`GET queue/{q}/history`), and the static
 * files at /ui/ served without a token, with a Content-Security-Policy, and never from
 * outside their directory.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../lib/config/load';
import { startApp, type RunningApp } from '../helpers/app';
import { testConfigYaml } from '../helpers/config';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, as } from '../helpers/tokens';
import { answeredCaller, registerPhone, waitingCaller } from '../helpers/uiData';
import { connectEvents } from '../helpers/wsClient';

/** A UI directory as a build leaves it, with a secret beside it that must never be served. */
function fakeUi(): string {
  const top = mkdtempSync(join(tmpdir(), 'ccs-ui-test-'));
  const dir = join(top, 'ui');
  mkdirSync(join(dir, 'assets'), { recursive: true });
  mkdirSync(join(dir, '.vite'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>ccswitch</title><script type="module" src="/ui/assets/index-abc.js"></script>');
  writeFileSync(join(dir, 'assets', 'index-abc.js'), 'document.title = "x";');
  writeFileSync(join(dir, 'assets', 'index-abc.css'), 'body{}');
  writeFileSync(join(dir, '.vite', 'manifest.json'), '{}');
  writeFileSync(join(top, 'secret.txt'), 'not for the browser');
  return dir;
}

/** A GET with the path exactly as written (no client-side normalisation of `..` or `%2e`). */
function rawGet(base: string, path: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let server: RedisServer;
let raw: Redis;
let a: RunningApp;
const UI = fakeUi();

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: UI, queueStatsMs: 100, callcenter: { busyReasons: { '230': 'Coaching', '201': 'Training' } } });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await raw.flushall();
});

describe('GET me', () => {
  it("tells each token its role, name, agent or supervisor and the queues it sees, never the token", async () => {
    const me = async (who: Parameters<typeof as>[0]): Promise<unknown> => (await a.call('GET', '/callcenter/default/me', { headers: as(who) })).body as unknown;
    expect(await me('admin')).toEqual({ callcenter: 'default', name: 'token-0', role: 'admin', agent: null, supervisor: null, queues: ['8000', '8001'], softphone: null });
    expect(await me('s1')).toEqual({ callcenter: 'default', name: 'lead-s1', role: 'supervisor', agent: null, supervisor: 's1', queues: ['8000'], softphone: null });
    expect(await me('q8001')).toEqual({ callcenter: 'default', name: 'support-desk', role: 'supervisor', agent: null, supervisor: null, queues: ['8001'], softphone: null });
    expect(await me('agent1001')).toEqual({ callcenter: 'default', name: 'agent-1001', role: 'agent', agent: '1001', supervisor: null, queues: ['8000'], softphone: null });
  });

  it("is 403 for a token of another call center and 401 without a token", async () => {
    expect((await a.call('GET', '/callcenter/default/me', { headers: as('other') })).status).toBe(403);
    expect((await a.call('GET', '/callcenter/default/me', { auth: false })).status).toBe(401);
  });
});

describe('GET reasons', () => {
  it("lists the table's busy reasons, then the site's 200-250 codes in order, marking those the platform sets", async () => {
    const res = await a.call('GET', '/callcenter/default/reasons', { headers: as('agent1001') });
    expect(res.status).toBe(200);
    expect(res.body.notReady.map((r: { code: number; label: string; system: boolean; origin: string }) => [r.code, r.label, r.origin, r.system])).toEqual([
      [1, 'Busy', 'seed', false],
      [2, 'No answer', 'seed', true],
      [3, 'Forced by a QC inspector', 'seed', true],
      [4, 'Rest', 'seed', false],
      [5, 'Phone unavailable', 'seed', false],
      [7, 'Rejected a call', 'seed', true],
      [201, 'Training', 'site', false],
      [230, 'Coaching', 'site', false],
    ]);
  });

  it('refuses a site reason outside 200-250 in the configuration, naming the key', () => {
    const yaml = testConfigYaml({ redisUrl: server.url, callcenter: { busyReasons: { '199': 'Lunch' } } });
    expect(() => loadConfig({ text: yaml, source: 'test' })).toThrow(/busyReasons/);
  });

  it('accepts a site reason as the Not Ready reason of an agent', async () => {
    await a.app.engine.login('default', '1001');
    const res = await a.call('POST', '/callcenter/default/agent/1001/not_ready', { headers: as('agent1001'), json: { reason: 230 } });
    expect([res.status, res.body.results[0].to]).toEqual([200, 'not_ready']);
  });
});

describe('service level', () => {
  /** A caller that has waited `ms` already (as a transferred caller keeps its wait). */
  const waitedFor = async (ms: number, queue = '8000'): Promise<string> => {
    const [sec, usec] = await raw.time();
    const id = `t-${Math.random().toString(36).slice(2)}`;
    await a.app.tasks.enqueue('default', { id, queue, priority: 0, callId: `c-${id}`, caller: '+15550199', owner: 'ui-test', maxWaitMs: 600_000, waitingSince: Number(sec) * 1000 + Math.floor(Number(usec) / 1000) - ms });
    return id;
  };
  const answer = async (task: string, agent: string): Promise<void> => {
    const r = await a.app.tasks.reserve('default', task, '8000', [agent], 1, 60_000);
    if (!Array.isArray(r)) throw new Error(String(r));
    expect((await a.app.tasks.claimAnswer('default', task, '8000', r[0]!)).ok).toBe(true);
    await a.app.tasks.release('default', r[0]!);
  };

  it('is the share answered within slaSeconds of those answered or abandoned after it (short abandons left out), in REST, queue.stats and the snapshot', async () => {
    for (const ag of ['1001', '1002']) {
      await a.app.engine.login('default', ag);
      await registerPhone(a, ag);
    }
    await answer(await waitedFor(0), '1001'); // in time
    await answer(await waitedFor(60_000), '1002'); // after the 20 s threshold
    await a.app.tasks.end('default', await waitedFor(1_000), '8000', 'abandoned'); // short abandon
    await a.app.tasks.end('default', await waitedFor(45_000), '8000', 'abandoned'); // abandoned after the threshold
    const expected = { slaSeconds: 20, answered: 2, answeredInSla: 1, abandoned: 2, abandonedInSla: 1, serviceLevel: 1 / 3 };

    const rest = await a.call('GET', '/callcenter/default/queue/8000');
    expect(rest.body.slaSeconds).toBe(20);
    expect(rest.body.stats).toMatchObject(expected);

    const ws = await connectEvents(`${a.base.replace('http', 'ws')}/callcenter/default/events`, { token: API_TOKENS[0] as string });
    ws.send({ op: 'subscribe', topics: ['queue:8000'] });
    const snap = await ws.next('snapshot', (f) => f.op === 'snapshot');
    expect((snap.data as any).stats).toMatchObject(expected);
    expect(snap.now).toEqual(expect.any(Number));
    // Only now the queue's stats deadline (gone with the flush of the test before) falls due:
    // made due before the subscription, its event could come before the snapshot and be missed
    // (seen once in a loaded CI run).
    await raw.zadd('ccs:{default}:deadlines', 0, 'qstats|8000');
    const stats = await ws.next('queue.stats', (f) => f.op === 'event' && (f.event as any).type === 'queue.stats' && (f.event as any).queue === '8000');
    expect(stats.event).toMatchObject(expected);
    await ws.close();
  });

  it('is null before any caller was answered or abandoned after the threshold, and follows a queue\'s own slaSeconds', async () => {
    const b = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: UI, instanceId: 'test-b', queues: { '8001': { slaSeconds: 90 } } });
    try {
      const q = await b.call('GET', '/callcenter/default/queue/8001');
      expect(q.body.slaSeconds).toBe(90);
      expect(q.body.stats).toMatchObject({ slaSeconds: 90, serviceLevel: null });
      await b.app.tasks.end('default', await waitedFor(60_000, '8001'), '8001', 'abandoned'); // 60 s < 90 s: short
      expect((await b.call('GET', '/callcenter/default/queue/8001')).body.stats).toMatchObject({ abandoned: 1, abandonedInSla: 1, serviceLevel: null });
    } finally {
      await b.close();
    }
  });

  it('tells a transferred caller\'s wait in its enqueued event', async () => {
    await waitedFor(30_000);
    const entries = (await raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][];
    const enqueued = entries.map(([, f]) => JSON.parse(f[f.indexOf('data') + 1]!) as { reason: string; waitedMs: number }).find((d) => d.reason === 'enqueued')!;
    expect(enqueued.waitedMs).toBeGreaterThanOrEqual(30_000);
  });
});

describe('GET queue/{q}/history', () => {
  it('gives the last 60 minutes, oldest first, with this minute\'s answered callers and the most waiting', async () => {
    await a.app.engine.login('default', '1001');
    await registerPhone(a, '1001');
    await answeredCaller(a, '1001', '+15550113');
    await answeredCaller(a, '1001', '+15550114');
    await waitingCaller(a, '+15550111');
    await waitingCaller(a, '+15550112');
    const res = await a.call('GET', '/callcenter/default/queue/8000/history', { headers: as('agent1001') });
    expect(res.status).toBe(200);
    const minutes = res.body.minutes as { minute: number; answered: number; waiting: number | null }[];
    expect(minutes).toHaveLength(60);
    expect(minutes.map((m) => m.minute)).toEqual(minutes.map((_, i) => minutes[0]!.minute + i * 60_000));
    const last = minutes.at(-1)!;
    expect(last.minute).toBe(Math.floor(res.body.now / 60_000) * 60_000);
    // Unless the two answers fell on both sides of a minute's end.
    expect(last.answered + (minutes.at(-2)?.answered ?? 0)).toBe(2);
    expect(Math.max(last.waiting ?? 0, minutes.at(-2)?.waiting ?? 0)).toBe(2);
    expect(minutes[0]!.waiting).toBeNull();
  });

  it("is 403 for a queue outside the token's scope and 404 for an unknown queue", async () => {
    expect((await a.call('GET', '/callcenter/default/queue/8001/history', { headers: as('agent1001') })).body.error).toBe('forbidden');
    expect((await a.call('GET', '/callcenter/default/queue/8999/history')).body.error).toBe('unknown_queue');
  });

  it('keeps two hours in Redis and drops what is older when a sample is taken', async () => {
    const key = 'ccs:{default}:queue:8000:history';
    const minute = Math.floor(Date.now() / 60_000);
    await raw.hset(key, `a:${minute - 500}`, '3', `w:${minute - 500}`, '1', `a:${minute - 5}`, '4');
    await a.redis.ccsQueueHistorySample(key, 'ccs:{default}:queue:8000:tasks', 120);
    const fields = await raw.hgetall(key);
    expect(fields[`a:${minute - 500}`]).toBeUndefined();
    expect(fields[`a:${minute - 5}`]).toBe('4');
    expect(await raw.pttl(key)).toBeGreaterThan(7_000_000);
  });
});

describe('the UI files at /ui/', () => {
  it('serves the pages and their files without a token, with a Content-Security-Policy that allows only this server', async () => {
    for (const page of ['/ui', '/ui/', '/ui/wallboard', '/ui/agent', '/ui/supervisor/']) {
      const res = await rawGet(a.base, page);
      expect([page, res.status, res.headers['content-type'], res.headers['cache-control']]).toEqual([page, 200, 'text/html; charset=utf-8', 'no-cache']);
      expect(res.body).toContain('/ui/assets/index-abc.js');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+;/);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    const js = await rawGet(a.base, '/ui/assets/index-abc.js');
    expect([js.status, js.headers['content-type'], js.headers['cache-control']]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    expect((await rawGet(a.base, '/ui/assets/index-abc.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('never serves a file outside its directory, a dotfile, or a page it does not have', async () => {
    for (const path of ['/ui/../secret.txt', '/ui/..%2fsecret.txt', '/ui/%2e%2e/secret.txt', '/ui/assets/..%2F..%2Fsecret.txt', '/ui/assets/%2e%2e%2f%2e%2e%2fsecret.txt', '/ui/..%5csecret.txt', '/ui/.vite/manifest.json', '/ui/%2evite/manifest.json', '/ui/nope', '/ui/assets/', '/ui/index.html%00.js']) {
      const res = await rawGet(a.base, path);
      expect([path, res.body.includes('not for the browser'), res.body.includes('{}') && res.status === 200]).toEqual([path, false, false]);
      expect([path, [400, 401, 404].includes(res.status)]).toEqual([path, true]);
    }
  });

  it('answers 404 with a hint when the UI has not been built', async () => {
    const b = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS, uiDir: mkdtempSync(join(tmpdir(), 'ccs-ui-empty-')), instanceId: 'test-c' });
    try {
      const res = await rawGet(b.base, '/ui/wallboard');
      expect([res.status, JSON.parse(res.body)]).toEqual([404, { error: 'not_found', message: 'the browser UI is not built (npm run build)' }]);
    } finally {
      await b.close();
    }
  });
});
