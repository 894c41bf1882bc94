/**
 * Max wait (DESIGN.md section 5, issue 4): a caller nobody answers within the queue's
 * `maxWaitSeconds` moves to the overflow queue (same call, same conversation), or, without an
 * overflow, hears a prompt and is released.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { freePort } from '../helpers/redisServer';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp } from '../helpers/sipp';

describeLayer('sip', 'queue max wait: overflow and timeout', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({
      queues: {
        '8000': { maxWaitSeconds: 0.5, overflow: { queue: '8001' } },
        '8001': { maxWaitSeconds: 0.5 },
      },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });
  const event = (pred: (e: CcsEvent) => boolean): Promise<CcsEvent> => waitForEvent(s.redisServer.url, 'ccs:{default}:events', pred, 0, 15000);

  it('a caller nobody answers in 8000 overflows to 8001 after maxWaitSeconds and is answered there', async () => {
    // 1001 (8000 only) is not logged in; 1004 is Ready in 8001.
    await s.app.engine.login('default', '1004');
    await s.app.engine.ready('default', '1004');
    const agent = await s.phone('1004');
    const caller = await s.phone('1003');
    const incoming = agent.nextIncoming();
    const call = await caller.dial('8000');
    const over = await event((e) => e.type === 'queue.caller' && e.reason === 'overflow');
    expect(over).toMatchObject({ queue: '8000', caller: '1003' });
    const leg = await incoming;
    const answered = await event((e) => e.type === 'queue.caller' && e.reason === 'answered');
    expect(answered).toMatchObject({ queue: '8001', agent: '1004' });
    await event((e) => e.type === 'agent.state' && e.agent === '1004' && e.state === S.QueueCall && e.queue === '8001');
    expect(await s.raw.hget('ccs:{default}:queue:8000:stats', 'overflow')).toBe('1');
    await leg.hangup();
    await call.ended;
  });

  it('without an overflow, the caller hears the prompt at max wait and is released', async () => {
    const caller = await s.phone('1003');
    const before = s.media.played.length;
    const call = await caller.dial('8001');
    await call.ended; // released by ccswitch
    const timeout = await event((e) => e.type === 'queue.caller' && e.reason === 'timeout');
    expect(timeout).toMatchObject({ queue: '8001', caller: '1003' });
    expect(s.media.played.slice(before)).toEqual(['error']);
    expect(await s.raw.zcard('ccs:{default}:queue:8001:tasks')).toBe(0);
  });
});

describeLayer('sip', 'queue max wait: overflow to an outside number through the outbound trunk', () => {
  let s: SipStack;
  let outsidePort: number;
  beforeAll(async () => {
    outsidePort = await freePort();
    s = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${outsidePort}`, pingSeconds: 0 /* the far end is a one-call sipp, not a carrier answering OPTIONS */ } } },
      queues: { '8000': { maxWaitSeconds: 0.5, overflow: { number: '5551234' } } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });
  const event = (pred: (e: CcsEvent) => boolean): Promise<CcsEvent> => waitForEvent(s.redisServer.url, 'ccs:{default}:events', pred, 0, 15000);
  /** The outside party: a sipp UAS behind the trunk address, for one call. */
  const outside = (scenario: string, status?: number) =>
    runSipp({ scenario, target: `127.0.0.1:${s.drachtio.sipPort}`, service: '5551234', user: 'outside', localIp: '127.0.0.3', ...(status ? { status } : {}), extra: ['-p', String(outsidePort), '-recv_timeout', '15000'] });

  it('a caller nobody answers is put through to the overflow number at max wait; its hang-up releases the outside party', async () => {
    const far = outside('uas-answer.xml');
    const caller = await s.phone('1003');
    const bridged = s.media.nextJoin((c) => c.members.size === 2);
    const call = await caller.dial('8000');
    const over = await event((e) => e.type === 'queue.caller' && e.reason === 'overflow');
    expect(over).toMatchObject({ queue: '8000', caller: '1003' });
    // The outside party answers and joins the caller's conversation (listen and speak).
    const conf = await bridged;
    expect([...conf.members.values()]).toEqual([1, 1]);
    const handled = s.nextSettled();
    await call.hangup();
    await handled;
    const r = await far;
    if (r.code !== 0) throw new Error(`outside party (sipp) failed: ${r.errors}\n${r.output.slice(-1500)}`);
    expect(await s.raw.hget('ccs:{default}:queue:8000:stats', 'overflow')).toBe('1');
    expect(conf.destroyed).toBe(true);
    expect(s.media.endpoints).toBe(0);
  });

  it('when the overflow number is busy, the caller hears the prompt and is released', async () => {
    const far = outside('uas-reject.xml', 486);
    const caller = await s.phone('1003');
    const before = s.media.played.length;
    const handled = s.nextSettled();
    const call = await caller.dial('8000');
    await call.ended; // released by ccswitch
    expect(await handled).toBe('answered');
    expect((await far).code).toBe(0);
    expect(s.media.played.slice(before)).toEqual(['error']);
    expect(await s.raw.hget('ccs:{default}:queue:8000:stats', 'overflow')).toBe('1');
    expect(s.media.endpoints).toBe(0);
  });
});
