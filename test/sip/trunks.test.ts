/**
 * Trunks through a real drachtio-server, with sipp as the carrier: OPTIONS pings mark an
 * outbound address down when it stops answering and up again when it answers (any final
 * response), as GET /callcenter/{cc}/trunks, /metrics and /healthz show; carrier registration
 * with digest auth, refreshed before the granted expiry, kept by one instance at a time and
 * taken over by a second instance (a second app on the same Redis and drachtio-server) when
 * the first stops.
 */
import { EventEmitter, once } from 'node:events';
import Srf from 'drachtio-srf';
import type { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import type { SrfLike } from '../../app/sip/types';
import type { TrunkHealthView } from '../../app/sip/trunkHealth';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { FakeMediaServer } from '../../media/fake';
import { testConfig } from '../helpers/config';
import { startDrachtio, type DrachtioServer } from '../helpers/drachtio';
import { describeLayer } from '../helpers/layers';
import { freePort, startRedis, type RedisServer } from '../helpers/redisServer';
import { restClient, type Rest } from '../helpers/rest';
import { runSipp, udpPortTaken, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'trunks: OPTIONS health and carrier registration', () => {
  let redisServer: RedisServer;
  let drachtio: DrachtioServer;
  const instances: { app: App; redis: Redis; stopped: boolean }[] = [];
  const sipps: AbortController[] = [];
  beforeAll(async () => {
    [redisServer, drachtio] = await Promise.all([startRedis(), startDrachtio()]);
  });
  afterAll(async () => {
    await drachtio?.stop();
    await redisServer?.stop();
  });
  afterEach(async () => {
    for (const c of sipps.splice(0)) c.abort();
    for (const i of instances.splice(0)) {
      if (!i.stopped) await i.app.stop();
      i.redis.disconnect();
    }
  });

  /** An instance with `trunks`, its own drachtio-srf connection to the suite's drachtio-server. */
  async function instance(id: string, trunks: Record<string, unknown>, apiTokens?: (string | Record<string, unknown>)[]): Promise<{ app: App; rest: Rest; stop(): Promise<void> }> {
    const config = testConfig({ redisUrl: redisServer.url, instanceId: id, drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret }, sip: { trunks }, ...(apiTokens ? { apiTokens } : {}) });
    const redis = createRedis(redisServer.url);
    redis.on('error', () => undefined);
    const srf = new Srf() as unknown as SrfLike & EventEmitter;
    const connected = once(srf, 'connect');
    // Short leases so a takeover is quick; the refresh timing is the registrar's grant.
    const app = await createApp(config, { redis, logger: createLogger('silent'), srf, media: new FakeMediaServer(), carrierTiming: { leaseMs: 3000, renewMs: 500, acquireMs: 200 } });
    const entry = { app, redis, stopped: false };
    instances.push(entry);
    await app.start();
    const [err] = (await connected) as [Error | null];
    if (err) throw err;
    return {
      app,
      rest: restClient(app),
      async stop() {
        entry.stopped = true;
        await app.stop();
      },
    };
  }

  /** A sipp far end on `ip:port`, bound before this resolves; `kill()` makes it stop answering at once. */
  async function farEnd(scenario: string, ip: string, port: number, o: { replace?: Record<string, string>; status?: number; extra?: string[] } = {}): Promise<{ done: Promise<SippResult>; kill(): void }> {
    const abort = new AbortController();
    sipps.push(abort);
    const done = runSipp({
      scenario, target: `127.0.0.1:${drachtio.sipPort}`, service: 'carrier', user: 'carrier', localIp: ip, signal: abort.signal,
      ...(o.replace ? { replace: o.replace } : {}), ...(o.status ? { status: o.status } : {}),
      extra: ['-p', String(port), ...(o.extra ?? [])],
    });
    await udpPortTaken(ip, port, done);
    return { done, kill: () => abort.abort() };
  }
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`carrier (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-2000)}`);
  };

  /** Polls GET trunks (every 50 ms, up to `ms`) until `pred` holds for the trunk named `name`; returns it. */
  async function trunkWhen(rest: Rest, name: string, pred: (t: any) => boolean, ms = 10000): Promise<any> {
    const deadline = Date.now() + ms;
    let last: unknown;
    for (;;) {
      const res = await rest('GET', '/callcenter/default/trunks');
      expect(res.status).toBe(200);
      last = (res.body.trunks as { name: string }[]).find((t) => t.name === name);
      if (last !== undefined && pred(last)) return last;
      if (Date.now() > deadline) throw new Error(`trunk ${name} never matched; last seen ${JSON.stringify(last)}`);
      await new Promise<void>((r) => setTimeout(r, 50));
    }
  }
  const metrics = async (app: App): Promise<string> => {
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  };
  const health = async (app: App): Promise<{ status: number; body: any }> => {
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    return { status: res.status, body: await res.json() };
  };

  it('an outbound address that answers OPTIONS is up; once it stops answering it is down after downAfter pings (GET trunks, /metrics, /healthz), and an answer of any status brings it back', async () => {
    const port = await freePort();
    const address = `127.0.0.4:${port}`;
    const options = { scenario: 'uas-options.xml', extra: ['-m', '100000', '-timeout', '120s', '-recv_timeout', '60000'] };
    let carrier = await farEnd(options.scenario, '127.0.0.4', port, { status: 200, replace: { __REASON__: 'OK' }, extra: options.extra });
    const a = await instance('trunks-a', { carrier: { addresses: ['127.0.0.4'], callcenter: 'default', outbound: address, pingSeconds: 0.3, downAfter: 2 } });

    const up = await trunkWhen(a.rest, 'carrier', (t) => t.outbound[0].lastStatus === 200);
    expect(up).toMatchObject({ name: 'carrier', inbound: ['127.0.0.4'], register: null, outbound: [{ address, up: true, pinged: true, failures: 0, lastError: null }] });
    expect(await metrics(a.app)).toContain(`ccswitch_trunk_address_up{trunk="carrier",address="${address}"} 1`);

    // The far end goes silent: the first failed ping leaves it up, the second (downAfter) takes it down.
    const pings: TrunkHealthView[] = [];
    const wentDown = new Promise<void>((resolve) => {
      const off = a.app.trunkHealth!.onPing((v) => {
        pings.push(v);
        if (!v.up) {
          off();
          resolve();
        }
      });
    });
    carrier.kill();
    await carrier.done;
    await wentDown;
    expect(pings.map((v) => [v.up, v.failures])).toEqual([...pings.slice(0, -2).map(() => [true, 0]), [true, 1], [false, 2]]);
    expect(a.app.trunkHealth!.isUp('carrier', address)).toBe(false);
    const down = await trunkWhen(a.rest, 'carrier', (t) => t.outbound[0].up === false);
    expect(down.outbound[0]).toMatchObject({ up: false, lastStatus: null });
    expect(down.outbound[0].failures).toBeGreaterThanOrEqual(2);
    expect(typeof down.outbound[0].lastError).toBe('string');
    const text = await metrics(a.app);
    expect(text).toContain(`ccswitch_trunk_address_up{trunk="carrier",address="${address}"} 0`);
    const failures = Number(new RegExp(`ccswitch_trunk_ping_failures_total\\{trunk="carrier",address="${address.replace(/\./g, '\\.')}"\\} (\\d+)`).exec(text)?.[1]);
    expect(failures).toBeGreaterThanOrEqual(2);
    const h = await health(a.app);
    expect(h.status).toBe(200); // degraded, never down for a trunk
    expect(h.body.status).toBe('degraded');
    expect(h.body.components.trunks).toEqual({ up: false, detail: 'carrier: every outbound address is down' });

    // A new far end on the same port answers 405 to OPTIONS: alive all the same.
    carrier = await farEnd(options.scenario, '127.0.0.4', port, { status: 405, replace: { __REASON__: 'Method Not Allowed' }, extra: options.extra });
    const back = await trunkWhen(a.rest, 'carrier', (t) => t.outbound[0].up === true);
    expect(back.outbound[0]).toMatchObject({ up: true, failures: 0, lastStatus: 405, lastError: null });
    expect(await metrics(a.app)).toContain(`ccswitch_trunk_address_up{trunk="carrier",address="${address}"} 1`);
    expect((await health(a.app)).body.components.trunks.up).toBe(true);
  });

  it('GET trunks lists only the call center\'s trunks, an unpinged address as always up, and is refused to a supervisor', async () => {
    const supervisor = 'supervisor-token-0123456789';
    const a = await instance(
      'trunks-a',
      { carrier: { addresses: ['127.0.0.4'], callcenter: 'default', outbound: '127.0.0.4:5999', pingSeconds: 0 }, elsewhere: { addresses: ['127.0.0.6'], callcenter: 'other', outbound: '127.0.0.6' } },
      ['test-token-0123456789', { token: supervisor, role: 'supervisor', callcenter: 'default', supervisor: 's1' }],
    );
    const res = await a.rest('GET', '/callcenter/default/trunks');
    expect(res.status).toBe(200);
    expect(res.body.trunks).toEqual([{ name: 'carrier', inbound: ['127.0.0.4'], outbound: [{ address: '127.0.0.4:5999', up: true, pinged: false, failures: 0, lastPingAt: null, lastStatus: null, lastError: null, rttMs: null }], register: null }]);
    const refused = await restClient(a.app, supervisor)('GET', '/callcenter/default/trunks');
    expect(refused.status).toBe(403);
    expect((await a.rest('GET', '/callcenter/nowhere/trunks')).status).toBe(404);
  });

  it('the platform registers to the carrier with digest auth and refreshes before the granted expiry; a second instance takes the registration over when the first stops', async () => {
    const port = await freePort();
    const registrar = `127.0.0.5:${port}`;
    // Each instance is one sipp call (its own Call-ID): REGISTER, 401, REGISTER with valid
    // credentials, 200 granting 4 s; the refresh must come within those 4 s, challenged again.
    const carrier = await farEnd('uas-registrar.xml', '127.0.0.5', port, {
      replace: { __USER__: 'ccs-main', __PASSWORD__: 'pw-carrier', __EXPIRES__: '4', __REFRESH_WITHIN_MS__: '4000', __REGISTRAR__: registrar, __DOMAIN__: '127.0.0.5' },
      extra: ['-m', '2', '-timeout', '30s'],
    });
    const trunks = { 'carrier-reg': { addresses: ['127.0.0.5'], callcenter: 'default', register: { user: 'ccs-main', password: 'pw-carrier', registrar, expires: 60 } } };
    const a = await instance('trunks-a', trunks);

    const first = (await trunkWhen(a.rest, 'carrier-reg', (t) => t.register.state === 'registered')).register;
    expect(first).toMatchObject({ state: 'registered', aor: 'sip:ccs-main@127.0.0.5', registrar, holder: 'trunks-a', lastStatus: 200, lastError: null });
    // The grant is the registrar's (4 s in the Contact's expires), not the 60 s asked for.
    expect(first.expiresAt - first.lastAt).toBe(4000);

    // A second instance on the same Redis and drachtio-server sees the same registration and leaves it alone.
    const b = await instance('trunks-b', trunks);
    const refreshed = (await trunkWhen(b.rest, 'carrier-reg', (t) => t.register.lastAt > first.lastAt)).register;
    expect(refreshed).toMatchObject({ state: 'registered', holder: 'trunks-a', lastStatus: 200 });
    expect(refreshed.lastAt).toBeLessThan(first.expiresAt);
    expect(b.app.registrations.holds('carrier-reg')).toBe(false);
    expect(await metrics(b.app)).toContain('ccswitch_trunk_registered{trunk="carrier-reg"} 1');
    expect((await health(b.app)).body.components.trunks.up).toBe(true);

    // The first instance stops: it hands the lease over and the second registers (a new sipp call).
    await a.stop();
    const takenOver = (await trunkWhen(b.rest, 'carrier-reg', (t) => t.register.holder === 'trunks-b' && t.register.state === 'registered')).register;
    expect(takenOver.lastAt).toBeGreaterThan(refreshed.lastAt);
    expect(b.app.registrations.holds('carrier-reg')).toBe(true);
    // sipp ends after both calls: each instance registered and refreshed with valid credentials.
    expectOk(await carrier.done);
  });
});
