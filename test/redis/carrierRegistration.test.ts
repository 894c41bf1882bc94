/**
 * Carrier registration (lib/sip/carrierRegistration.ts) against a real Redis, the SIP side a
 * recording fake: one instance at a time holds a trunk's lease and REGISTERs, the other
 * takes over when the holder stops (lease released) or dies (lease expired), and the fencing
 * token keeps a holder that lost its lease from renewing it or recording a late REGISTER.
 */
import type { Redis } from 'ioredis';
import { CarrierRegistrations, grantedExpiry, type CarrierRegistrationEvent, type CarrierRegistrationTiming, type RegisterAttempt, type RegisterResult } from '../../lib/sip/carrierRegistration';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { callCenterKeys } from '../../lib/store/keys';
import { startHarness, type Harness } from '../helpers/harness';

const FAST: Partial<CarrierRegistrationTiming> = { leaseMs: 600, renewMs: 100, acquireMs: 100, retryMinMs: 50, retryMaxMs: 400, requestTimeoutMs: 1000, minRefreshMs: 50 };
const keys = callCenterKeys('ccs', 'default');
const LEASE = keys.trunkRegLease('carrier');
const STATUS = keys.trunkReg('carrier');

describe('carrier registration: one holder at a time, by lease', () => {
  let h: Harness;
  const running: { reg: CarrierRegistrations; redis: Redis }[] = [];
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    await h.raw.flushall();
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      await r.reg.stop();
      r.redis.disconnect();
    }
  });

  /** What the fake registrar answers; the default grants what was asked. */
  type Answer = (a: RegisterAttempt) => Promise<RegisterResult> | RegisterResult;
  const grant = (seconds: number): Answer => (a) => ({ status: 200, reason: 'OK', granted: seconds, cseq: a.cseq });

  /** One instance: its registrations, the REGISTERs it sent, the events it emitted. */
  function instance(name: string, o: { timing?: Partial<CarrierRegistrationTiming>; answer?: Answer; ready?: () => boolean; expires?: number } = {}) {
    const config = h.config({ instanceId: name, sip: { trunks: { carrier: { addresses: ['127.0.0.9'], callcenter: 'default', register: { user: 'ccs-main', password: 'pw', registrar: '127.0.0.9:5070', expires: o.expires ?? 60 } } } } });
    const redis = createRedis(h.server.url);
    redis.on('error', () => undefined);
    const sent: RegisterAttempt[] = [];
    const events: CarrierRegistrationEvent[] = [];
    let answer: Answer = o.answer ?? grant(60);
    const reg = new CarrierRegistrations({
      redis, config, logger: createLogger('silent'), instance: name, timing: { ...FAST, ...(o.timing ?? {}) },
      sender: { register: async (a) => { sent.push({ ...a }); return answer(a); } },
      ...(o.ready ? { ready: o.ready } : {}),
    });
    reg.listen((e) => events.push(e));
    running.push({ reg, redis });
    /** Resolves with this instance's next event matching `pred` (from now on). */
    const next = (pred: (e: CarrierRegistrationEvent) => boolean, ms = 5000): Promise<CarrierRegistrationEvent> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(new Error(`${name}: no matching event within ${ms} ms; saw ${JSON.stringify(events)}`));
        }, ms);
        const off = reg.listen((e) => {
          if (!pred(e)) return;
          clearTimeout(timer);
          off();
          resolve(e);
        });
      });
    return { name, reg, redis, sent, events, next, setAnswer: (a: Answer) => (answer = a) };
  }
  const is = (type: CarrierRegistrationEvent['type']) => (e: CarrierRegistrationEvent): boolean => e.type === type;

  it('only the lease holder registers; it refreshes at half the granted expiry on one Call-ID with rising CSeq, and every instance sees its status', async () => {
    const a = instance('a', { answer: grant(0.4) });
    const registered = a.next(is('registered'));
    a.reg.start();
    await registered;
    const b = instance('b');
    b.reg.start();
    // a's refreshes (every 200 ms) are the clock: b tries to take the lease every 100 ms meanwhile.
    for (let i = 0; i < 3; i++) await a.next(is('registered'));
    expect(b.sent).toEqual([]);
    expect(b.reg.holds('carrier')).toBe(false);
    expect(a.reg.holds('carrier')).toBe(true);
    expect(new Set(a.sent.map((x) => x.callId)).size).toBe(1);
    expect(a.sent.map((x) => x.cseq)).toEqual([1, 2, 3, 4]);
    expect(a.sent[0]).toMatchObject({ requestUri: 'sip:127.0.0.9:5070', aor: 'sip:ccs-main@127.0.0.9', contactUser: 'ccs-main', expires: 60, username: 'ccs-main', password: 'pw' });
    const [view] = await b.reg.views();
    expect(view).toMatchObject({ trunk: 'carrier', callcenter: 'default', state: 'registered', holder: 'a', lastStatus: 200, lastError: null });
    expect(view!.expiresAt! - view!.lastAt!).toBe(400);
  });

  it('a holder that stops releases its lease and the other instance takes over at once, long before the lease would have expired', async () => {
    const slow = { leaseMs: 60000 };
    const a = instance('a', { timing: slow });
    const b = instance('b', { timing: slow });
    const aRegistered = a.next(is('registered'));
    a.reg.start();
    await aRegistered;
    b.reg.start();
    const bRegistered = b.next(is('registered'));
    await a.reg.stop();
    expect(a.events.map((e) => e.type)).toEqual(['acquired', 'registered', 'released']);
    await bRegistered;
    expect(b.events.map((e) => e.type)).toEqual(['acquired', 'registered']);
    // A new holder is a new UA: its own Call-ID, CSeq from 1.
    expect(b.sent[0]!.callId).not.toBe(a.sent[0]!.callId);
    expect(b.sent[0]!.cseq).toBe(1);
    expect(await a.reg.views()).toMatchObject([{ state: 'registered', holder: 'b' }]);
  });

  it('a holder that dies (stops renewing) is replaced once its lease expires; it stops registering itself', async () => {
    const a = instance('a');
    const b = instance('b');
    const aRegistered = a.next(is('registered'));
    a.reg.start();
    await aRegistered;
    b.reg.start();
    const bRegistered = b.next(is('registered'));
    const aLost = a.next(is('lost'));
    // a can no longer reach Redis: no renewals, as if the process hung or died.
    a.redis.disconnect();
    await bRegistered;
    await aLost;
    expect(b.sent).toHaveLength(1);
    expect(await b.reg.views()).toMatchObject([{ state: 'registered', holder: 'b' }]);
  });

  it('fencing: a holder whose lease lapsed can neither renew it nor record the answer to a REGISTER it sent before', async () => {
    // a renews too rarely to notice by itself; only its fenced status write tells it. Its
    // registration is granted 0.2 s, so it refreshes after 0.1 s.
    const a = instance('a', { timing: { leaseMs: 60000, renewMs: 60000 }, answer: grant(0.2) });
    const aRegistered = a.next(is('registered'));
    a.reg.start();
    await aRegistered;
    const oldToken = (await h.raw.get(LEASE))!;
    // a's refresh hangs until the test answers it.
    let answerLate: (r: RegisterResult) => void = () => undefined;
    const inFlight = new Promise<void>((resolve) => {
      a.setAnswer((x) => {
        resolve();
        return new Promise<RegisterResult>((r) => (answerLate = (res) => r({ ...res, cseq: x.cseq })));
      });
    });
    await inFlight;
    // The lease lapses; b takes it and registers.
    await h.raw.pexpire(LEASE, 1);
    const b = instance('b');
    const bRegistered = b.next(is('registered'));
    b.reg.start();
    await bRegistered;
    const before = await h.raw.hgetall(STATUS);
    expect(before).toMatchObject({ holder: 'b', state: 'registered' });
    // The old token is refused by every fenced script.
    expect(await a.redis.ccsTrunkLeaseRenew(LEASE, oldToken, 60000)).toBe(0);
    expect(await a.redis.ccsTrunkRegReport(LEASE, STATUS, oldToken, 'a', 'failed', '', 500, 'late')).toBe(0);
    expect(await a.redis.ccsTrunkLeaseRelease(LEASE, STATUS, oldToken)).toBe(0);
    // a's late answer is refused too, and a stops registering.
    const aLost = a.next(is('lost'));
    answerLate({ status: 200, reason: 'OK', granted: 60, cseq: 0 });
    await aLost;
    expect(a.reg.holds('carrier')).toBe(false);
    expect(a.events.map((e) => e.type)).toEqual(['acquired', 'registered', 'lost']);
    expect(await h.raw.hgetall(STATUS)).toEqual(before);
    expect(await h.raw.get(LEASE)).not.toBe(oldToken);
  });

  it('failed REGISTERs are recorded with their status and retried with doubling delays until one succeeds', async () => {
    let n = 0;
    const a = instance('a', { answer: (x) => (++n <= 3 ? { status: 403, reason: 'Forbidden', cseq: x.cseq + 1 } : { status: 200, reason: 'OK', granted: 60, cseq: x.cseq + 1 }) });
    const firstFailure = a.next(is('failed'));
    const registered = a.next(is('registered'));
    a.reg.start();
    await firstFailure;
    expect(await a.reg.views()).toMatchObject([{ state: 'failed', holder: 'a', lastStatus: 403, lastError: '403 Forbidden' }]);
    await registered;
    expect(a.events.filter((e) => e.type === 'failed').map((e) => (e as { retryInMs: number }).retryInMs)).toEqual([50, 100, 200]);
    // Each answer's CSeq (a digest retry raises it) is followed by the next one.
    expect(a.sent.map((x) => x.cseq)).toEqual([1, 3, 5, 7]);
    expect(await a.reg.views()).toMatchObject([{ state: 'registered', lastStatus: 200, lastError: null }]);
  });

  it('423 Interval Too Brief: the next REGISTER asks for the registrar\'s Min-Expires', async () => {
    const a = instance('a', { expires: 30, answer: (x) => (x.expires < 120 ? { status: 423, reason: 'Interval Too Brief', minExpires: 120, cseq: x.cseq } : { status: 200, reason: 'OK', granted: 120, cseq: x.cseq }) });
    const registered = a.next(is('registered'));
    a.reg.start();
    expect(await registered).toMatchObject({ granted: 120 });
    expect(a.sent.map((x) => x.expires)).toEqual([30, 120]);
  });

  it('an instance that cannot send SIP does not take the lease, and a holder that loses its SIP side hands it over', async () => {
    let aReady = false;
    let bReady = true;
    const a = instance('a', { ready: () => aReady });
    const b = instance('b', { ready: () => bReady });
    const bRegistered = b.next(is('registered'));
    a.reg.start();
    b.reg.start();
    await bRegistered;
    expect(a.sent).toEqual([]);
    const bReleased = b.next(is('released'));
    const aRegistered = a.next(is('registered'));
    aReady = true;
    bReady = false;
    await bReleased;
    await aRegistered;
    expect(await a.reg.views()).toMatchObject([{ state: 'registered', holder: 'a' }]);
  });

  it('a registration whose holder is gone shows unregistered once its granted expiry has passed', async () => {
    const a = instance('a', { answer: grant(0.3), timing: { leaseMs: 60000 } });
    const registered = a.next(is('registered'));
    a.reg.start();
    await registered;
    await a.reg.stop();
    // Wait on Redis's own clock passing expiresAt (polled), not on a sleep of a guessed length.
    const { expiresAt } = (await a.reg.views())[0]!;
    for (;;) {
      const [s, us] = await h.raw.time();
      if (Number(s) * 1000 + Math.floor(Number(us) / 1000) > expiresAt!) break;
      await new Promise<void>((r) => setTimeout(r, 20));
    }
    expect(await a.reg.views()).toMatchObject([{ state: 'unregistered', holder: null }]);
  });
});

describe('grantedExpiry', () => {
  const res = (headers: Record<string, string>, contacts?: unknown) => ({
    get: (n: string) => headers[n.toLowerCase()],
    getParsedHeader: (n: string) => (n === 'contact' ? contacts : undefined),
  });
  it('takes the expires parameter of our own Contact among the bindings the registrar lists', () => {
    const contacts = [{ uri: 'sip:other@10.0.0.1', params: { expires: '900' } }, { uri: 'sip:ccs@127.0.0.1:5060', params: { expires: '120' } }];
    expect(grantedExpiry(res({ expires: '3600' }, contacts), '<sip:ccs@127.0.0.1:5060>', 3600)).toBe(120);
  });
  it('falls back to the Expires header, then to what was asked', () => {
    expect(grantedExpiry(res({ expires: '300' }, [{ uri: 'sip:other@10.0.0.1', params: { expires: '900' } }, { uri: 'sip:x@10.0.0.2', params: {} }]), '<sip:ccs@127.0.0.1>', 3600)).toBe(300);
    expect(grantedExpiry(res({}, []), '<sip:ccs@127.0.0.1>', 3600)).toBe(3600);
  });
});
