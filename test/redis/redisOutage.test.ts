/**
 * Redis going away under a running instance (issue "faults", item 4), with a real
 * redis-server persisting to AOF as docker-compose runs it:
 * - cut off for 10 s (a TCP proxy the test controls resets every connection and refuses new
 *   ones): every request meanwhile is 503 and changes nothing; afterwards the wrap-up timer
 *   that fell due in the outage fires, the event stream goes on, a guarded call is still
 *   there, and the audit is empty;
 * - black-holed (the proxy holds the bytes) and healed: the state change the client gave up
 *   on reaches Redis late and Redis refuses it (the write fence), so it is never applied;
 * - restarted: the state is kept (AOF), requests in the gap are 503, the next ones work.
 */
import { Redis } from 'ioredis';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { parseEvent, parseOplog } from '../../lib/events';
import { callCenterKeys } from '../../lib/store/keys';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy';
import { connectEvents, type EventClient, type Frame } from '../helpers/wsClient';

const keys = callCenterKeys('ccs', 'default');
type Ev = { seq: number; type: string; agent?: string; queue?: string; prev?: string; state?: string };
const eventOf = (f: Frame): Ev => f.event as Ev;
const isEvent = (pred: (e: Ev) => boolean) => (f: Frame): boolean => f.op === 'event' && pred(eventOf(f));

/** Polls `probe` until it holds (bounded); the wait is on a condition, not a duration. */
async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 15000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Events of the stream after `seq`, straight from Redis. */
async function eventsAfter(raw: Redis, seq: number): Promise<Ev[]> {
  const rows = (await raw.xrange(keys.events, `(${seq}-0`, '+')) as [string, string[]][];
  // Queue statistics are published on their own timer, outage or not.
  return rows.map((r) => parseEvent(r) as unknown as Ev).filter((e) => e.type !== 'queue.stats');
}

const lastSeq = async (raw: Redis): Promise<number> => {
  const [row] = (await raw.xrevrange(keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][];
  return row === undefined ? 0 : Number(row[0].split('-')[0]);
};

const stateOf = async (a: RunningApp, agent: string, queue = '8000'): Promise<string | undefined> => (await a.app.engine.states('default', agent)).find((v) => v.queue === queue)?.state;

const healthy = async (a: RunningApp): Promise<boolean> => (await a.call('GET', '/healthz')).status === 200;

describe('Redis outage', () => {
  let server: RedisServer;
  let raw: Redis;
  let proxy: TcpProxy | undefined;
  let a: RunningApp | undefined;
  let ws: EventClient | undefined;

  beforeEach(async () => {
    server = await startRedis({ aof: true });
    raw = new Redis(server.url);
  });
  afterEach(async () => {
    await ws?.close();
    await a?.close();
    await proxy?.close();
    raw.disconnect();
    await server.stop();
    ws = a = proxy = undefined;
  });

  it('cut off for 10 s: every request meanwhile is 503 and changes nothing; then the wrap-up timer fires, the event stream goes on, the guarded call is still there and the audit is empty', async () => {
    proxy = await startTcpProxy(server.port);
    a = await startApp({ redisUrl: proxy.url, instanceId: 'A', wrapUpSeconds8000: 2 });
    const { engine, guard } = a.app;
    await engine.login('default', '1001');
    await engine.login('default', '1003');
    // 1003 talks on a guarded call; 1001 ends a queue call and goes to wrap-up (due in 2 s, inside the outage).
    await guard.track('default', 'call-g', ['1003']);
    await engine.callStarted('default', '1003', { callId: 'call-g', op: 41 });
    await engine.callStarted('default', '1001', { callId: 'call-w', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'call-w' });
    expect(await stateOf(a, '1001')).toBe(S.WrapUp);
    ws = await connectEvents(`${a.base.replace('http', 'ws')}/callcenter/default/events`, { token: a.token });
    await ws.next('hello', (f) => f.op === 'hello');
    ws.send({ op: 'subscribe', topics: ['callcenter'] });
    await ws.next('snapshot', (f) => f.op === 'snapshot');
    const before = await lastSeq(raw);
    const oplogBefore = await raw.xlen(keys.oplog);

    await proxy.cut();
    const cutAt = Date.now();
    // Requests all through the outage: state changes and reads alike are 503 `unavailable`.
    const answers: { status: number; error: unknown }[] = [];
    while (Date.now() - cutAt < 10000) {
      for (const [method, path] of [
        ['POST', '/callcenter/default/agent/1002/login'],
        ['POST', '/callcenter/default/agent/1003/not_ready'],
        ['GET', '/callcenter/default/agent/1001'],
      ] as const) {
        const r = await a.call(method, path);
        answers.push({ status: r.status, error: (r.body as { error?: unknown }).error });
      }
      const h = await a.call('GET', '/healthz');
      answers.push({ status: h.status, error: (h.body as { status?: unknown }).status });
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(answers.length).toBeGreaterThan(8);
    expect(answers.filter((x) => x.status !== 503 || (x.error !== 'unavailable' && x.error !== 'down'))).toEqual([]);
    await proxy.restore();
    await until('the instance is back on Redis', () => healthy(a!));

    // The wrap-up that fell due in the outage ends now, and the event stream delivers it.
    const wrapped = await ws.next('1001 back from wrap-up', isEvent((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready), 15000);
    expect(eventOf(wrapped).seq).toBeGreaterThan(before);
    // Nothing tried in the outage was applied, late or in part: the only new entries are the wrap-up's.
    expect((await eventsAfter(raw, before)).filter((e) => e.agent !== '1001')).toEqual([]);
    expect(await raw.xrange(keys.oplog, '-', '+').then((rows) => (rows.slice(oplogBefore) as [string, string[]][]).map(parseOplog).filter((e) => e.agent !== '1001'))).toEqual([]);
    expect(await stateOf(a, '1002')).toBe(S.LoggedOut);
    // The guarded call survived the outage (its guard is longer than 10 s) and still ends normally.
    expect(await stateOf(a, '1003')).toBe(S.OtherCall);
    // Requests work again, and their events reach the same socket.
    const login = await a.call('POST', '/callcenter/default/agent/1002/login');
    expect(login.status).toBe(200);
    await ws.next('1002 logs in', isEvent((e) => e.type === 'agent.state' && e.agent === '1002' && e.state === S.Ready));
    await engine.callEnded('default', '1003', { callId: 'call-g' });
    await guard.untrack('default', 'call-g');
    expect(await stateOf(a, '1003')).toBe(S.Ready);
    const audit = await a.call('GET', '/callcenter/default/audit');
    expect(audit.status).toBe(200);
    expect(audit.body).toEqual({ findings: [] });
  }, 60000);

  it('black-holed, then healed: the state change the client gave up on reaches Redis late and is refused, never applied', async () => {
    proxy = await startTcpProxy(server.port);
    a = await startApp({ redisUrl: proxy.url, instanceId: 'B' });
    await a.app.engine.login('default', '1001');
    const before = await lastSeq(raw);
    const staleBefore = await staleRefusals(raw);

    proxy.blackhole();
    const partitioned = Date.now();
    // A REST request gives up at the command timeout: 503. A state change sent straight to
    // Redis (the engine, as the SIP handlers call it) gives up likewise, its script still held.
    const [r, direct] = await Promise.all([
      a.call('POST', '/callcenter/default/agent/1001/not_ready', { json: { reason: 4 } }),
      a.app.engine.notReady('default', '1001', { reason: 4 }).then(
        () => 'applied',
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      ),
    ]);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ error: 'unavailable' });
    expect(direct).toMatch(/timed out|timeout/i);
    // The partition lasts 5 s; when it ends, what the proxy held reaches Redis, seconds late.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 5000 - (Date.now() - partitioned))));
    proxy.heal();
    await until('Redis refused the late writes', async () => (await staleRefusals(raw)) > staleBefore);
    await until('the instance is back on Redis', () => healthy(a!));
    // Redis has run what it received: the not_ready it refused left no trace.
    expect(await stateOf(a, '1001')).toBe(S.Ready);
    expect(await eventsAfter(raw, before)).toEqual([]);
    const again = await a.call('POST', '/callcenter/default/agent/1001/not_ready', { json: { reason: 4 } });
    expect(again.status).toBe(200);
    expect(await stateOf(a, '1001')).toBe(S.NotReady);
    expect((await a.call('GET', '/callcenter/default/audit')).body).toEqual({ findings: [] });
  }, 60000);

  it('restarted (AOF): requests in the gap are 503, the states and sequence numbers are kept, the next requests work and the audit is empty', async () => {
    a = await startApp({ redisUrl: server.url, instanceId: 'C' });
    const { engine, guard } = a.app;
    await engine.login('default', '1001');
    await engine.login('default', '1003');
    await guard.track('default', 'call-r', ['1003']);
    await engine.callStarted('default', '1003', { callId: 'call-r', op: 41 });
    const seq = await lastSeq(raw);
    raw.disconnect();

    await server.stop();
    const gap = await a.call('POST', '/callcenter/default/agent/1001/not_ready');
    expect(gap.status).toBe(503);
    expect((await a.call('GET', '/healthz')).status).toBe(503);
    await server.restart();
    raw = new Redis(server.url);
    await until('the instance is back on Redis', () => healthy(a!));

    expect(await stateOf(a, '1001')).toBe(S.Ready);
    expect(await stateOf(a, '1003')).toBe(S.OtherCall);
    // The stream and its sequence survived: the next change numbers on from where it was.
    expect((await eventsAfter(raw, 0)).length).toBeGreaterThanOrEqual(3);
    expect(await eventsAfter(raw, seq)).toEqual([]);
    const nr = await a.call('POST', '/callcenter/default/agent/1001/not_ready');
    expect(nr.status).toBe(200);
    expect(nr.body.seqs[0]).toBeGreaterThan(seq);
    await engine.callEnded('default', '1003', { callId: 'call-r' });
    await guard.untrack('default', 'call-r');
    expect((await a.call('GET', '/callcenter/default/audit')).body).toEqual({ findings: [] });
  }, 60000);
});

/** How many scripts Redis refused for arriving after their write deadline (INFO errorstats). */
async function staleRefusals(raw: Redis): Promise<number> {
  const info = await raw.info('errorstats');
  return Number(/errorstat_CCS_STALE:count=(\d+)/.exec(info)?.[1] ?? 0);
}
