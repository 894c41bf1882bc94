/**
 * The WebSocket event stream (DESIGN.md section 7) on real instances, a real Redis and a real
 * `ws` client: authentication and its refusals, snapshot then ordered events, resume with
 * `since` (exactly the missed events, or a gap snapshot after trimming), delivery across
 * instances, slow consumers, and the error frame of each bad frame.
 */
import { Redis } from 'ioredis';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { connectEvents, type EventClient, type Frame } from '../helpers/wsClient';

let server: RedisServer;
let a: RunningApp;
let b: RunningApp;
let raw: Redis;
const clients: EventClient[] = [];

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  const events = { authTimeoutMs: 300, maxSubscriptions: 5, maxFrameBytes: 512 };
  a = await startApp({ redisUrl: server.url, instanceId: 'ev-a', extraAgents: 20, events });
  b = await startApp({ redisUrl: server.url, instanceId: 'ev-b', extraAgents: 20, events });
});
afterAll(async () => {
  for (const c of clients.splice(0)) await c.close();
  await a.close();
  await b.close();
  raw.disconnect();
  await server.stop();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

const url = (app: RunningApp, cc = 'default'): string => `${app.base.replace('http', 'ws')}/callcenter/${cc}/events`;
/** A client of `app` with a bearer header (`null`: none). */
const connect = async (app: RunningApp, token: string | null = app.token): Promise<EventClient> => {
  const c = await connectEvents(url(app), token === null ? {} : { token });
  clients.push(c);
  return c;
};
const eventOf = (f: Frame): { seq: number; type: string; [k: string]: unknown } => f.event as { seq: number; type: string };
const isEvent = (pred: (e: ReturnType<typeof eventOf>) => boolean) => (f: Frame) => f.op === 'event' && pred(eventOf(f));

describe('authentication', () => {
  it('by the Authorization header: a hello frame with the call center and the stream position', async () => {
    const c = await connect(a);
    expect(await c.next('hello')).toMatchObject({ op: 'hello', cc: 'default', instance: 'ev-a', seq: expect.any(Number) });
  });

  it('by a first auth frame (browsers cannot set headers)', async () => {
    const c = await connect(a, null);
    c.send({ op: 'auth', token: a.token });
    expect((await c.next('hello')).op).toBe('hello');
  });

  it.each([
    ['a wrong header', 'not-the-token-000000', undefined],
    ['a wrong auth frame', null, { op: 'auth', token: 'nope-nope-nope-nope' }],
    ['another op before auth', null, { op: 'subscribe', topics: ['callcenter'] }],
    ['no auth frame in time', null, undefined],
  ])('%s: an error frame, then close 4001, nothing else', async (_what, token, first) => {
    const c = await connect(a, token);
    if (first !== undefined) c.send(first);
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(c.frames).toEqual([{ op: 'error', error: 'unauthorized', message: expect.any(String) }]);
  });

  it('an unknown call center is refused before the upgrade (404)', async () => {
    await expect(connectEvents(url(a, 'nope'), { token: a.token })).rejects.toThrow(/404/);
  });
});

describe('subscriptions', () => {
  it('a queue snapshot while agents change state concurrently, then every later event in order: replayed, they equal GET queue', async () => {
    const agents = Array.from({ length: 20 }, (_, i) => `a${i + 1}`);
    for (const ag of agents) await a.app.engine.login('default', ag);
    let stop = false;
    // Changes on instance B while the client of instance A subscribes.
    const churn = (async () => {
      let i = 0;
      while (!stop) {
        const ag = agents[i++ % agents.length]!;
        const st = (await b.app.engine.states('default', ag))[0]!.state;
        await (st === S.Ready ? b.app.engine.notReady('default', ag, { reason: 4 }) : b.app.engine.ready('default', ag));
      }
    })();
    const c = await connect(a);
    await c.next('hello');
    c.send({ op: 'subscribe', topics: ['queue:8000'] });
    const snap = await c.next('snapshot', (f) => f.op === 'snapshot');
    expect(snap).toMatchObject({ topic: 'queue:8000', reason: 'subscribe', seq: expect.any(Number) });
    // Let the churn run on past the snapshot, then stop it and wait for its last event.
    await c.next('some events after the snapshot', (f) => f.op === 'event' && eventOf(f).seq > (snap.seq as number) + 50);
    stop = true;
    await churn;
    const last = Number(await raw.get('ccs:{default}:events:seq'));
    await c.next('the last event', isEvent((e) => e.seq === last));

    const members = new Map((snap.data as { members: { agent: string; state: string }[] }).members.map((m) => [m.agent, m.state]));
    const events = c.frames.filter((f) => f.op === 'event').map(eventOf);
    // In order, none twice, none at or before the snapshot.
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
    expect(seqs[0]).toBeGreaterThan(snap.seq as number);
    for (const e of events) if (e.type === 'agent.state' && e.queue === '8000') members.set(String(e.agent), String(e.state));
    const rest = await a.call('GET', '/callcenter/default/queue/8000');
    expect(Object.fromEntries(members)).toEqual(Object.fromEntries((rest.body.members as { agent: string; state: string }[]).map((m) => [m.agent, m.state])));
    // Every change after the snapshot reached the client: the stream holds no 8000 change it lacks.
    const all = ((await raw.xrange('ccs:{default}:events', `(${snap.seq as number}-0`, '+')) as [string, string[]][]).length;
    expect(events.length).toBe(all);
  }, 60000);

  it('an agent topic: snapshot of its states, then its events only', async () => {
    const c = await connect(a);
    await c.next('hello');
    c.send({ op: 'subscribe', topics: ['agent:1003'] });
    const snap = await c.next('snapshot', (f) => f.op === 'snapshot');
    expect(snap.data).toMatchObject({ agent: '1003', queues: [{ queue: '8000', state: 'logged_out' }, { queue: '8001', state: 'logged_out' }], reservation: null, conversations: [] });
    await a.app.engine.login('default', '1001');
    await a.app.engine.login('default', '1003');
    const e = await c.next('1003 logs in', isEvent((x) => x.type === 'agent.state'));
    expect(eventOf(e)).toMatchObject({ agent: '1003', queue: '8000', state: 'ready' });
    await c.next('1003 in 8001', isEvent((x) => x.type === 'agent.state' && x.queue === '8001'));
    expect(c.frames.filter((f) => f.op === 'event').every((f) => eventOf(f).agent === '1003')).toBe(true);
  });

  it('resume with since after a disconnect gets exactly the missed events, no snapshot', async () => {
    const c1 = await connect(a);
    await c1.next('hello');
    c1.send({ op: 'subscribe', topics: ['agent:1002'] });
    await c1.next('snapshot', (f) => f.op === 'snapshot');
    await a.app.engine.login('default', '1002');
    const seen = eventOf(await c1.next('login', isEvent(() => true))).seq;
    await c1.close();
    await a.app.engine.notReady('default', '1002', { reason: 4 });
    await a.app.engine.logout('default', 'a13', { reason: 258 }); // another agent: not of this topic
    await a.app.engine.login('default', 'a13');
    await a.app.engine.ready('default', '1002');
    // The stream holds other agents' events after `seen` too; only 1002's are of the topic.
    const missed = ((await raw.xrange('ccs:{default}:events', `(${seen}-0`, '+')) as [string, string[]][]).length;
    expect(missed).toBeGreaterThan(2);
    const c2 = await connect(b);
    await c2.next('hello');
    c2.send({ op: 'subscribe', topics: ['agent:1002'], since: seen });
    await c2.next('subscribed', (f) => f.op === 'subscribed');
    await c2.next('ready again', isEvent((e) => e.state === 'ready' && e.prev === 'not_ready'));
    expect(c2.frames.map((f) => f.op)).toEqual(['hello', 'subscribed', 'event', 'event']);
    expect(c2.frames.filter((f) => f.op === 'event').map((f) => eventOf(f).state)).toEqual(['not_ready', 'ready']);
  });

  it('resume after that part of the stream was trimmed gets a gap snapshot', async () => {
    await a.app.engine.login('default', '1004');
    const old = Number(await raw.get('ccs:{default}:events:seq'));
    await a.app.engine.notReady('default', '1004', { reason: 4 });
    await a.app.engine.ready('default', '1004');
    await raw.xtrim('ccs:{default}:events', 'MAXLEN', 1);
    const c = await connect(a);
    await c.next('hello');
    c.send({ op: 'subscribe', topics: ['agent:1004'], since: old - 1 });
    const snap = await c.next('gap snapshot', (f) => f.op === 'snapshot');
    expect(snap).toMatchObject({ topic: 'agent:1004', reason: 'gap', data: { queues: [{ queue: '8001', state: 'ready' }] } });
  });

  it('a change made through instance A reaches a client of instance B', async () => {
    const c = await connect(b);
    await c.next('hello');
    c.send({ op: 'subscribe', topics: ['callcenter'] });
    await c.next('snapshot', (f) => f.op === 'snapshot');
    const res = await a.call('POST', '/callcenter/default/agent/1005/login');
    expect(res.status).toBe(200);
    const e = await c.next('1005 logged in', isEvent((x) => x.agent === '1005'));
    expect(eventOf(e)).toMatchObject({ type: 'agent.state', agent: '1005', instance: 'ev-a' });
  });

  it.each([
    ['malformed JSON', '{"op":', 'malformed_json'],
    ['an unknown op', { op: 'frobnicate' }, 'unknown_op'],
    ['an unknown topic kind', { op: 'subscribe', topics: ['weather:today'] }, 'unknown_topic'],
    ['a queue of another call center', { op: 'subscribe', topics: ['queue:9000'] }, 'unknown_topic'],
    ['an unknown agent', { op: 'subscribe', topics: ['agent:7777'] }, 'unknown_topic'],
    ['no topics', { op: 'subscribe', topics: [] }, 'bad_request'],
    ['too many topics', { op: 'subscribe', topics: ['agent:1001', 'agent:1002', 'agent:1003', 'agent:1004', 'agent:1005', 'queue:8000'] }, 'too_many_subscriptions'],
    ['a frame over the size limit', { op: 'subscribe', topics: ['callcenter'], pad: 'x'.repeat(600) }, 'frame_too_large'],
    ['a bad since', { op: 'subscribe', topics: ['callcenter'], since: -4 }, 'bad_since'],
  ])('%s: error frame %s, and the connection stays open', async (_what, frame, code) => {
    const c = await connect(a);
    await c.next('hello');
    c.send(frame);
    expect(await c.next('error', (f) => f.op === 'error')).toMatchObject({ error: code });
    c.send({ op: 'ping' });
    expect((await c.next('pong', (f) => f.op === 'pong')).op).toBe('pong');
  });
});

describe('keep-alive', () => {
  let quick: RunningApp;
  beforeAll(async () => {
    quick = await startApp({ redisUrl: server.url, instanceId: 'ev-ping', events: { pingMs: 150 } });
  });
  afterAll(async () => {
    await quick.close();
  });

  it('a peer that answers pings stays; one that stops answering is dropped and no longer counted', async () => {
    const live = await connect(quick);
    const dead = await connect(quick);
    await live.next('hello');
    await dead.next('hello');
    let pings = 0;
    live.ws.on('ping', () => (pings += 1));
    // A dead peer: its socket no longer reads, so it never sees a ping nor answers one.
    const deadSocket = (dead.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    deadSocket.pause();
    const gauge = async (): Promise<number> => (await quick.app.metrics.wsClients.get()).values[0]?.value ?? 0;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        void gauge().then((n) => (n === 1 ? resolve() : undefined));
      };
      live.ws.on('ping', check);
    });
    expect(pings).toBeGreaterThanOrEqual(2);
    live.send({ op: 'ping' });
    expect((await live.next('pong', (f) => f.op === 'pong')).op).toBe('pong');
    // The dead peer learns it was cut off (no close handshake: terminated) once it reads again.
    deadSocket.resume();
    expect((await dead.closed).code).toBe(1006);
  });
});

describe('slow consumers', () => {
  let slow: RunningApp;
  beforeAll(async () => {
    slow = await startApp({ redisUrl: server.url, instanceId: 'ev-slow', events: { maxBufferedBytes: 4096 } });
  });
  afterAll(async () => {
    await slow.close();
  });

  it('a client that stops reading is closed with 4008 and its lastSeq, and resumes from there without a gap', async () => {
    const c = await connect(slow);
    await c.next('hello');
    c.send({ op: 'subscribe', topics: ['agent:1001'] });
    await c.next('snapshot', (f) => f.op === 'snapshot');
    // Stop reading: the server's send buffer fills once the kernel's are full.
    const sock = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    sock.pause();
    await slow.app.engine.login('default', '1001');
    // Produce events until the server gives up on the client (counted in its metrics).
    const closedForSlowness = async (): Promise<boolean> => ((await slow.app.metrics.wsSlowClosed.get()).values[0]?.value ?? 0) > 0;
    for (let n = 0; n < 50000 && !(await closedForSlowness()); n++) await slow.app.engine.notReady('default', '1001', { reason: (n % 2) + 4 });
    expect(await closedForSlowness()).toBe(true);
    sock.resume();
    const { code } = await c.closed;
    expect(code).toBe(4008);
    const err = c.frames.find((f) => f.op === 'error')!;
    expect(err).toMatchObject({ error: 'slow_consumer', lastSeq: expect.any(Number) });
    // Everything before the error frame arrived in order; resuming from lastSeq misses nothing.
    const got = c.frames.filter((f) => f.op === 'event').map((f) => eventOf(f).seq);
    expect(got[got.length - 1]).toBe(err.lastSeq);
    await slow.app.engine.ready('default', '1001');
    const c2 = await connect(slow);
    await c2.next('hello');
    c2.send({ op: 'subscribe', topics: ['agent:1001'], since: err.lastSeq });
    const last = Number(await raw.get('ccs:{default}:events:seq'));
    await c2.next('caught up', isEvent((e) => e.seq === last), 30000);
    const resumed = c2.frames.filter((f) => f.op === 'event').map((f) => eventOf(f).seq);
    const expected = ((await raw.xrange('ccs:{default}:events', `(${err.lastSeq as number}-0`, '+')) as [string, string[]][]).length;
    expect(resumed.length).toBe(expected);
    expect(resumed[0]).toBe((err.lastSeq as number) + 1);
  }, 120000);
});

describe('a state store that lost its data', () => {
  it('a subscribed client gets a fresh snapshot (reason reset) when the stream begins again at 1, then the new events', async () => {
    await a.app.engine.login('default', '1001');
    const c = await connect(a);
    c.send({ op: 'subscribe', topics: ['agent:1001'] });
    await c.next('snapshot', (f) => f.op === 'snapshot');
    await a.app.engine.ready('default', '1001');
    await a.app.engine.notReady('default', '1001');
    const before = eventOf(await c.next('not ready', isEvent((e) => e.type === 'agent.state' && e.state === S.NotReady)));
    expect(before.seq).toBeGreaterThan(2);
    // Redis restarted without persistence: the event stream and its counter are gone.
    await raw.flushall();
    const reset = await c.next('reset snapshot', (f) => f.op === 'snapshot' && f.reason === 'reset');
    expect(reset).toMatchObject({ topic: 'agent:1001', seq: 0 });
    await a.app.engine.login('default', '1001');
    const after = eventOf(await c.next('the first event of the new stream', isEvent((e) => e.type === 'agent.state' && e.agent === '1001')));
    expect(after.seq).toBe(1);
  });
});
