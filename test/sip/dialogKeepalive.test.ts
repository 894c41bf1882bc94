/**
 * The dialog keepalive (app/sip/dialogTracker.ts): a queue call whose caller went away without
 * a BYE reaching ccswitch (its BYE lost on UDP, a phone that lost power) must not hold the agent
 * in Queue Call for ever. With `sip.dialogKeepaliveSeconds` 2, each leg up for 2 s gets an
 * in-dialog OPTIONS: a caller that answers 481 or does not answer is hung up (the agent gets
 * BYE and its normal call end); a caller that answers 200 and a SIP.js agent phone that answers
 * 501 keep the call until the caller's own BYE.
 */
import { Redis } from 'ioredis';
import type { App } from '../../app/createApp';
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import type { FakeMediaServer } from '../../media/fake';
import type { DrachtioServer } from '../helpers/drachtio';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'dialog keepalive', () => {
  let stack: SipStack;
  let drachtio: DrachtioServer;
  let app: App;
  let raw: Redis;
  let media: FakeMediaServer;

  beforeAll(async () => {
    stack = await startSipStack({
      sip: { dialogKeepaliveSeconds: 2, trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { ringSeconds: 5, maxWaitSeconds: 60 } },
    });
    ({ drachtio, app, raw, media } = stack);
  });
  afterAll(async () => {
    await stack?.close();
  });
  beforeEach(async () => {
    await stack.reset();
  });

  const caller = (scenario: string): Promise<SippResult> =>
    runSipp({ scenario, target: `127.0.0.1:${drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000', '-timeout', '30s'] });
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  const event = (pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> => waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, since, 20000);
  const lastSeq = async (): Promise<number> => {
    const [row] = await raw.xrevrange('ccs:{default}:events', '+', '-', 'COUNT', 1);
    return row === undefined ? 0 : Number(row[0].split('-')[0]);
  };
  const audit = async (): Promise<unknown> => {
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    return (await fetch(`http://127.0.0.1:${port}/callcenter/default/audit`, { headers: { authorization: 'Bearer test-token-0123456789' } })).json();
  };

  /** A queue call from `scenario` answered by agent 1001's SIP.js phone; resolves once they talk. */
  const connected = async (scenario: string): Promise<{ sipp: Promise<SippResult>; leg: Awaited<ReturnType<Awaited<ReturnType<SipStack['phone']>>['nextIncoming']>>; since: number }> => {
    const since = await lastSeq();
    await app.engine.login('default', '1001');
    const phone = await stack.phone('1001');
    const incoming = phone.nextIncoming();
    const sipp = caller(scenario);
    const leg = await incoming;
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall, since);
    return { sipp, leg, since };
  };

  const endsCleanly = async (since: number): Promise<void> => {
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.QueueCall && e.state === S.WrapUp, since);
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'ended', since);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready, since);
    expect(media.endpoints).toBe(0);
    expect(await raw.hlen(`ccs:{default}:guard:${app.guard.incarnation}`)).toBe(0);
    expect(await audit()).toEqual({ findings: [] });
  };

  it('a caller that answers the keepalive OPTIONS with 481 (it lost the call) is hung up, and the agent gets BYE and its normal call end', async () => {
    const { sipp, leg, since } = await connected('trunk-call-lost.xml');
    await leg.ended; // our BYE to the agent's phone
    expectOk(await sipp); // the caller got OPTIONS (481) and our BYE (481)
    await endsCleanly(since);
  }, 40000);

  it('a caller that goes silent (no answer to the OPTIONS) is hung up after the keepalive wait, and the agent is not left in Queue Call', async () => {
    const { sipp, leg, since } = await connected('trunk-call-gone.xml');
    expectOk(await sipp); // it received the first OPTIONS and went away
    await leg.ended;
    await endsCleanly(since);
  }, 40000);

  it('a caller that answers 200 and a SIP.js agent phone that answers 501 keep the call through two keepalives, until the caller hangs up', async () => {
    const { sipp, leg, since } = await connected('trunk-call-keepalive.xml');
    // The caller answered two probes (4 s and more) and then sent its BYE: had the keepalive
    // ended the call (the agent's 501 taken for a dead leg, say), our BYE would have reached
    // sipp while it waited for the second OPTIONS, and it would have failed.
    expectOk(await sipp);
    await leg.ended;
    await endsCleanly(since);
    // One Queue Call, ended once, by the caller's BYE (no keepalive ending before it).
    const states = await raw.xrange('ccs:{default}:events', `(${since}-0`, '+');
    expect(states.filter(([, f]) => f.includes('agent.state') && f.some((v) => v.includes('"state":"wrap_up"'))).length).toBe(1);
  }, 40000);
});
