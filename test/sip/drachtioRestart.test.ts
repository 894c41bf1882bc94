/**
 * drachtio-server dies and comes back on its ports while a trunk caller talks with an agent
 * (issue "faults", item 3). Its dialogs die with it: the caller's BYE would get 481 from the
 * new server and the app would never hear of it. ccswitch reconnects by itself, ends the lost
 * call as hung up (the agent wraps up and is Ready, the conversation ends, its media is
 * released), sends the caller its BYE once it is connected again, and the next queue call
 * reaches the agent once its phone has registered again. The audit is empty at the end.
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

describeLayer('sip', 'drachtio-server restarts under a queue call', () => {
  let stack: SipStack;
  let drachtio: DrachtioServer;
  let app: App;
  let raw: Redis;
  let media: FakeMediaServer;

  beforeAll(async () => {
    stack = await startSipStack({
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { ringSeconds: 5, maxWaitSeconds: 60 } },
    });
    ({ drachtio, app, raw, media } = stack);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const base = (): string => {
    const addr = app.http.server.address();
    return `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  };
  const get = async (path: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(base() + path, { headers: { authorization: 'Bearer test-token-0123456789' } });
    return { status: res.status, body: await res.json() };
  };
  const caller = (): Promise<SippResult> =>
    runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '30000'] });
  const expectOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  };
  const event = (pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> => waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, since, 20000);
  const lastSeq = async (): Promise<number> => {
    const [row] = await raw.xrevrange('ccs:{default}:events', '+', '-', 'COUNT', 1);
    return row === undefined ? 0 : Number(row[0].split('-')[0]);
  };

  it('the lost call ends as hung up (caller gets BYE, agent wraps up, conversation ends); ccswitch reconnects, the next call reaches the re-registered agent, the audit is empty', async () => {
    await app.engine.login('default', '1001');
    const phone = await stack.phone('1001');
    const incoming = phone.nextIncoming();
    const sipp = caller();
    await incoming;
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
    expect(media.endpoints).toBe(2);
    const before = await lastSeq();

    await drachtio.restart();

    // The caller (sipp over UDP) gets our BYE once ccswitch is connected to the new server.
    expectOk(await sipp);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.QueueCall && e.state === S.WrapUp, before);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready, before);
    await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'ended', before);
    expect(media.endpoints).toBe(0);
    expect(await raw.hlen(`ccs:{default}:guard:${app.guard.incarnation}`)).toBe(0);
    const health = await get('/healthz');
    expect(health.body.components.drachtio.up).toBe(true);
    expect((await get('/callcenter/default/audit')).body).toEqual({ findings: [] });

    // The agent's phone lost its WebSocket with the old server; once it registers again (a
    // new one here), the binding in Redis routes the next queue call to it.
    await phone.stop();
    const again = await stack.phone('1001');
    const next = again.nextIncoming();
    const sipp2 = caller();
    const leg = await next;
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall, before);
    const talking = await lastSeq();
    await leg.hangup();
    expectOk(await sipp2);
    await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready, talking);
    expect((await get('/callcenter/default/audit')).body).toEqual({ findings: [] });
  }, 90000);
});
