import { Redis } from 'ioredis';
import { AgentState } from '../../lib/agent/stateMachine';
import type { AgentStateEvent } from '../../lib/events';
import { callCenterKeys } from '../../lib/store/keys';
import { createRedis } from '../../lib/store/redis';
import { startApp, type RunningApp } from '../helpers/app';
import { waitForEvent } from '../helpers/events';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let raw: Redis;
const keys = callCenterKeys('ccs', 'default');
const apps: RunningApp[] = [];

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
});
afterEach(async () => {
  for (const x of apps.splice(0)) await x.close();
  await raw.flushall();
});
afterAll(async () => {
  raw.disconnect();
  await server.stop();
});

const start = async (instanceId: string, o: { claimLeaseMs?: number } = {}): Promise<RunningApp> => {
  const x = await startApp({ redisUrl: server.url, instanceId, wrapUpSeconds8000: 0.5, pollMs: 20, ...o });
  apps.push(x);
  return x;
};

/** Deadlines other than the queues' periodic statistics (which every running instance keeps armed). */
const timers = async (): Promise<string[]> => (await raw.zrange(keys.deadlines, 0, -1)).filter((m) => !m.startsWith('qstats|'));

/** The claim token of `member` in a DEADLINE_CLAIM reply's [member, token, ...] list. */
const tokenOf = (claimed: string[], member: string): string | undefined => {
  const i = claimed.indexOf(member);
  return i >= 0 && i % 2 === 0 ? claimed[i + 1] : undefined;
};

const isWrapUpEnd = (agent: string) => (e: { type: string }): boolean => {
  const ev = e as AgentStateEvent;
  return ev.type === 'agent.state' && ev.agent === agent && ev.prev === AgentState.WrapUp && ev.state === AgentState.Ready;
};

describe('wrap-up deadlines', () => {
  it('end the wrap-up on instance B after instance A, which set it, has stopped', async () => {
    const a = await start('A');
    const b = await start('B');
    const { engine } = a.app;
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'c1', acdQueue: '8000' });
    const ended = await engine.callEnded('default', '1001', { callId: 'c1' });
    const [view] = await engine.states('default', '1001');
    expect(view!.state).toBe('wrap_up');
    await a.close();
    apps.splice(apps.indexOf(a), 1);
    const ev = (await waitForEvent(server.url, keys.events, isWrapUpEnd('1001'), ended.seqs[0])) as AgentStateEvent;
    expect(ev.instance).toBe('B');
    expect(ev.ts).toBeGreaterThanOrEqual(view!.wrapUpEndsAt!);
    const [after] = await b.app.engine.states('default', '1001');
    expect(after!.state).toBe('ready');
    expect(await timers()).toEqual([]);
    expect((await raw.hkeys(keys.deadlineClaims)).filter((m) => !m.startsWith('qstats|'))).toEqual([]);
  });

  it('a deadline claimed by an instance that died is taken over after the claim lease', async () => {
    const b = await start('B', { claimLeaseMs: 300 });
    await b.app.worker.stop(); // B must not race the "dead" claimer below
    const { engine } = b.app;
    await engine.login('default', '1002');
    await engine.callStarted('default', '1002', { callId: 'c2', acdQueue: '8000' });
    const ended = await engine.callEnded('default', '1002', { callId: 'c2' });
    // Play the dead instance: claim the deadline once it is due, then never handle it.
    await raw.zadd(keys.deadlines, 0, 'wrapup|1002|8000');
    const ghost = createRedis(server.url);
    const [claimed] = await ghost.ccsDeadlineClaim(keys.deadlines, keys.deadlineClaims, keys.deadlineToken, 300, 10);
    ghost.disconnect();
    expect(tokenOf(claimed, 'wrapup|1002|8000')).toEqual(expect.any(String));
    const leaseEnd = Number(await raw.zscore(keys.deadlines, 'wrapup|1002|8000'));
    b.app.worker.start();
    const ev = (await waitForEvent(server.url, keys.events, isWrapUpEnd('1002'), ended.seqs[0])) as AgentStateEvent;
    expect(ev.instance).toBe('B');
    expect(ev.ts).toBeGreaterThanOrEqual(leaseEnd);
  });

  it('a stale claim token cannot end a wrap-up that was re-armed', async () => {
    const b = await start('B');
    await b.app.worker.stop();
    const { engine } = b.app;
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'c1', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'c1' });
    await raw.zadd(keys.deadlines, 0, 'wrapup|1001|8000');
    const [claimed] = await b.redis.ccsDeadlineClaim(keys.deadlines, keys.deadlineClaims, keys.deadlineToken, 60000, 10);
    const staleToken = tokenOf(claimed, 'wrapup|1001|8000')!;
    expect(staleToken).toEqual(expect.any(String));
    // The agent leaves wrap-up, takes another ACD call and enters a new wrap-up.
    await engine.ready('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'c3', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'c3' });
    const res = await engine.expireWrapUp('default', '1001', '8000', staleToken);
    expect(res.results[0]!.changed).toBe(false);
    expect((await engine.states('default', '1001'))[0]!.state).toBe('wrap_up');
  });

  it('a wrap-up that runs out during an other call returns the agent to ready when that call ends', async () => {
    const b = await start('B');
    await b.app.worker.stop();
    const { engine } = b.app;
    await engine.login('default', '1001');
    await engine.callStarted('default', '1001', { callId: 'q1', acdQueue: '8000' });
    await engine.callEnded('default', '1001', { callId: 'q1' });
    await engine.callStarted('default', '1001', { callId: 'o1' });
    // Make the wrap-up due now and run one poll of the worker, instead of waiting for time to pass.
    await raw.zadd(keys.deadlines, 0, 'wrapup|1001|8000');
    await b.app.worker.tick();
    expect(await timers()).toEqual([]);
    expect((await engine.states('default', '1001'))[0]).toMatchObject({ state: 'other_call', remembered: 'ready' });
    await engine.callEnded('default', '1001', { callId: 'o1' });
    expect((await engine.states('default', '1001'))[0]!.state).toBe('ready');
  });
});

describe('scripts after a Redis restart', () => {
  it('recover from NOSCRIPT after SCRIPT FLUSH', async () => {
    const b = await start('B');
    await b.app.engine.login('default', '1001');
    await raw.script('FLUSH');
    const res = await b.app.engine.logout('default', '1001');
    expect(res.results[0]!.to).toBe('logged_out');
  });

  it('recover after the Redis server itself is restarted (empty script cache)', async () => {
    const b = await start('B');
    await b.app.engine.login('default', '1001');
    const ready = new Promise((resolve) => b.redis.once('ready', resolve));
    await server.restart();
    await ready;
    const res = await b.app.engine.login('default', '1001');
    expect(res.results[0]).toMatchObject({ from: 'logged_out', to: 'ready', changed: true });
    raw.disconnect();
    raw = new Redis(server.url);
  });
});
