/**
 * Feature access codes and registration through a real drachtio-server, dialed by sipp
 * (DESIGN.md sections 4 and 10). The media port is "no media server", so success is a 200 OK
 * with a null SDP followed by BYE, and each failure a specific final response.
 */
import { once } from 'node:events';
import { EventEmitter } from 'node:events';
import Srf from 'drachtio-srf';
import { createApp, type App } from '../../app/createApp';
import type { SrfLike } from '../../app/sip/types';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { NO_MEDIA } from '../../media/none';
import { testConfig } from '../helpers/config';
import { startDrachtio, type DrachtioServer } from '../helpers/drachtio';
import { describeLayer } from '../helpers/layers';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { runSipp } from '../helpers/sipp';
import { registerRequest, UdpSip } from '../helpers/udpSip';
import { digestResponse } from '../../lib/sip/digest';
import { Redis } from 'ioredis';
import { parseOplog } from '../../lib/events';

describeLayer('sip', 'feature access codes over drachtio-server', () => {
  let redisServer: RedisServer;
  let drachtio: DrachtioServer;
  let app: App;
  let redis: Redis;
  let raw: Redis;
  let target: string;
  const settled = new EventEmitter();

  beforeAll(async () => {
    redisServer = await startRedis();
    drachtio = await startDrachtio();
    const config = testConfig({
      redisUrl: redisServer.url,
      drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret },
      // sipp sending from 127.0.0.2 plays a carrier trunk.
      sip: { trunks: { carrier: { addresses: ['127.0.0.2/32'], callcenter: 'default' } } },
    });
    redis = createRedis(redisServer.url);
    raw = new Redis(redisServer.url);
    const srf = new Srf() as unknown as SrfLike & EventEmitter;
    const connected = once(srf, 'connect');
    app = await createApp(config, { redis, logger: createLogger('silent'), srf, media: NO_MEDIA, onInviteSettled: (callId, outcome) => settled.emit('settled', callId, outcome) });
    await app.start();
    const [err] = (await connected) as [Error | null];
    if (err) throw err;
    target = `127.0.0.1:${drachtio.sipPort}`;
  });
  afterAll(async () => {
    await app?.stop();
    redis?.disconnect();
    raw?.disconnect();
    await drachtio?.stop();
    await redisServer?.stop();
  });
  beforeEach(async () => {
    const keys = await raw.keys('ccs:{default}:*');
    if (keys.length > 0) await raw.del(...keys);
  });

  const states = async (agent: string): Promise<Record<string, string>> =>
    Object.fromEntries((await app.engine.states('default', agent)).map((v) => [v.queue, v.state]));
  /** A FAC that succeeds; the BYE's Reason text must match `reason` (a regular expression). */
  const fac = (service: string, user: string, password = `secret-${user}`, reason = '.+') => runSipp({ scenario: 'fac-ok.xml', target, service, user, password, replace: { __REASON__: reason } });
  /** A FAC refused with `status`; the reason phrase must match `phrase` (a regular expression). */
  const facFails = (service: string, user: string, status: number, phrase = '.+') => runSipp({ scenario: 'fac-fail.xml', target, service, user, password: `secret-${user}`, status, replace: { __PHRASE__: phrase } });
  const expectOk = (r: { code: number | null; output: string; errors: string }): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-2000)}`);
  };

  it('*38 logs the authenticated agent in to all its queues, answers with a null SDP and hangs up with the outcome in the BYE Reason', async () => {
    expectOk(await fac('*38', '1003', undefined, 'logged in: ready in 1 queue, not ready in 1 queue'));
    expect(await states('1003')).toEqual({ '8000': S.Ready, '8001': S.NotReady });
    const log = ((await raw.xrange('ccs:{default}:oplog', '-', '+')) as [string, string[]][]).map(parseOplog).map((e) => [e.agent, String(e.op)]);
    expect(log).toEqual([
      ['1003', '1'],
      ['1003', '1'],
    ]);
  });

  it('*388000 logs in to queue 8000 only', async () => {
    expectOk(await fac('*388000', '1003', undefined, 'logged in: ready in 1 queue'));
    expect(await states('1003')).toEqual({ '8000': S.Ready, '8001': S.LoggedOut });
  });

  it('*37*4 sets not ready with reason 4 everywhere, *378000 in one queue, *36 back to ready, *39 logs out', async () => {
    expectOk(await fac('*38', '1003'));
    expectOk(await fac('*37*4', '1003', undefined, 'not ready in 2 queues'));
    const nr = await app.engine.states('default', '1003');
    expect(nr.map((v) => [v.queue, v.state, v.reason])).toEqual([
      ['8000', S.NotReady, 4],
      ['8001', S.NotReady, 4],
    ]);
    expectOk(await fac('*36', '1003', undefined, 'ready in 2 queues'));
    expect(await states('1003')).toEqual({ '8000': S.Ready, '8001': S.Ready });
    expectOk(await fac('*378000', '1003', undefined, 'not ready in 1 queue'));
    expect(await states('1003')).toEqual({ '8000': S.NotReady, '8001': S.Ready });
    expectOk(await fac('*39', '1003', undefined, 'logged out of 2 queues'));
    expect(await states('1003')).toEqual({ '8000': S.LoggedOut, '8001': S.LoggedOut });
    const ops = ((await raw.xrange('ccs:{default}:oplog', '-', '+')) as [string, string[]][]).map((e) => parseOplog(e).op);
    expect(ops).toEqual([1, 1, 3, 3, 2, 2, 3, 0, 0]);
  });

  it('*388001 from an agent that is not a member of 8001 is refused with 403 and no state change', async () => {
    expectOk(await facFails('*388001', '1001', 403, 'Not a member of queue 8001'));
    expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
    expect(await raw.exists('ccs:{default}:events')).toBe(0);
  });

  it('*389999 (no such queue) is refused with 404', async () => {
    expectOk(await facFails('*389999', '1001', 404, 'No queue 9999'));
  });

  it.each(['*3', '*3612a', `*38${'1'.repeat(30)}`])('%s is refused with 484 and changes nothing', async (dial) => {
    expectOk(await facFails(dial, '1001', 484, 'Malformed feature code'));
    expect(await raw.exists('ccs:{default}:events')).toBe(0);
  });

  it('*36 while logged out is an illegal transition: 409', async () => {
    expectOk(await facFails('*368000', '1001', 409, 'Not allowed while logged out in queue 8000'));
  });

  it('*35 reads the states back in the BYE Reason and changes nothing: no event, no log entry', async () => {
    await app.engine.login('default', '1003');
    const events = await raw.xlen('ccs:{default}:events');
    const ops = await raw.xlen('ccs:{default}:oplog');
    expectOk(await fac('*35', '1003', undefined, '8000 ready, 8001 not ready'));
    expect(await raw.xlen('ccs:{default}:events')).toBe(events);
    expect(await raw.xlen('ccs:{default}:oplog')).toBe(ops);
    expect(await states('1003')).toEqual({ '8000': S.Ready, '8001': S.NotReady });
  });

  it('a feature code that only fails because of its wrong phrase makes the scenario fail (the check can fail)', async () => {
    const r = await facFails('*389999', '1001', 404, 'Something else');
    expect(r.code).not.toBe(0);
  });

  it('a FAC without credentials is challenged with 407 and never executed', async () => {
    expectOk(await runSipp({ scenario: 'invite-challenged.xml', target, service: '*38', user: '1001' }));
    expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
  });

  it('a feature code from a trunk is refused with 403 without a challenge: only agents have a state to change', async () => {
    const r = await runSipp({ scenario: 'invite-final.xml', target, service: '*38', user: '1001', status: 403, localIp: '127.0.0.2' });
    expectOk(r);
    expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
    expect(await raw.exists('ccs:{default}:events')).toBe(0);
  });

  it('a trunk is not challenged: an unknown number from it gets 404 at once', async () => {
    expectOk(await runSipp({ scenario: 'invite-final.xml', target, service: '7777', user: 'carrier', status: 404, localIp: '127.0.0.2' }));
  });

  it('the same INVITE from an address outside the trunk allow-list is challenged', async () => {
    expectOk(await runSipp({ scenario: 'invite-challenged.xml', target, service: '7777', user: 'carrier', localIp: '127.0.0.3' }));
  });

  it('a FAC with the wrong password is refused with 403 and never executed', async () => {
    expectOk(await runSipp({ scenario: 'fac-wrong-password.xml', target, service: '*38', user: '1001', password: 'not-the-password' }));
    expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
  });

  it('a CANCEL that arrives while the FAC is being processed leaves no half-applied state', async () => {
    const outcome = new Promise<string>((resolve) => {
      const on = (_callId: string, o: string): void => {
        if (o === 'canceled' || o === 'applied_then_canceled') {
          settled.off('settled', on);
          resolve(o);
        }
      };
      settled.on('settled', on);
    });
    // Hold every Redis write for a second: the authenticated INVITE is stuck inside ccswitch
    // (digest replay guard, then the transition) while sipp cancels it.
    await raw.call('CLIENT', 'PAUSE', '1000', 'WRITE');
    expectOk(await runSipp({ scenario: 'fac-cancel.xml', target, service: '*38', user: '1001', password: 'secret-1001' }));
    const how = await outcome;
    const events = await raw.xrange('ccs:{default}:events', '-', '+');
    const oplog = await raw.xrange('ccs:{default}:oplog', '-', '+');
    if (how === 'canceled') {
      expect(await states('1001')).toEqual({ '8000': S.LoggedOut });
      expect(events).toHaveLength(0);
      expect(oplog).toHaveLength(0);
    } else {
      // Applied atomically before the cancel was seen: state, event and log entry together.
      expect(await states('1001')).toEqual({ '8000': S.Ready });
      expect(events).toHaveLength(1);
      expect(oplog).toHaveLength(1);
    }
  });

  it('REGISTER with the right password is accepted and the binding shows on the agent', async () => {
    expectOk(await runSipp({ scenario: 'register.xml', target, service: 'x', user: '1002', password: 'secret-1002', status: 200 }));
    const b = await app.registrar.bindings('default', '1002');
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ transport: 'udp', expires: 300 });
    expect(b[0]!.contact).toMatch(/^sip:1002@127\.0\.0\.1:\d+$/);
  });

  it('a replayed Authorization header is refused with a fresh challenge and changes no binding', async () => {
    const phone = await UdpSip.open();
    try {
      const base = { user: '1002', localPort: phone.port, serverPort: drachtio.sipPort, callId: `replay-${Date.now()}` };
      const first = await phone.request(drachtio.sipPort, registerRequest({ ...base, cseq: 1, branch: 'a1' }));
      expect(first.status).toBe(401);
      const nonce = /nonce="([^"]+)"/.exec(first.headers)![1]!;
      const realm = /realm="([^"]+)"/.exec(first.headers)![1]!;
      const uri = `sip:127.0.0.1:${drachtio.sipPort}`;
      const response = digestResponse({ username: '1002', realm, password: 'secret-1002', method: 'REGISTER', uri, nonce, nc: '00000001', cnonce: 'abc', qop: 'auth' });
      const authorization = `Digest username="1002", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"`;
      const accepted = await phone.request(drachtio.sipPort, registerRequest({ ...base, cseq: 2, branch: 'a2', authorization }));
      expect(accepted.status).toBe(200);
      const before = await app.registrar.bindings('default', '1002');
      // The same credentials again, as an attacker who captured them would send them (new transaction).
      const replay = await phone.request(drachtio.sipPort, registerRequest({ ...base, callId: `${base.callId}-x`, cseq: 1, branch: 'a3', authorization }));
      expect(replay.status).toBe(401);
      expect(replay.headers).toMatch(/WWW-Authenticate: Digest /i);
      expect((await app.registrar.bindings('default', '1002')).map((b) => b.callId)).toEqual(before.map((b) => b.callId));
    } finally {
      phone.close();
    }
  });

  it('REGISTER with a wrong password is refused with 403 and binds nothing', async () => {
    expectOk(await runSipp({ scenario: 'register.xml', target, service: 'x', user: '1002', password: 'wrong-password', status: 403 }));
    expect(await app.registrar.bindings('default', '1002')).toEqual([]);
  });
});
