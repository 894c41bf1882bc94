/**
 * The limits of calls placed for agents as Redis deadlines (seed 002 max_answer_seconds /
 * max_dial_seconds): armed on Redis's clock, fired by whichever instance claims them, handed
 * to the conversation's owner over the command bus; and call_out / xferOut on an instance
 * without drachtio-server answer 503, never half-applied. Conversations are opened on the
 * owner's hub with the media double and stand-in dialogs (no SIP in this layer).
 */
import { Redis } from 'ioredis';
import { Leg } from '../../app/sip/leg';
import { LegKind as K } from '../../lib/conversation/model';
import { Deadlines } from '../../lib/timers/deadlines';
import { createRedis } from '../../lib/store/redis';
import { FakeMediaServer } from '../../media/fake';
import { startApp, type RunningApp } from '../helpers/app';
import { standInDialog } from '../helpers/dialog';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let raw: Redis;
const apps: RunningApp[] = [];
const conns: Redis[] = [];
/** Deadlines on a connection of the test's own (closed after each test). */
const deadlinesOf = (x: RunningApp): Deadlines => {
  const redis = createRedis(server.url);
  conns.push(redis);
  return new Deadlines({ redis, config: x.app.config });
};

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
});
afterEach(async () => {
  for (const c of conns.splice(0)) c.disconnect();
  for (const x of apps.splice(0)) {
    await x.app.hub.endAll('test over');
    await x.close();
  }
  await raw.flushall();
});
afterAll(async () => {
  raw.disconnect();
  await server.stop();
});

const trunk = { trunks: { carrier: { addresses: ['127.0.0.3'], callcenter: 'default', outbound: '127.0.0.3:5999', callerIds: ['4930100'] } } };
const start = async (instanceId: string, media = new FakeMediaServer()): Promise<RunningApp> => {
  const x = await startApp({ redisUrl: server.url, instanceId, media, pollMs: 20, sip: trunk });
  apps.push(x);
  return x;
};


describe('call limits as Redis deadlines', () => {
  it('a talk limit armed by the owner is fired by another instance while the owner\'s timers are stopped: the owner ends the conversation and releases both legs', async () => {
    const media = new FakeMediaServer();
    const a = await start('test-a', media);
    const b = await start('test-b');
    await a.app.worker.stop();
    const conv = await a.app.hub.open({ cc: 'default' });
    const agentDialog = standInDialog();
    const farDialog = standInDialog();
    await conv.add({ kind: K.Agent, agent: '1001', ep: await media.createEndpoint(), sip: new Leg(agentDialog), mode: 1 });
    const far = await conv.add({ kind: K.External, ep: await media.createEndpoint(), sip: new Leg(farDialog), mode: 1 });
    const deadlines = deadlinesOf(a);
    await deadlines.arm('default', Deadlines.member('maxtalk', conv.id, far.id), 50);
    await conv.ended;
    expect(conv.endReason).toBe('max answer time reached');
    expect([agentDialog.byes, farDialog.byes]).toEqual([1, 1]);
    expect(await raw.hget(`ccs:{default}:conv:${conv.id}`, 'state')).toBe('ended');
    expect(b.app.hub.size).toBe(0);
    a.app.worker.start();
  });

  it('a talk limit of a leg that has left, or of a conversation that has ended, does nothing', async () => {
    const media = new FakeMediaServer();
    const a = await start('test-a', media);
    const conv = await a.app.hub.open({ cc: 'default' });
    await conv.add({ kind: K.Agent, agent: '1001', ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
    await conv.add({ kind: K.External, ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
    await a.app.hub.limitDue('default', 'talk', conv.id, 'some-other-leg');
    expect(conv.isEnded).toBe(false);
    await conv.end('test');
    await a.app.hub.limitDue('default', 'talk', conv.id, 'some-other-leg');
    await a.app.hub.limitDue('default', 'dial', 'no-such-conversation', 'x');
  });

  it('re-arming moves a deadline and disarming removes it with its claim', async () => {
    const a = await start('test-a');
    await a.app.worker.stop();
    const deadlines = deadlinesOf(a);
    const m = Deadlines.member('maxdial', 'c1', 'l1');
    const first = await deadlines.arm('default', m, 60_000);
    const second = await deadlines.arm('default', m, 120_000);
    expect(second - first).toBeGreaterThanOrEqual(59_000);
    expect(Number(await raw.zscore('ccs:{default}:deadlines', m))).toBe(second);
    expect(await deadlines.disarm('default', m)).toBe(true);
    expect(await deadlines.disarm('default', m)).toBe(false);
    expect(await raw.zscore('ccs:{default}:deadlines', m)).toBeNull();
    a.app.worker.start();
  });

  it('call_out and xferOut on an instance without drachtio-server answer 503 unavailable and leave nothing behind', async () => {
    const a = await start('test-a');
    const r = await a.call('POST', '/callcenter/default/agent/1001/call_out', { json: { to: '5551234', max_answer_seconds: 30 } });
    expect(r.status).toBe(503);
    expect(r.body.error).toBe('unavailable');
    expect(await raw.zcard('ccs:{default}:convs')).toBe(0);
    expect(await raw.hget('ccs:{default}:agent:1001', 'q:8000:state')).toBeNull();
  });
});
