/**
 * What each role's token may do (DESIGN.md section 12), on a real instance and Redis: every
 * REST route against the admin token, supervisor s1's token, a queue-only supervisor token
 * (queue 8001, no configured supervisor), agent 1001's token and a token of call center
 * `other`. A refusal is 403 `forbidden` and leaves no trace (agent states, operation log,
 * events, conversations); list routes show only what the token may see; the event stream
 * refuses topics outside the scope. Targets: agent 1002 (queue 8000, s1's), 1004 (queue 8001)
 * and 1003 (both queues).
 */
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import { LegKind, LegState } from '../../lib/conversation/model';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { startApp, type RunningApp } from '../helpers/app';
import { testConfig } from '../helpers/config';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, as, TOKENS, type Holder } from '../helpers/tokens';
import { connectEvents, type EventClient, type Frame } from '../helpers/wsClient';

let server: RedisServer;
let a: RunningApp;
let raw: Redis;

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({ redisUrl: server.url, apiTokens: API_TOKENS });
});
afterAll(async () => {
  await a.close();
  raw.disconnect();
  await server.stop();
});
beforeEach(async () => {
  await raw.flushall();
});

/** The token holders of the matrix. */
const MATRIX = ['admin', 's1', 'q8001', 'agent1001', 'other'] as const;
type MatrixHolder = (typeof MATRIX)[number];
const WHO: Record<MatrixHolder, string> = {
  admin: 'the admin token',
  s1: "supervisor s1's token",
  q8001: 'the queue-only supervisor token (8001)',
  agent1001: "agent 1001's token",
  other: "a token of call center 'other'",
};

const ENGINE = (): App['engine'] => a.app.engine;
const AGENTS = ['1001', '1002', '1003', '1004', '1005'];

/** Agent states to start a row from, chosen so that the operation under test would change something. */
type Start = 'logged_out' | 'logged_in' | 'not_ready';

async function prepare(start: Start, conversations = false): Promise<void> {
  if (start !== 'logged_out') for (const ag of AGENTS) await ENGINE().login('default', ag);
  if (start === 'not_ready') for (const ag of AGENTS) await ENGINE().notReady('default', ag, { reason: 4 });
  if (conversations) await conversationsOfEachScope();
}

/**
 * Three live conversations written straight to the store, owned by an instance that does not
 * exist (nothing runs them): conv-1002 of queue 8000 with agent 1002, conv-1004 of queue 8001
 * with agent 1004, and conv-1001 (no queue) with agent 1001.
 */
async function conversationsOfEachScope(): Promise<void> {
  const store = a.app.conversations;
  for (const [id, queue, agent] of [
    ['conv-1001', undefined, '1001'],
    ['conv-1002', '8000', '1002'],
    ['conv-1004', '8001', '1004'],
  ] as const) {
    await store.create('default', { id, owner: 'ghost-instance', queue });
    expect(await store.join('default', id, { leg: `leg-${agent}`, kind: LegKind.Agent, agent, mode: 1, state: LegState.Up })).toEqual({ seq: expect.any(Number) });
  }
}

/** Every trace an operation could leave: agent states, live conversations, log entries and events (periodic queue.stats aside). */
async function footprint(): Promise<unknown> {
  const agents = await a.call('GET', '/callcenter/default/agents');
  const convs = await a.call('GET', '/callcenter/default/conversations');
  expect([agents.status, convs.status]).toEqual([200, 200]);
  const events = ((await raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][]).filter(([, f]) => f[1] !== 'queue.stats');
  return { agents: agents.body, conversations: convs.body, oplog: await raw.xlen('ccs:{default}:oplog'), events: events.map(([id]) => id) };
}

/** One cell of the matrix. */
interface Row {
  name: string;
  who: MatrixHolder;
  method: 'GET' | 'POST';
  path: string;
  body?: Record<string, unknown>;
  allowed: boolean;
  /** The status and error code of an allowed request (the domain's answer). */
  outcome: [number, string?];
  start: Start;
  conversations?: boolean;
}

const outcomeText = ([status, error]: [number, string?]): string => (error === undefined ? String(status) : `${status} ${error}`);
const verdict = (allowed: boolean, outcome: [number, string?], post: boolean): string =>
  allowed ? `is allowed (${outcomeText(outcome)})` : post ? 'gets 403 forbidden and nothing changes' : 'gets 403 forbidden';

async function check(r: Row): Promise<void> {
  await prepare(r.start, r.conversations === true);
  const before = r.method === 'POST' ? await footprint() : undefined;
  const res = await a.call(r.method, `/callcenter/default/${r.path}`, { headers: as(r.who), ...(r.body === undefined ? {} : { json: r.body }) });
  if (r.allowed) {
    expect([res.status, res.body?.error]).toEqual(r.outcome.length === 1 ? [r.outcome[0], undefined] : r.outcome);
    return;
  }
  expect(res.status).toBe(403);
  expect(res.body).toEqual({ error: 'forbidden', message: expect.any(String) });
  if (before !== undefined) expect(await footprint()).toEqual(before);
}

// --- Agent operations: only the agent itself (and admin). ---------------------------------------

const XML = '<enqueue queue="8000"><agent id="1002"/></enqueue>';
const CALL = { to: '5551234', max_answer_seconds: 60 };
const AGENT_OPS: { op: string; body: Record<string, unknown>; outcome: [number, string?]; start: Start }[] = [
  { op: 'login', body: {}, outcome: [200], start: 'logged_out' },
  { op: 'logout', body: {}, outcome: [200], start: 'logged_in' },
  { op: 'ready', body: {}, outcome: [200], start: 'not_ready' },
  { op: 'not_ready', body: { reason: 7 }, outcome: [200], start: 'logged_in' },
  { op: 'pause', body: { conversation_id: 'none-such' }, outcome: [404, 'unknown_conversation'], start: 'logged_in' },
  { op: 'resume', body: { conversation_id: 'none-such' }, outcome: [404, 'unknown_conversation'], start: 'logged_in' },
  { op: 'call_out', body: CALL, outcome: [409, 'no_outbound_trunk'], start: 'logged_in' },
  { op: 'call_agent', body: { enqueue: XML }, outcome: [503, 'unavailable'], start: 'logged_in' },
  { op: 'xferOut', body: { conversation_id: 'none-such', ...CALL }, outcome: [409, 'no_outbound_trunk'], start: 'logged_in' },
  { op: 'xfer_agent', body: { conversation_id: 'none-such', queue: XML }, outcome: [404, 'unknown_conversation'], start: 'logged_in' },
  { op: 'consult', body: { conversation_id: 'none-such', to: '5551234' }, outcome: [409, 'no_outbound_trunk'], start: 'logged_in' },
  { op: 'consult_complete', body: { conversation_id: 'none-such', how: 'transfer' }, outcome: [404, 'unknown_conversation'], start: 'logged_in' },
  { op: 'consult_cancel', body: { conversation_id: 'none-such' }, outcome: [404, 'unknown_conversation'], start: 'logged_in' },
  { op: 'reject', body: { queue_task_id: 'none-such' }, outcome: [409, 'task_not_offered'], start: 'logged_in' },
  { op: 'forward_agent', body: { queue_task_id: 'none-such', enqueue: XML }, outcome: [409, 'task_not_offered'], start: 'logged_in' },
];

const agentOpRows: Row[] = AGENT_OPS.flatMap(({ op, body, outcome, start }) =>
  ['1001', '1002', '1004'].flatMap((target) =>
    MATRIX.map((who): Row => {
      const allowed = who === 'admin' || (who === 'agent1001' && target === '1001');
      return { name: `${WHO[who]} sending ${op} for agent ${target} ${verdict(allowed, outcome, true)}`, who, method: 'POST', path: `agent/${target}/${op}`, body, allowed, outcome, start };
    }),
  ),
);

describe('agent operations: an agent token acts only as its own agent, supervisors use the force_* routes', () => {
  it.each(agentOpRows.map((r) => [r.name, r] as const))('%s', async (_name, r) => check(r));

  it('an agent token acting on another agent gets 403 forbidden and nothing changes', async () => {
    await prepare('logged_in');
    const before = await footprint();
    const res = await a.call('POST', '/callcenter/default/agent/1002/logout', { headers: as('agent1001'), json: {} });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('forbidden');
    expect((await a.call('GET', '/callcenter/default/agent/1002')).body.queues.map((q: { state: string }) => q.state)).toEqual(['ready']);
    expect(await footprint()).toEqual(before);
  });

  it('a supervisor token sending a plain agent operation is pointed to the force_* routes', async () => {
    const res = await a.call('POST', '/callcenter/default/agent/1002/logout', { headers: as('s1'), json: {} });
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/force_logout/);
  });
});

// --- Forced changes: a supervisor on the agents of its queues, in its queues, as itself. --------

const FORCE_CASES: { target: string; body: Record<string, unknown>; allowed: readonly MatrixHolder[]; what: string }[] = [
  { target: '1002', body: {}, allowed: ['admin', 's1'], what: 'agent 1002 (queue 8000)' },
  { target: '1004', body: {}, allowed: ['admin', 'q8001'], what: 'agent 1004 (queue 8001)' },
  { target: '1003', body: { queue: '8000' }, allowed: ['admin', 's1'], what: 'agent 1003 in queue 8000' },
  { target: '1003', body: { queue: '8001' }, allowed: ['admin', 'q8001'], what: 'agent 1003 in queue 8001' },
  { target: '1002', body: { supervisor: 's1' }, allowed: ['admin', 's1'], what: 'agent 1002 naming supervisor s1' },
  { target: '1002', body: { supervisor: 's2' }, allowed: ['admin'], what: 'agent 1002 naming supervisor s2' },
  { target: '1004', body: { supervisor: 's2' }, allowed: ['admin'], what: 'agent 1004 naming supervisor s2' },
];
const FORCES: { kind: string; start: Start }[] = [
  { kind: 'force_logout', start: 'logged_in' },
  { kind: 'force_ready', start: 'not_ready' },
  { kind: 'force_not_ready', start: 'logged_in' },
];

const forceRows: Row[] = FORCES.flatMap(({ kind, start }) =>
  FORCE_CASES.flatMap(({ target, body, allowed: who_, what }) =>
    MATRIX.map((who): Row => {
      const allowed = who_.includes(who);
      return { name: `${WHO[who]} sending ${kind} for ${what} ${verdict(allowed, [200], true)}`, who, method: 'POST', path: `agent/${target}/${kind}`, body, allowed, outcome: [200], start };
    }),
  ),
);

describe('forced state changes: admin anywhere, a supervisor token on the agents and queues it oversees', () => {
  it.each(forceRows.map((r) => [r.name, r] as const))('%s', async (_name, r) => check(r));

  it("a supervisor forcing an agent of several queues without a queue changes only the queues it oversees", async () => {
    await prepare('logged_in');
    const res = await a.call('POST', '/callcenter/default/agent/1003/force_logout', { headers: as('q8001'), json: {} });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([{ queue: '8001', from: 'not_ready', to: 'logged_out', changed: true }]);
    expect((await a.call('GET', '/callcenter/default/agent/1003')).body.queues.map((q: { queue: string; state: string }) => [q.queue, q.state])).toEqual([
      ['8000', 'ready'],
      ['8001', 'logged_out'],
    ]);
  });
});

// --- Reads: one agent, one queue, one conversation, the log of one agent. ----------------------

const readRows: Row[] = [
  ...(
    [
      ['agent/1001', ['admin', 's1', 'agent1001']],
      ['agent/1002', ['admin', 's1']],
      ['agent/1004', ['admin', 'q8001']],
      ['agent/1003', ['admin', 's1', 'q8001']],
      ['queue/8000', ['admin', 's1', 'agent1001']],
      ['queue/8001', ['admin', 'q8001']],
      ['conversation/conv-1001', ['admin', 's1', 'agent1001']],
      ['conversation/conv-1002', ['admin', 's1']],
      ['conversation/conv-1004', ['admin', 'q8001']],
      ['oplog?agent=1001', ['admin', 's1', 'agent1001']],
      ['oplog?agent=1002', ['admin', 's1']],
      ['oplog?agent=1004', ['admin', 'q8001']],
    ] as const
  ).flatMap(([path, allowed]) =>
    MATRIX.map((who): Row => {
      const ok = (allowed as readonly string[]).includes(who);
      return { name: `${WHO[who]} reading GET ${path} ${verdict(ok, [200], false)}`, who, method: 'GET', path, allowed: ok, outcome: [200], start: 'logged_in', conversations: true };
    }),
  ),
];

describe('reads of one agent, queue, conversation or agent log: only within the scope', () => {
  it.each(readRows.map((r) => [r.name, r] as const))('%s', async (_name, r) => check(r));

  it('a conversation is judged by its agents as well as its queue: s1 sees a queue-8001 conversation of agent 1003 (a member of 8000)', async () => {
    await a.app.conversations.create('default', { id: 'conv-1003', owner: 'ghost-instance', queue: '8001' });
    await a.app.conversations.join('default', 'conv-1003', { leg: 'leg-1003', kind: LegKind.Agent, agent: '1003', mode: 1, state: LegState.Up });
    expect((await a.call('GET', '/callcenter/default/conversation/conv-1003', { headers: as('s1') })).status).toBe(200);
    expect((await a.call('GET', '/callcenter/default/conversation/conv-1003', { headers: as('q8001') })).status).toBe(200);
    expect((await a.call('GET', '/callcenter/default/conversation/conv-1003', { headers: as('agent1001') })).status).toBe(403);
  });
});

// --- Monitoring: only as the token's own supervisor. ---------------------------------------------

const monitorRows: Row[] = (
  [
    ['supervisor/s1/monitor', { agent: '1001', mode: 'listen' }, ['admin', 's1'], [503, 'owner_unreachable'], 'starting monitoring of agent 1001 as supervisor s1'],
    ['supervisor/s2/monitor', { agent: '1004', mode: 'whisper' }, ['admin'], [503, 'owner_unreachable'], 'starting monitoring of agent 1004 as supervisor s2'],
    ['supervisor/s1/monitor/stop', {}, ['admin', 's1'], [409, 'not_monitoring'], 'stopping the monitoring of supervisor s1'],
    ['supervisor/s2/monitor/stop', {}, ['admin'], [409, 'not_monitoring'], 'stopping the monitoring of supervisor s2'],
  ] as const
).flatMap(([path, body, allowed, outcome, what]) =>
  MATRIX.map((who): Row => {
    const ok = (allowed as readonly string[]).includes(who);
    return { name: `${WHO[who]} ${what} ${verdict(ok, [...outcome], true)}`, who, method: 'POST', path, body: { ...body }, allowed: ok, outcome: [...outcome], start: 'logged_in', conversations: true };
  }),
);

describe('monitoring: only a token acting as that supervisor (or admin)', () => {
  it.each(monitorRows.map((r) => [r.name, r] as const))('%s', async (_name, r) => check(r));

  it("supervisor s1's token monitoring an agent outside its queues gets 403 forbidden and nothing changes", async () => {
    await prepare('logged_in', true);
    const before = await footprint();
    const res = await a.call('POST', '/callcenter/default/supervisor/s1/monitor', { headers: as('s1'), json: { agent: '1004', mode: 'listen' } });
    expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
    expect(await footprint()).toEqual(before);
  });

  it("supervisor s1's token on an agent of its queue without a call gets 409 not_on_call (the scope passed, the domain answered)", async () => {
    const res = await a.call('POST', '/callcenter/default/supervisor/s1/monitor', { headers: as('s1'), json: { agent: '1002', mode: 'listen' } });
    expect([res.status, res.body.error]).toEqual([409, 'not_on_call']);
  });
});

// --- Lists: only what the token may see. -----------------------------------------------------------

const ids = (list: { id: string }[]): string[] => list.map((x) => x.id).sort();

describe('list routes return only what the token may see', () => {
  const lists: [string, string, Record<MatrixHolder, string[] | 403>][] = [
    ['agents', 'agents', { admin: AGENTS, s1: ['1001', '1002', '1003'], q8001: ['1003', '1004', '1005'], agent1001: ['1001'], other: 403 }],
    ['queues', 'queues', { admin: ['8000', '8001'], s1: ['8000'], q8001: ['8001'], agent1001: ['8000'], other: 403 }],
    ['supervisors', 'supervisors', { admin: ['s1', 's2'], s1: ['s1'], q8001: ['s2'], agent1001: 403, other: 403 }],
    ['conversations', 'conversations', { admin: ['conv-1001', 'conv-1002', 'conv-1004'], s1: ['conv-1001', 'conv-1002'], q8001: ['conv-1004'], agent1001: ['conv-1001'], other: 403 }],
  ];
  it.each(lists.flatMap(([path, key, want]) => MATRIX.map((who) => [`GET ${path} with ${WHO[who]}: ${want[who] === 403 ? '403 forbidden' : JSON.stringify(want[who])}`, path, key, who, want[who]] as const)))(
    '%s',
    async (_name, path, key, who, want) => {
      await conversationsOfEachScope();
      const res = await a.call('GET', `/callcenter/default/${path}`, { headers: as(who) });
      if (want === 403) {
        expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
        return;
      }
      expect(res.status).toBe(200);
      expect(ids(res.body[key])).toEqual(want);
    },
  );

  it('GET agents for s1 is 1001, 1002, 1003 with their states; for agent 1001 only itself', async () => {
    await prepare('logged_in');
    const s1 = await a.call('GET', '/callcenter/default/agents', { headers: as('s1') });
    expect(s1.body.agents.map((x: { id: string; queues: { queue: string; state: string }[] }) => [x.id, x.queues.map((q) => `${q.queue}:${q.state}`)])).toEqual([
      ['1001', ['8000:ready']],
      ['1002', ['8000:ready']],
      ['1003', ['8000:ready', '8001:not_ready']],
    ]);
    const me = await a.call('GET', '/callcenter/default/agents', { headers: as('agent1001') });
    expect(me.body.agents.map((x: { id: string }) => x.id)).toEqual(['1001']);
  });

  it('GET conversations?agent= of an agent outside the scope is an empty list, not a leak', async () => {
    await conversationsOfEachScope();
    const res = await a.call('GET', '/callcenter/default/conversations?agent=1004', { headers: as('s1') });
    expect(res.status).toBe(200);
    expect(res.body.conversations).toEqual([]);
  });

  it("a token of call center 'other' sees its own call center", async () => {
    const res = await a.call('GET', '/callcenter/other/agents', { headers: as('other') });
    expect(res.status).toBe(200);
    expect(ids(res.body.agents)).toEqual(['2001']);
  });
});

describe('the operation log shows a token only the entries of agents in its scope', () => {
  beforeEach(async () => {
    for (const ag of AGENTS) await ENGINE().login('default', ag);
    await ENGINE().notReady('default', '1001', { reason: 4 });
    await ENGINE().notReady('default', '1004', { reason: 4 });
  });

  const agentsOf = (entries: { agent: string }[]): string[] => [...new Set(entries.map((e) => e.agent))].sort();

  it("GET oplog with agent 1001's token returns exactly 1001's entries", async () => {
    const mine = await a.call('GET', '/callcenter/default/oplog', { headers: as('agent1001') });
    expect(mine.status).toBe(200);
    expect(mine.body.entries.map((e: { agent: string; op: number; reason: number }) => [e.agent, e.op, e.reason])).toEqual([
      ['1001', 1, -1],
      ['1001', 3, 4],
    ]);
    const all = await a.call('GET', '/callcenter/default/oplog?agent=1001');
    expect(mine.body.entries).toEqual(all.body.entries);
  });

  it("GET oplog with s1's token returns the entries of 1001, 1002 and 1003 only; the 8001-only token those of 1003, 1004 and 1005", async () => {
    const s1 = await a.call('GET', '/callcenter/default/oplog', { headers: as('s1') });
    expect(agentsOf(s1.body.entries)).toEqual(['1001', '1002', '1003']);
    expect(s1.body.entries).toHaveLength(5); // 1001 login + not ready, 1002 login, 1003 login in 8000 and 8001
    const q = await a.call('GET', '/callcenter/default/oplog', { headers: as('q8001') });
    expect(agentsOf(q.body.entries)).toEqual(['1003', '1004', '1005']);
  });

  it('GET oplog?agent= of an agent outside the scope is 403 forbidden', async () => {
    const res = await a.call('GET', '/callcenter/default/oplog?agent=1004', { headers: as('s1') });
    expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
  });
});

// --- The event stream. -----------------------------------------------------------------------------

describe('event stream subscriptions are judged by the token', () => {
  const clients: EventClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  const url = (cc = 'default'): string => `${a.base.replace('http', 'ws')}/callcenter/${cc}/events`;
  const connect = async (who: Holder): Promise<EventClient> => {
    const c = await connectEvents(url(), { token: TOKENS[who] });
    clients.push(c);
    await c.next('hello', (f) => f.op === 'hello');
    return c;
  };
  const answerTo = (c: EventClient) => c.next('snapshot or error', (f) => f.op === 'error' || f.op === 'subscribed');

  it.each([
    ['s1', 'callcenter'],
    ['q8001', 'callcenter'],
    ['agent1001', 'callcenter'],
    ['s1', 'queue:8001'],
    ['s1', 'agent:1004'],
    ['s1', 'conversation:conv-1004'],
    ['q8001', 'agent:1002'],
    ['agent1001', 'agent:1002'],
    ['agent1001', 'queue:8001'],
    ['agent1001', 'conversation:conv-1002'],
    ['agent1001', 'conversation:no-such-conversation'],
  ] as const)('%s subscribing to %s gets a forbidden error frame naming the topic', async (who, topic) => {
    await conversationsOfEachScope();
    const c = await connect(who);
    c.send({ op: 'subscribe', topics: [topic] });
    expect(await answerTo(c)).toEqual({ op: 'error', error: 'forbidden', topic, message: expect.any(String) });
  });

  it.each([
    ['admin', 'callcenter'],
    ['s1', 'queue:8000'],
    ['s1', 'agent:1003'],
    ['s1', 'conversation:conv-1002'],
    ['q8001', 'conversation:conv-1004'],
    ['agent1001', 'agent:1001'],
    ['agent1001', 'queue:8000'],
    ['agent1001', 'conversation:conv-1001'],
  ] as const)('%s subscribing to %s gets its snapshot', async (who, topic) => {
    await conversationsOfEachScope();
    const c = await connect(who);
    c.send({ op: 'subscribe', topics: [topic] });
    expect(await c.next('snapshot or error', (f) => f.op === 'error' || f.op === 'snapshot')).toMatchObject({ op: 'snapshot', topic });
    expect(await answerTo(c)).toMatchObject({ op: 'subscribed', topics: [topic] });
  });

  it('a refused subscribe subscribes nothing, not even its topics inside the scope', async () => {
    const c = await connect('s1');
    // The suite flushes Redis between tests, but the instance's stream reader stays at the
    // sequence it had read (the hello frame's): numbering resumes from there so it sees the events.
    await raw.set('ccs:{default}:events:seq', String(c.frames[0]!.seq));
    c.send({ op: 'subscribe', topics: ['queue:8000', 'agent:1004'] });
    expect(await answerTo(c)).toMatchObject({ op: 'error', error: 'forbidden', topic: 'agent:1004' });
    c.send({ op: 'subscribe', topics: ['agent:1001'] });
    expect(await answerTo(c)).toMatchObject({ op: 'subscribed', topics: ['agent:1001'] });
    // Changes of 1002 (queue 8000) and 1004, then of 1001: only the last may arrive.
    await ENGINE().login('default', '1002');
    await ENGINE().login('default', '1004');
    const last = await ENGINE().login('default', '1001');
    const ev = await c.next('1001 logged in', (f) => f.op === 'event');
    expect(ev.event).toMatchObject({ type: 'agent.state', agent: '1001', seq: last.seqs[0] });
    expect(c.frames.filter((f: Frame) => f.op === 'event')).toHaveLength(1);
  });

  it.each([
    ['the Authorization header', true],
    ['an auth frame', false],
  ])("a token of call center 'other' by %s: an error frame forbidden, then close 4003", async (_how, header) => {
    const c = await connectEvents(url(), header ? { token: TOKENS.other } : {});
    clients.push(c);
    if (!header) c.send({ op: 'auth', token: TOKENS.other });
    expect((await c.closed).code).toBe(4003);
    expect(c.frames).toEqual([{ op: 'error', error: 'forbidden', message: expect.any(String) }]);
  });

  it("a token of call center 'other' is welcome on its own call center's stream", async () => {
    const c = await connectEvents(url('other'), { token: TOKENS.other });
    clients.push(c);
    expect(await c.next('hello', (f) => f.op === 'hello' || f.op === 'error')).toMatchObject({ op: 'hello', cc: 'other' });
  });
});

// --- A refusal is logged with the token's name. ------------------------------------------------

describe('refusals are logged', () => {
  it("a refused request is logged at warn with the token's name and role, never the token", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const config = testConfig({ redisUrl: server.url, instanceId: 'scopes-log', apiTokens: API_TOKENS });
    const redis = createRedis(server.url);
    redis.on('error', () => undefined);
    const app = await createApp(config, { redis, logger: createLogger('warn', {}, sink) });
    const { port } = await app.start();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/callcenter/default/agent/1004/force_logout`, {
        method: 'POST',
        headers: { ...as('s1'), 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(403);
      const refused = lines.filter((l) => l.msg === "request outside the token's scope refused");
      expect(refused).toEqual([expect.objectContaining({ level: 40, token: 'lead-s1', role: 'supervisor', method: 'POST', url: '/callcenter/default/agent/1004/force_logout' })]);
      expect(JSON.stringify(lines)).not.toContain(TOKENS.s1);
    } finally {
      await app.stop();
      redis.disconnect();
    }
  });
});
