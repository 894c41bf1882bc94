/**
 * The invariant audit (issue "faults", item 1) on a real Redis: a healthy call center audits
 * empty; each invariant broken on purpose is found once, with its key and an explanation, and
 * the repair mends it with the ending the normal path gives (its events), after which the
 * audit is empty. The `npm run audit` command line does the same from outside.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parseEvent } from '../../lib/events';
import { testConfigYaml } from '../helpers/config';
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

const events = async (): Promise<Record<string, unknown>[]> => ((await raw.xrange('ccs:{default}:events', '-', '+')) as [string, string[]][]).map((e) => parseEvent(e) as unknown as Record<string, unknown>);

const repairRun = async (): Promise<{ repaired: { finding: { kind: string }; action: string; applied: boolean }[]; findings: unknown[] }> => {
  const res = await a.call('POST', '/callcenter/default/audit/repair');
  expect(res.status).toBe(200);
  return res.body as { repaired: { finding: { kind: string }; action: string; applied: boolean }[]; findings: unknown[] };
};

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
    expect(await findings()).toEqual([{ kind: 'ready_set', key: 'ccs:{default}:queue:8000:ready', agent: '1001', queue: '8000', explanation: expect.stringMatching(/agent 1001 is Ready in queue 8000 but not in its Ready set/) }]);
  });

  it('finds an agent on a queue call no live instance guards', async () => {
    await a.app.engine.login('default', '1001');
    await a.app.engine.callStarted('default', '1001', { callId: 'lost-call', acdQueue: '8000' });
    expect(await findings()).toEqual([{ kind: 'unguarded_call', key: 'ccs:{default}:agent:1001', agent: '1001', queue: '8000', call: 'lost-call', explanation: expect.stringMatching(/queue_call in queue 8000 on call lost-call, which no live instance guards/) }]);
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

  it('finds a waiting caller whose owning instance is gone', async () => {
    await a.app.tasks.enqueue('default', { id: 't-dead', queue: '8000', priority: 0, callId: 'cid-dead', caller: '+4930123', owner: 'dead-incarnation', maxWaitMs: 60_000 });
    const f = await findings();
    expect(f).toEqual([{ kind: 'task_dead_owner', key: 'ccs:{default}:task:t-dead', queue: '8000', task: 't-dead', explanation: expect.stringMatching(/caller \+4930123 \(task t-dead\) waits in queue 8000, but its owner dead-incarnation is gone/) }]);
  });

  it('does not count a waiting caller of a live instance', async () => {
    await a.app.tasks.enqueue('default', { id: 't-live', queue: '8000', priority: 0, callId: 'cid-live', caller: '+4930123', owner: a.app.guard.incarnation, maxWaitMs: 60_000 });
    expect(await findings()).toEqual([]);
  });

  it('finds an agent still listing a conversation that ended', async () => {
    await raw.sadd('ccs:{default}:agent:1001:convs', 'c-gone');
    expect((await findings()).map((f) => [f.kind, f.key, f.explanation])).toEqual([['stale_leg', 'ccs:{default}:agent:1001:convs', expect.stringMatching(/agent 1001's conversations still name c-gone/)]]);
  });

  it('is admin only: a supervisor token gets 403 forbidden', async () => {
    const res = await a.call('GET', '/callcenter/default/audit', { headers: { authorization: 'Bearer supervisor-token-0123456789' } });
    expect(res).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    const rep = await a.call('POST', '/callcenter/default/audit/repair', { headers: { authorization: 'Bearer supervisor-token-0123456789' } });
    expect(rep).toMatchObject({ status: 403, body: { error: 'forbidden' } });
  });
});

describe('audit repair', () => {
  it('on a healthy call center changes nothing and writes no event', async () => {
    await a.app.engine.login('default', '1001');
    const before = await events();
    expect(await repairRun()).toEqual({ repaired: [], findings: [] });
    expect(await events()).toEqual(before);
  });

  it('ends an unguarded call for its agent with the normal call end (agent.state events), in every queue at once', async () => {
    await a.app.engine.login('default', '1003');
    await a.app.engine.callStarted('default', '1003', { callId: 'lost-call', acdQueue: '8000' });
    expect((await findings()).map((f) => f.kind)).toEqual(['unguarded_call', 'unguarded_call']);
    const seq = Number(await raw.get('ccs:{default}:events:seq'));
    const out = await repairRun();
    expect(out.findings).toEqual([]);
    expect(out.repaired.map((r) => r.applied)).toEqual([true, false]);
    const after = (await events()).filter((e) => Number(e.seq) > seq);
    expect(after.map((e) => [e.type, e.queue, e.prev])).toEqual(expect.arrayContaining([['agent.state', '8000', 'queue_call'], ['agent.state', '8001', 'other_call']]));
    const h = await raw.hgetall('ccs:{default}:agent:1003');
    expect(h['q:8000:state']).not.toBe('queue_call');
    expect(h['q:8001:state']).not.toBe('other_call');
  });

  it('closes a waiting caller of a dead instance with a queue.caller event (reason closed)', async () => {
    await a.app.tasks.enqueue('default', { id: 't-dead', queue: '8000', priority: 0, callId: 'cid-dead', caller: '+4930123', owner: 'dead-incarnation', maxWaitMs: 60_000 });
    const out = await repairRun();
    expect(out).toMatchObject({ findings: [], repaired: [{ finding: { kind: 'task_dead_owner' }, applied: true }] });
    expect((await events()).filter((e) => e.type === 'queue.caller').map((e) => [e.task, e.reason])).toEqual([['t-dead', 'enqueued'], ['t-dead', 'closed']]);
    expect(await raw.zrange('ccs:{default}:queue:8000:tasks', 0, -1)).toEqual([]);
  });

  it('ends a conversation of a dead instance with its ended event', async () => {
    await a.app.conversations.create('default', { id: 'c-dead', owner: 'nobody-incarnation' });
    const out = await repairRun();
    expect(out).toMatchObject({ findings: [], repaired: [{ finding: { kind: 'conversation_dead_owner' }, applied: true }] });
    expect((await events()).filter((e) => e.type === 'conversation').map((e) => [e.id, e.action])).toEqual([['c-dead', 'created'], ['c-dead', 'ended']]);
  });

  it('drops an ended conversation from an agent\'s list, and leaves an active one', async () => {
    await a.app.conversations.create('default', { id: 'c-live', owner: a.app.guard.incarnation });
    await raw.sadd('ccs:{default}:agent:1001:convs', 'c-gone', 'c-live');
    expect(await repairRun()).toMatchObject({ findings: [], repaired: [{ finding: { kind: 'stale_leg' }, applied: true }] });
    expect(await raw.smembers('ccs:{default}:agent:1001:convs')).toEqual(['c-live']);
  });

  it('gives a reservation without a lease one, so it expires as leases do', async () => {
    await raw.set('ccs:{default}:resv:1001', '7|task-1|8000');
    expect(await repairRun()).toMatchObject({ findings: [], repaired: [{ finding: { kind: 'reservation_without_lease' }, applied: true }] });
    expect(await raw.pttl('ccs:{default}:resv:1001')).toBeGreaterThan(0);
    expect(await raw.get('ccs:{default}:resv:1001')).toBe('7|task-1|8000');
  });

  it('puts a Ready agent back in its Ready set (scored by when it became Ready) and takes a Not Ready one out', async () => {
    await a.app.engine.login('default', '1001');
    await a.app.engine.login('default', '1002');
    await a.app.engine.notReady('default', '1002', { reason: 1 });
    const score = await raw.zscore('ccs:{default}:queue:8000:ready', '1001');
    await raw.zrem('ccs:{default}:queue:8000:ready', '1001');
    await raw.zadd('ccs:{default}:queue:8000:ready', 1, '1002');
    expect((await repairRun()).findings).toEqual([]);
    expect(await raw.zrange('ccs:{default}:queue:8000:ready', 0, -1, 'WITHSCORES')).toEqual(['1001', score]);
  });

  it('moves a counter behind its stream up, and the next state change is written after it', async () => {
    await a.app.engine.login('default', '1001');
    await raw.set('ccs:{default}:events:seq', '0');
    expect((await repairRun()).findings).toEqual([]);
    const last = Number(await raw.get('ccs:{default}:events:seq'));
    expect(last).toBeGreaterThan(0);
    const r = await a.app.engine.notReady('default', '1001', { reason: 1 });
    expect(r.seqs[0]).toBe(last + 1);
  });

  it('drops bindings past their expiry and keeps the live ones', async () => {
    await raw.zadd('ccs:{default}:reg:1001:exp', Date.now() - 60_000, 'sip:1001@192.0.2.1', Date.now() + 600_000, 'sip:1001@192.0.2.2');
    await raw.hset('ccs:{default}:reg:1001', 'sip:1001@192.0.2.1', '{}', 'sip:1001@192.0.2.2', '{}');
    expect(await repairRun()).toMatchObject({ findings: [], repaired: [{ finding: { kind: 'registration_expired' }, applied: true }] });
    expect(await raw.hkeys('ccs:{default}:reg:1001')).toEqual(['sip:1001@192.0.2.2']);
    expect(await raw.zscore('ccs:{default}:deadlines', 'regexp|1001')).not.toBeNull();
  });
});

describe('npm run audit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ccs-audit-'));
  const run = (...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, testConfigYaml({ redisUrl: server.url }));
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [require.resolve('tsx/cli'), 'bin/audit.ts', ...args], { env: { ...process.env, CCSWITCH_CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  };

  it('reports a healthy call center and exits 0', async () => {
    const r = await run('--cc', 'default');
    expect(r).toMatchObject({ code: 0, stdout: 'call center default: no broken invariants\n' });
  });

  it('lists what is broken and exits 1; --repair mends it (with its events) and exits 0', async () => {
    await a.app.engine.login('default', '1001');
    await a.app.engine.callStarted('default', '1001', { callId: 'lost-call', acdQueue: '8000' });
    const listed = await run('--cc', 'default');
    expect(listed.code).toBe(1);
    expect(listed.stdout).toMatch(/1 broken invariant\(s\)\n {2}unguarded_call +ccs:\{default\}:agent:1001\n +agent 1001 is queue_call/);
    expect(await raw.hget('ccs:{default}:agent:1001', 'q:8000:state')).toBe('queue_call');
    const fixed = await run('--cc', 'default', '--repair');
    expect(fixed.code).toBe(0);
    expect(fixed.stdout).toMatch(/repaired: ended call lost-call for agent 1001[^]*after repair: no broken invariants/);
    expect(fixed.stderr).toMatch(/audit repair: ended call lost-call/);
    expect(await raw.hget('ccs:{default}:agent:1001', 'q:8000:state')).not.toBe('queue_call');
  });

  it('--json prints the findings as JSON', async () => {
    await raw.set('ccs:{default}:resv:1001', '7|task-1|8000');
    const r = await run('--cc', 'default', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ findings: [expect.objectContaining({ kind: 'reservation_without_lease', key: 'ccs:{default}:resv:1001' })] });
  });

  it('refuses an unknown call center with exit 2', async () => {
    const r = await run('--cc', 'nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no call center nope/);
  });
});
