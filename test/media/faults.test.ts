/**
 * FreeSWITCH dies during a live queue call (issue "faults", item 2), on the real processes:
 * SIGKILL of FreeSWITCH while a trunk caller talks with an agent. The conversation must end
 * for both: the caller's and the agent's SIP legs get BYE, the agent goes through its normal
 * call end (no one left in Queue Call), `/healthz` shows the media server down and a new queue
 * call meanwhile gets 503; once FreeSWITCH is back on the same ports the next call works,
 * measured on RTP, without restarting ccswitch.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { listenRtp, startFreeSwitch, type FreeSwitchServer, type RtpListener } from '../helpers/freeswitch';
import { hears, rtpOf } from '../helpers/hearing';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { runSipp } from '../helpers/sipp';
import { trunkCaller } from '../helpers/trunkCaller';

describeLayer('media', 'FreeSWITCH dies during a queue call', () => {
  let stack: FreeSwitchSipStack;
  let again: FreeSwitchServer | undefined;
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    stack = await startSipStack({
      media: 'freeswitch',
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { ringSeconds: 15, maxWaitSeconds: 120 } },
    });
  }, 120000);
  afterAll(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await stack?.close();
    await again?.stop();
  }, 60000);

  const event = (what: string, pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, since, 30000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const rtpPhone = async (toneHz: number): Promise<RtpListener> => {
    const l = await listenRtp({ toneHz });
    closers.push(() => l.close());
    return l;
  };
  const port = (): number => (stack.app.http.server.address() as { port: number }).port;
  /** Resolves once /healthz reports the media server `up` (polled: the adapter's state has no event). */
  const mediaUp = async (up: boolean): Promise<void> => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const h = (await (await fetch(`http://127.0.0.1:${port()}/healthz`)).json()) as { components: { media: { up: boolean } } };
      if (h.components.media.up === up) return;
      if (Date.now() > deadline) throw new Error(`media never ${up ? 'up' : 'down'} in /healthz`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it('SIGKILL of FreeSWITCH mid-call: both SIP legs get BYE, the agent wraps up and is Ready, new calls get 503; with FreeSWITCH back the next call talks', async () => {
    const callerRtp = await rtpPhone(1000);
    const agentRtp = await rtpPhone(440);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp, { scenario: 'media-queue-caller-released.xml' });
    closers.push(() => caller.abort());
    // The phone follows each new far end it is given (its tone goes where FreeSWITCH now is).
    /** Resolves with the next far end the phone is given (in the INVITE, or in the ACK of a late offer). */
    let nextFarEnd: ((sdp: string) => void) | undefined;
    const phone = await stack.phone('1001', {
      rtp: agentRtp,
      onRemoteSdp: (sdp) => nextFarEnd?.(sdp),
    });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001', { queue: '8000' });
    const agentCall = await offered;
    const onCall = await event('agent on the call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);

    await stack.freeswitch.kill();
    // The conversation ends for everyone: BYE to the agent's phone and to the caller.
    await agentCall.ended;
    const r = await caller.result;
    if (r.code !== 0) throw new Error(`the caller (sipp) did not get its BYE: ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
    await event('conversation ended', (e) => e.type === 'conversation' && e.action === 'ended', onCall.seq);
    await event('agent wraps up', (e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.QueueCall && e.state === S.WrapUp, onCall.seq);
    const readyAgain = await event('agent Ready again', (e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready, onCall.seq);
    await mediaUp(false);

    // Meanwhile a queue call is refused at once, not answered into nothing.
    const refused = await runSipp({ scenario: 'invite-final.xml', status: 503, target: `127.0.0.1:${stack.drachtio.sipPort}`, service: '8000', user: '5550101', localIp: '127.0.0.2' });
    if (refused.code !== 0) throw new Error(`the call while FreeSWITCH is down was not refused with 503: ${refused.errors}`);

    // FreeSWITCH back where it was: the adapter reconnects and the next call talks both ways.
    again = await startFreeSwitch(stack.freeswitch.ports);
    await mediaUp(true);
    const caller2Rtp = await rtpPhone(700);
    const agent2 = phone.nextIncoming();
    const farEnd2 = new Promise<string>((resolve) => (nextFarEnd = resolve));
    const caller2 = await trunkCaller(stack.drachtio.sipPort, caller2Rtp, { caller: '5550102' });
    closers.push(() => caller2.abort());
    const call2 = await agent2;
    agentRtp.talkTo(rtpOf(await farEnd2));
    await Promise.all([hears(caller2Rtp, 'the next caller', 440), hears(agentRtp, 'the agent, next call', 700)]);
    await caller2.hangUp();
    await call2.ended;
    const r2 = await caller2.result;
    if (r2.code !== 0) throw new Error(`the next caller (sipp) exited ${r2.code}\n${r2.errors}`);
    // Nothing is left broken in Redis: the agent Ready and in its Ready set, no unguarded call, no orphan conversation.
    await event('agent Ready after the next call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.Ready && e.prev === S.WrapUp, readyAgain.seq);
    const audit = (await (await fetch(`http://127.0.0.1:${port()}/callcenter/default/audit`, { headers: { authorization: 'Bearer test-token-0123456789' } })).json()) as { findings: unknown[] };
    expect(audit.findings).toEqual([]);
  }, 150000);
});
