/**
 * Supervisor monitoring through a real FreeSWITCH (DESIGN.md section 12), measured on RTP at
 * every party: a sipp trunk caller (1000 Hz), the SIP.js agent 1001 (440 Hz) and the SIP.js
 * supervisor s1 (1300 Hz) each send their own steady tone and decode what reaches them. In a
 * mix of two parties each tone is about half of what a phone receives, so "hears X in the mix"
 * is a share above {@link MIX}; "does not hear" is a second in a row with almost none of it.
 *
 * One call walks through the modes, switched by DTMF (SIP INFO) from the supervisor's phone:
 * listen (the supervisor hears both, nobody hears it), whisper (only the agent hears it),
 * barge (both do), intercept (the caller talks with the supervisor, the agent's leg is gone).
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { listenRtp, toneShare, type RtpListener } from '../helpers/freeswitch';
import { hears, hearsNot, RUN } from '../helpers/hearing';
import { describeLayer } from '../helpers/layers';
import type { PhoneCall } from '../helpers/phone';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { trunkCaller } from '../helpers/trunkCaller';

const CALLER_HZ = 1000;
const AGENT_HZ = 440;
const SUPERVISOR_HZ = 1300;
const MOH_HZ = 300;
const QUEUE_MOH = `tone_stream://%(1000,0,${MOH_HZ});loops=-1`;
/** Share of a frame's energy at one party's tone when two parties are mixed. */
const MIX = 0.25;

describeLayer('media', 'supervisor monitoring through a real FreeSWITCH', () => {
  let stack: FreeSwitchSipStack;
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    stack = await startSipStack({
      media: 'freeswitch',
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { moh: QUEUE_MOH, ringSeconds: 15, maxWaitSeconds: 120 } },
    });
  }, 120000);

  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await stack.reset();
  }, 60000);

  afterAll(async () => {
    await stack?.close();
  }, 60000);

  const event = (what: string, pred: (e: CcsEvent) => boolean, since = 0): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, since, 20000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const rtpPhone = async (toneHz: number, telephoneEvent?: number): Promise<RtpListener> => {
    const l = await listenRtp({ toneHz, ...(telephoneEvent === undefined ? {} : { telephoneEvent }) });
    closers.push(() => l.close());
    return l;
  };
  /** Resolves once `l` hears every one of `hz` at once, each at least a mix's share, for a quarter second. */
  const hearsMix = (l: RtpListener, who: string, ...hz: number[]): Promise<void> =>
    l.frames(`${who} hears ${hz.join(' + ')} Hz`, (s) => hz.every((f) => toneShare(s, f) > MIX), RUN, 15000);
  const monitorEvent = (monitor: string, since: number): Promise<CcsEvent> =>
    event(`supervisor ${monitor}`, (e) => e.type === 'conversation' && e.kind === 'supervisor' && (e as { monitor?: string }).monitor === monitor, since);
  const dtmf = async (call: PhoneCall, digit: string): Promise<void> => {
    await call.session.info({ requestOptions: { body: { contentDisposition: 'render', contentType: 'application/dtmf-relay', content: `Signal=${digit}\r\nDuration=160\r\n` } } });
  };

  /**
   * A trunk caller's queue call answered by 1001, both hearing each other, and the phones of
   * all three parties (the supervisor's registered, not yet dialing).
   */
  async function monitoredCall(o: { supervisorTelephoneEvent?: number } = {}) {
    const callerRtp = await rtpPhone(CALLER_HZ);
    const agentRtp = await rtpPhone(AGENT_HZ);
    const supRtp = await rtpPhone(SUPERVISOR_HZ, o.supervisorTelephoneEvent);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    closers.push(() => caller.abort());
    const phone = await stack.phone('1001', { rtp: agentRtp });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001', { queue: '8000' });
    const agentCall = await offered;
    await event('agent on the call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
    // In the conversation's record too (the leg's `joined`), not only in the media: a monitor
    // looks the agent's conversation up there.
    await event('agent joined', (e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
    await Promise.all([hears(callerRtp, 'the caller', AGENT_HZ), hears(agentRtp, 'the agent', CALLER_HZ)]);
    const sup = await stack.phone('s1', { rtp: supRtp });
    return { callerRtp, agentRtp, supRtp, caller, agentCall, sup };
  }

  it('listen: the supervisor hears caller and agent, neither hears it; whisper: only the agent hears it; barge: both do; intercept: the caller talks with the supervisor and the agent\'s leg is gone', async () => {
    const { callerRtp, agentRtp, supRtp, caller, agentCall, sup } = await monitoredCall();

    // Listen: joined muted; the supervisor hears both parties; neither hears the supervisor.
    const supCall = await sup.dial('*631001');
    const listen = await monitorEvent('listen', 0);
    await hearsMix(supRtp, 'the listening supervisor', CALLER_HZ, AGENT_HZ);
    expect(supRtp.sent).toBeGreaterThan(RUN); // it does talk: the conference keeps it from the others
    await Promise.all([hearsNot(callerRtp, 'the caller (listen)', SUPERVISOR_HZ), hearsNot(agentRtp, 'the agent (listen)', SUPERVISOR_HZ)]);
    await hears(callerRtp, 'the caller, still with its agent', AGENT_HZ);

    // Whisper: the agent hears the supervisor (mixed with the caller), the caller does not.
    await dtmf(supCall, '2');
    const whisper = await monitorEvent('whisper', listen.seq);
    await hearsMix(agentRtp, 'the agent (whisper)', SUPERVISOR_HZ, CALLER_HZ);
    await hearsNot(callerRtp, 'the caller (whisper)', SUPERVISOR_HZ);
    await hearsMix(supRtp, 'the whispering supervisor', CALLER_HZ, AGENT_HZ);

    // Barge: everyone hears everyone.
    await dtmf(supCall, '3');
    const barge = await monitorEvent('barge', whisper.seq);
    await Promise.all([hearsMix(callerRtp, 'the caller (barge)', SUPERVISOR_HZ, AGENT_HZ), hearsMix(agentRtp, 'the agent (barge)', SUPERVISOR_HZ, CALLER_HZ)]);

    // Intercept: the agent's phone gets its BYE; caller and supervisor talk alone.
    await dtmf(supCall, '4');
    await monitorEvent('intercept', barge.seq);
    await agentCall.ended;
    await event('the agent wraps up', (e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.QueueCall && e.state === S.WrapUp);
    await Promise.all([hears(callerRtp, 'the caller (intercepted)', SUPERVISOR_HZ), hears(supRtp, 'the intercepting supervisor', CALLER_HZ)]);
    await hearsNot(callerRtp, 'the caller, without the agent', AGENT_HZ);

    // The caller hangs up: the conversation ends and the supervisor's leg is released.
    await caller.hangUp();
    await supCall.ended;
    const r = await caller.result;
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}`);
  }, 120000);

  it('the supervisor\'s leg is released when the monitored agent hangs up', async () => {
    const { callerRtp, caller, agentCall, sup } = await monitoredCall();
    const supCall = await sup.dial('*631001*3');
    await monitorEvent('barge', 0);
    await hearsMix(callerRtp, 'the caller (barge)', SUPERVISOR_HZ, AGENT_HZ);
    await agentCall.hangup();
    await supCall.ended;
    await caller.result;
  }, 120000);

  it('a digit sent in the media (RFC 4733), as desk phones do, switches the mode too: 3 barges in', async () => {
    const { callerRtp, supRtp, caller, agentCall, sup } = await monitoredCall({ supervisorTelephoneEvent: 101 });
    const supCall = await sup.dial('*631001');
    const listen = await monitorEvent('listen', 0);
    await hearsMix(supRtp, 'the listening supervisor', CALLER_HZ, AGENT_HZ);
    await hearsNot(callerRtp, 'the caller (listen)', SUPERVISOR_HZ);
    await supRtp.sendDtmf('3');
    await monitorEvent('barge', listen.seq);
    await hearsMix(callerRtp, 'the caller (barge)', SUPERVISOR_HZ, AGENT_HZ);
    await agentCall.hangup();
    await supCall.ended;
    await caller.result;
  }, 120000);
});
