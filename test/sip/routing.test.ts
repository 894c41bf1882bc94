/**
 * Trunk routing through a real drachtio-server (issue "trunk routing"): a carrier's E.164
 * numbers through the number map (exact, then longest prefix, with the task priority), a
 * queue's or number's business hours and the schedule's closed target, a number nobody maps
 * (404), and a call to an outside number failing over from a trunk answering 503 to the next
 * route. Callers are sipp behind the carrier's address (127.0.0.2) or SIP.js phones; outside
 * parties are sipp behind the trunks' addresses (127.0.0.3, 127.0.0.4); media is the fake.
 */
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { freePort } from '../helpers/redisServer';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, udpPortTaken, type SippResult } from '../helpers/sipp';

/** Every day, all day. */
const ALWAYS = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, ['00:00-24:00']]));
const CLOSED_SOUND = 'tone_stream://%(500,0,480)';

describeLayer('sip', 'trunk routing: numbers, business hours, outbound failover', () => {
  let s: SipStack;
  let badPort: number;
  let goodPort: number;
  beforeAll(async () => {
    badPort = await freePort();
    goodPort = await freePort();
    s = await startSipStack({
      sip: {
        trunks: {
          carrier: { addresses: ['127.0.0.2'], callcenter: 'default' },
          // A carrier that puts the number in the To, nationally formatted (1 415 …).
          national: { addresses: ['127.0.0.6'], callcenter: 'default', inboundNumberFrom: 'to', numberFormat: { countryCode: '1', nationalPrefix: '1' } },
          // Tried first for every number; answers 503 (a carrier outage).
          broken: { addresses: ['127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${badPort}`, pingSeconds: 0 },
          backup: { addresses: ['127.0.0.4'], callcenter: 'default', outbound: `127.0.0.4:${goodPort}`, pingSeconds: 0, pai: true, callerIds: ['+4930100'] },
        },
      },
      callcenter: {
        numbers: {
          '+14155550100': { queue: '8000' },
          '+1415555*': { queue: '8001', priority: 2 },
          '+14155550199': { queue: '8001', hours: 'never' },
          '+14155550198': { queue: '8001', hours: 'nightOverflow' },
          '+14155550150': { number: '5557100' },
        },
        schedules: {
          always: { timezone: 'America/Los_Angeles', weekly: ALWAYS, closed: { announcement: CLOSED_SOUND } },
          never: { timezone: 'America/Los_Angeles', weekly: {}, closed: { announcement: CLOSED_SOUND } },
          nightOverflow: { timezone: 'Europe/Berlin', weekly: {}, closed: { queue: '8000' } },
        },
        outbound: { routes: [{ prefix: '', trunk: 'broken' }, { prefix: '', trunk: 'backup' }], failoverSeconds: 2 },
      },
      queues: { '8000': { hours: 'always', maxWaitSeconds: 60 }, '8001': { maxWaitSeconds: 60 } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });

  const event = (pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> => waitForEvent(s.redisServer.url, 'ccs:{default}:events', pred, since, 15000);
  const expectOk = (r: SippResult, who: string): void => {
    if (r.code !== 0) throw new Error(`${who} (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  /** A carrier call to `number` (sipp from the carrier's address) that is answered and released by ccswitch's side. */
  const carrierCall = (number: string): Promise<SippResult> =>
    runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: number, user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'] });

  it('a carrier call to +14155550100 lands in queue 8000 (exact number, open hours) and is answered by its agent', async () => {
    await s.app.engine.login('default', '1001', { queue: '8000' });
    const agent = await s.phone('1001');
    const incoming = agent.nextIncoming();
    const caller = carrierCall('+14155550100');
    const answered = await event((e) => e.type === 'queue.caller' && e.reason === 'answered');
    expect(answered).toMatchObject({ queue: '8000', agent: '1001', caller: '5550100' });
    const call = await incoming;
    await call.hangup();
    expectOk(await caller, 'the carrier caller');
  });

  it('a carrier sending the number nationally in the To (14155550100) reaches the same entry: normalised to +14155550100', async () => {
    await s.app.engine.login('default', '1001', { queue: '8000' });
    const agent = await s.phone('1001');
    const incoming = agent.nextIncoming();
    const caller = runSipp({ scenario: 'trunk-call-to.xml', replace: { __TO__: '14155550100' }, target: `127.0.0.1:${s.drachtio.sipPort}`, service: 'inbound', user: '5550100', localIp: '127.0.0.6', extra: ['-recv_timeout', '20000'] });
    const answered = await event((e) => e.type === 'queue.caller' && e.reason === 'answered');
    expect(answered).toMatchObject({ queue: '8000', agent: '1001' });
    const call = await incoming;
    await call.hangup();
    expectOk(await caller, 'the national carrier caller');
  });

  it('a number under a prefix entry (+1415555*) lands in 8001 with the entry\'s priority', async () => {
    const caller = carrierCall('+14155550777');
    const queued = await event((e) => e.type === 'queue.caller' && e.reason === 'enqueued');
    expect(queued).toMatchObject({ queue: '8001', caller: '5550100' });
    const q = (await (await fetch(`http://127.0.0.1:${(s.app.http.server.address() as { port: number }).port}/callcenter/default/queue/8001`, { headers: { authorization: 'Bearer test-token-0123456789' } })).json()) as { callers: { priority: number }[] };
    expect(q.callers.map((c) => c.priority)).toEqual([2]);
    await s.app.engine.login('default', '1004', { queue: '8001' });
    await s.app.engine.ready('default', '1004', { queue: '8001' });
    const agent = await s.phone('1004');
    const call = await agent.nextIncoming();
    await call.hangup();
    expectOk(await caller, 'the carrier caller');
  });

  it('out of hours the closed announcement plays and the call is released; the decision is a queue.caller event', async () => {
    const caller = carrierCall('+14155550199');
    const closed = await event((e) => e.type === 'queue.caller' && e.reason === 'out_of_hours');
    expect(closed).toMatchObject({ queue: '8001', schedule: 'never', action: 'announcement', number: '+14155550199', caller: '5550100' });
    expectOk(await caller, 'the carrier caller');
    expect(s.media.played).toContainEqual({ kind: 'sound', sound: CLOSED_SOUND });
  });

  it('out of hours a closed target queue takes the call instead', async () => {
    const caller = carrierCall('+14155550198');
    await event((e) => e.type === 'queue.caller' && e.reason === 'out_of_hours' && e.action === 'queue:8000');
    const queued = await event((e) => e.type === 'queue.caller' && e.reason === 'enqueued');
    expect(queued).toMatchObject({ queue: '8000' });
    await s.app.engine.login('default', '1002', { queue: '8000' });
    const agent = await s.phone('1002');
    const call = await agent.nextIncoming();
    await call.hangup();
    expectOk(await caller, 'the carrier caller');
  });

  it('a number nobody maps is refused with 404', async () => {
    const r = await runSipp({ scenario: 'invite-final.xml', status: 404, target: `127.0.0.1:${s.drachtio.sipPort}`, service: '+4930999999', user: '5550100', localIp: '127.0.0.2' });
    expectOk(r, 'the carrier caller');
  });

  it('a number target forwards the carrier caller over the outbound routes (past the 503 trunk); the caller\'s hang-up releases the number', async () => {
    const bad = runSipp({ scenario: 'uas-reject.xml', status: 503, target: `127.0.0.1:${s.drachtio.sipPort}`, service: '5557100', user: 'outside', localIp: '127.0.0.3', extra: ['-p', String(badPort), '-recv_timeout', '20000'] });
    await udpPortTaken('127.0.0.3', badPort, bad);
    const good = runSipp({
      scenario: 'uas-outside-pai.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: '5557100', user: 'outside', localIp: '127.0.0.4',
      replace: { __TO__: '5557100', __FROM__: '\\+4930100' }, extra: ['-p', String(goodPort), '-recv_timeout', '20000'],
    });
    await udpPortTaken('127.0.0.4', goodPort, good);
    const bridged = s.media.nextJoin((c) => c.members.size === 2);
    // The carrier caller talks half a second and hangs up: the outside party gets its BYE.
    const caller = runSipp({ scenario: 'trunk-call-hangup.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: '+14155550150', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'] });
    const conf = await bridged;
    expect([...conf.members.values()]).toEqual([1, 1]);
    expectOk(await bad, 'the broken trunk');
    expectOk(await caller, 'the carrier caller');
    expectOk(await good, 'the backup trunk');
  });

  it('call_out fails over from the trunk answering 503 to the next route, which answers; the backup trunk gets its caller id and P-Asserted-Identity', async () => {
    const bad = runSipp({ scenario: 'uas-reject.xml', status: 503, target: `127.0.0.1:${s.drachtio.sipPort}`, service: '5557000', user: 'outside', localIp: '127.0.0.3', extra: ['-p', String(badPort), '-recv_timeout', '20000'] });
    await udpPortTaken('127.0.0.3', badPort, bad);
    const good = runSipp({
      scenario: 'uas-outside-pai.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: '5557000', user: 'outside', localIp: '127.0.0.4',
      replace: { __TO__: '5557000', __FROM__: '\\+4930100' /* a regular expression in the scenario */ }, extra: ['-p', String(goodPort), '-recv_timeout', '20000'],
    });
    await udpPortTaken('127.0.0.4', goodPort, good);
    await s.app.engine.login('default', '1001');
    const agent = await s.phone('1001');
    const incoming = agent.nextIncoming();
    const res = await (await fetch(`http://127.0.0.1:${(s.app.http.server.address() as { port: number }).port}/callcenter/default/agent/1001/call_out`, {
      method: 'POST', headers: { authorization: 'Bearer test-token-0123456789', 'content-type': 'application/json' }, body: JSON.stringify({ to: '5557000', max_answer_seconds: 60 }),
    })).json() as { conversation: string };
    const call = await incoming;
    await event((e) => e.type === 'conversation' && e.id === res.conversation && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    expectOk(await bad, 'the broken trunk');
    await call.hangup();
    expectOk(await good, 'the backup trunk');
  });
});

describeLayer('sip', 'trunk routing: overflow to a number fails over', () => {
  let s: SipStack;
  const ports: number[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    s = await startSipStack({
      sip: {
        trunks: {
          silent: { addresses: ['127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${ports[0]!}`, pingSeconds: 0 },
          broken: { addresses: ['127.0.0.4'], callcenter: 'default', outbound: `127.0.0.4:${ports[1]!}`, pingSeconds: 0 },
          backup: { addresses: ['127.0.0.5'], callcenter: 'default', outbound: `127.0.0.5:${ports[2]!}`, pingSeconds: 0 },
        },
      },
      callcenter: { outbound: { routes: [{ prefix: '555', trunk: 'silent' }, { prefix: '555', trunk: 'broken' }, { prefix: '', trunk: 'backup', prepend: '+1' }], failoverSeconds: 1 } },
      queues: { '8000': { maxWaitSeconds: 0.5, overflow: { number: '5551234' } } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('a caller overflowing to a number is put through by the third route after the first stays silent past failoverSeconds and the second answers 503', async () => {
    const party = (scenario: string, ip: string, port: number, o: { status?: number; to?: string } = {}) => {
      const run = runSipp({
        scenario, target: `127.0.0.1:${s.drachtio.sipPort}`, service: o.to ?? '5551234', user: 'outside', localIp: ip, ...(o.status ? { status: o.status } : {}),
        replace: { __TO__: o.to ?? '5551234', __FROM__: '1003' }, extra: ['-p', String(port), '-recv_timeout', '20000'],
      });
      return { run, bound: udpPortTaken(ip, port, run) };
    };
    const silent = party('uas-silent.xml', '127.0.0.3', ports[0]!);
    const broken = party('uas-reject.xml', '127.0.0.4', ports[1]!, { status: 503 });
    // The backup route prepends +1 (regular expression: escaped).
    const backup = party('uas-outside.xml', '127.0.0.5', ports[2]!, { to: '\\+15551234' });
    await Promise.all([silent.bound, broken.bound, backup.bound]);
    const caller = await s.phone('1003');
    const bridged = s.media.nextJoin((c) => c.members.size === 2);
    const call = await caller.dial('8000');
    await waitForEvent(s.redisServer.url, 'ccs:{default}:events', (e) => e.type === 'queue.caller' && e.reason === 'overflow', 0, 15000);
    const conf = await bridged;
    expect([...conf.members.values()]).toEqual([1, 1]);
    const broke = await broken.run;
    if (broke.code !== 0) throw new Error(`the broken trunk (sipp) exited ${broke.code}\n${broke.errors}`);
    await call.hangup();
    const r = await backup.run;
    if (r.code !== 0) throw new Error(`the backup trunk (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
    await silent.run;
  });
});
