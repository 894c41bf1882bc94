import { Registrar, IntervalTooBriefError, RegistrationRefusedError, type RegisterRequest } from '../../lib/sip/registrar';
import { callCenterKeys } from '../../lib/store/keys';
import { startApp, type RunningApp } from '../helpers/app';
import { startHarness, type Harness } from '../helpers/harness';

let h: Harness;
let registrar: Registrar;
const keys = callCenterKeys('ccs', 'default');

beforeAll(async () => {
  h = await startHarness();
  const { redis, config } = h.engine({ sip: { minExpires: 1, maxExpires: 600, defaultExpires: 60, maxContacts: 2 } });
  registrar = new Registrar({ redis, config });
});
afterAll(async () => h.close());
beforeEach(async () => {
  await h.raw.flushall();
});

const req = (o: Partial<RegisterRequest> = {}): RegisterRequest => ({
  agent: '1001',
  contacts: [{ uri: 'sip:1001@10.0.0.5:5062;transport=udp', expires: 120 }],
  callId: 'call-1',
  cseq: 1,
  source: '10.0.0.5:5062',
  transport: 'udp',
  server: '127.0.0.1:5060',
  userAgent: 'desk-phone/1.0',
  ...o,
});

describe('registrar bindings in Redis', () => {
  it('a REGISTER stores the contact with its expiry and arms the expiry deadline', async () => {
    const out = await registrar.register('default', req());
    expect(out).toEqual([
      { contact: 'sip:1001@10.0.0.5:5062;transport=udp', expires: 120, source: '10.0.0.5:5062', transport: 'udp', server: '127.0.0.1:5060', userAgent: 'desk-phone/1.0', callId: 'call-1', cseq: 1 },
    ]);
    expect(await registrar.bindings('default', '1001')).toEqual(out);
    expect(await h.raw.zscore(keys.deadlines, 'regexp|1001')).not.toBeNull();
  });

  it('expires above the maximum are capped; below the minimum are refused with the minimum (423)', async () => {
    const [b] = await registrar.register('default', req({ contacts: [{ uri: 'sip:a@h', expires: 99999 }] }));
    expect(b!.expires).toBe(600);
    const { config } = h.engine({ sip: { minExpires: 60 } });
    const strict = new Registrar({ redis: h.raw, config });
    await expect(strict.register('default', req({ contacts: [{ uri: 'sip:a@h', expires: 30 }] }))).rejects.toBeInstanceOf(IntervalTooBriefError);
  });

  it('a refresh with a higher CSeq updates; the same Call-ID with a lower CSeq is refused as out of order', async () => {
    await registrar.register('default', req({ cseq: 5 }));
    await registrar.register('default', req({ cseq: 6, contacts: [{ uri: 'sip:1001@10.0.0.5:5062;transport=udp', expires: 300 }] }));
    expect((await registrar.bindings('default', '1001'))[0]!.expires).toBe(300);
    await expect(registrar.register('default', req({ cseq: 6 }))).rejects.toMatchObject({ why: 'out_of_order' });
  });

  it('expires 0 removes that contact; Contact: * removes them all', async () => {
    await registrar.register('default', req({ contacts: [{ uri: 'sip:a@h', expires: 60 }, { uri: 'sip:b@h', expires: 60 }] }));
    await registrar.register('default', req({ cseq: 2, contacts: [{ uri: 'sip:a@h', expires: 0 }] }));
    expect((await registrar.bindings('default', '1001')).map((b) => b.contact)).toEqual(['sip:b@h']);
    await registrar.register('default', req({ cseq: 3, contacts: '*' }));
    expect(await registrar.bindings('default', '1001')).toEqual([]);
    expect(await h.raw.zscore(keys.deadlines, 'regexp|1001')).toBeNull();
  });

  it('more contacts than maxContacts are refused and nothing is written', async () => {
    await expect(
      registrar.register('default', req({ contacts: [{ uri: 'sip:a@h', expires: 60 }, { uri: 'sip:b@h', expires: 60 }, { uri: 'sip:c@h', expires: 60 }] })),
    ).rejects.toBeInstanceOf(RegistrationRefusedError);
    expect(await registrar.bindings('default', '1001')).toEqual([]);
  });
});

describe('registration expiry', () => {
  let app: RunningApp;
  afterEach(async () => app?.close());

  it('the deadline worker sweeps an expired binding and GET agent stops showing it', async () => {
    app = await startApp({ redisUrl: h.server.url, sip: { minExpires: 1, maxExpires: 600, defaultExpires: 60 } });
    await app.app.registrar.register('default', req({ contacts: [{ uri: 'sip:1001@10.0.0.5', expires: 1 }, { uri: 'sip:1001@10.0.0.6', expires: 300 }] }));
    const before = await app.call('GET', '/callcenter/default/agent/1001');
    expect(before.body.registration.contacts.map((c: { contact: string }) => c.contact)).toEqual(['sip:1001@10.0.0.5', 'sip:1001@10.0.0.6']);
    // Make the 1 s binding's deadline due now and run one poll, instead of waiting.
    await app.app.worker.stop();
    await h.raw.zadd(keys.registrationExpiry('1001'), 0, 'sip:1001@10.0.0.5');
    await h.raw.zadd(keys.deadlines, 0, 'regexp|1001');
    await app.app.worker.tick();
    expect(await h.raw.hkeys(keys.registrations('1001'))).toEqual(['sip:1001@10.0.0.6']);
    const after = await app.call('GET', '/callcenter/default/agent/1001');
    expect(after.body.registration.contacts.map((c: { contact: string }) => c.contact)).toEqual(['sip:1001@10.0.0.6']);
    // Re-armed at the remaining binding's expiry.
    expect(Number(await h.raw.zscore(keys.deadlines, 'regexp|1001'))).toBe(Number(await h.raw.zscore(keys.registrationExpiry('1001'), 'sip:1001@10.0.0.6')));
  });

  it('an agent without registrations shows registration null', async () => {
    app = await startApp({ redisUrl: h.server.url });
    expect((await app.call('GET', '/callcenter/default/agent/1002')).body.registration).toBeNull();
  });
});

describe('digest nonce replay guard', () => {
  it('accepts increasing nonce counts and refuses a repeated or lower one', async () => {
    const guard = keys.nonce('abc123');
    expect(await h.raw.exists(guard)).toBe(0);
    const r = h.engine().redis;
    expect(await r.ccsNonceUse(guard, 1, 60000)).toBe(1);
    expect(await r.ccsNonceUse(guard, 1, 60000)).toBe(0);
    expect(await r.ccsNonceUse(guard, 2, 60000)).toBe(1);
    expect(await r.ccsNonceUse(guard, 2, 60000)).toBe(0);
    expect(await h.raw.pttl(guard)).toBeGreaterThan(0);
  });
});
