/**
 * call_out from inside a queue call through a real FreeSWITCH, measured on RTP at every party:
 * the agent's one extension call is re-INVITEd into the new conversation, so the agent hears
 * the outside party (and it the agent) while the caller, left with the agent on hold, hears
 * the queue's music and nothing of either; `resume` on the queue call brings the agent's media
 * back: agent and caller hear each other again, and the outside party no longer hears the agent.
 *
 * Tones: caller 1000 Hz (sipp trunk caller), agent 440 Hz (SIP.js), outside 1700 Hz (sipp UAS
 * behind the trunk), hold music 300 Hz.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { listenRtp, toneShare, type RtpListener } from '../helpers/freeswitch';
import { hears, hearsNot, RUN, rtpOf } from '../helpers/hearing';
import { restClient, type Rest } from '../helpers/rest';
import { describeLayer } from '../helpers/layers';
import { freePort } from '../helpers/redisServer';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { runSipp } from '../helpers/sipp';
import { trunkCaller } from '../helpers/trunkCaller';

const MOH_HZ = 300;
const QUEUE_MOH = `tone_stream://%(1000,0,${MOH_HZ});loops=-1`;

describeLayer('media', 'call_out re-anchors the agent\'s call through a real FreeSWITCH', () => {
  let stack: FreeSwitchSipStack;
  let outsidePort: number;
  const closers: (() => unknown)[] = [];

  beforeAll(async () => {
    outsidePort = await freePort();
    stack = await startSipStack({
      media: 'freeswitch',
      sip: { trunks: { carrier: { addresses: ['127.0.0.2', '127.0.0.3'], callcenter: 'default', outbound: `127.0.0.3:${outsidePort}`, pingSeconds: 0 /* the far end is a one-call sipp, not a carrier answering OPTIONS */ } } },
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

  const event = (what: string, pred: (e: CcsEvent) => boolean): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, 0, 20000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const rtpPhone = async (toneHz: number): Promise<RtpListener> => {
    const l = await listenRtp({ toneHz });
    closers.push(() => l.close());
    return l;
  };
  const rest = (op: string, json: unknown): ReturnType<Rest> => restClient(stack.app)('POST', `/callcenter/default/${op}`, json);

  it('the agent talks to the outside party, the held caller hears music; resume brings agent and caller back together', async () => {
    const callerRtp = await rtpPhone(1000);
    const agentRtp = await rtpPhone(440);
    const outsideRtp = await rtpPhone(1700);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    closers.push(() => caller.abort());
    // The agent's phone follows each re-INVITE: it sends to the endpoint the new offer names.
    const phone = await stack.phone('1001', { rtp: agentRtp, onRemoteSdp: (sdp) => agentRtp.talkTo(rtpOf(sdp)) });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001');
    const agentCall = await offered;
    const answered = (await event('answered', (e) => e.type === 'queue.caller' && e.reason === 'answered')) as { task?: string };
    const queueConv = String(answered.task);
    await event('agent on the call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);

    const far = runSipp({
      scenario: 'uas-outside-media.xml', target: `127.0.0.1:${stack.drachtio.sipPort}`, service: '5557100', user: 'outside', localIp: '127.0.0.3',
      replace: { __TO__: '5557100' },
      extra: ['-p', String(outsidePort), '-key', 'rtp_ip', outsideRtp.ip, '-key', 'rtp_port', String(outsideRtp.port), '-recv_timeout', '90000', '-timeout', '120s'],
    });
    const out = await rest('agent/1001/call_out', { to: '5557100', max_answer_seconds: 120 });
    expect(out.status).toBe(200);
    await event('outside answered', (e) => e.type === 'conversation' && e.id === out.body.conversation && e.action === 'joined' && e.kind === 'external' && e.state === 'up');
    await Promise.all([
      hears(agentRtp, 'the agent', 1700),
      hears(outsideRtp, 'the outside party', 440),
      hears(callerRtp, 'the held caller', MOH_HZ),
    ]);
    await hearsNot(callerRtp, 'the held caller', 440);

    expect((await rest('agent/1001/resume', { conversation_id: queueConv })).status).toBe(200);
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);
    await hearsNot(outsideRtp, 'the outside party, its agent on hold', 440);

    await caller.hangUp();
    await agentCall.hangup().catch(() => undefined);
    const r = await far;
    if (r.code !== 0) throw new Error(`outside party (sipp) exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
  }, 120000);

  it('consult: the caller hears the hold music while agent and colleague talk; after consult_complete conference all three hear each other', async () => {
    const callerRtp = await rtpPhone(1000);
    const agentRtp = await rtpPhone(440);
    const colleagueRtp = await rtpPhone(1300);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    closers.push(() => caller.abort());
    const phone = await stack.phone('1001', { rtp: agentRtp, onRemoteSdp: (sdp) => agentRtp.talkTo(rtpOf(sdp)) });
    const colleague = await stack.phone('1002', { rtp: colleagueRtp, onRemoteSdp: (sdp) => colleagueRtp.talkTo(rtpOf(sdp)) });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001');
    const agentCall = await offered;
    const answered = (await event('answered', (e) => e.type === 'queue.caller' && e.reason === 'answered')) as { task?: string };
    const queueConv = String(answered.task);
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);

    const rings = colleague.nextIncoming();
    await stack.app.engine.login('default', '1002');
    const res = await rest('agent/1001/consult', { conversation_id: queueConv, enqueue: '<enqueue queue="8000"><agent id="1002"/></enqueue>' });
    expect(res.status).toBe(200);
    const colleagueCall = await rings;
    await event('colleague joined', (e) => e.type === 'conversation' && e.id === res.body.conversation && e.action === 'joined' && e.agent === '1002');
    await Promise.all([hears(agentRtp, 'the consulting agent', 1300), hears(colleagueRtp, 'the colleague', 440), hears(callerRtp, 'the caller on hold', MOH_HZ)]);
    await hearsNot(callerRtp, 'the caller on hold', 440);

    expect((await rest('agent/1001/consult_complete', { conversation_id: queueConv, how: 'conference' })).status).toBe(200);
    const both = (l: RtpListener, who: string, a: number, b: number): Promise<void> =>
      l.frames(`${who} hears ${a} Hz and ${b} Hz`, (x) => toneShare(x, a) > 0.2 && toneShare(x, b) > 0.2, RUN, 15000);
    await Promise.all([both(callerRtp, 'the caller', 440, 1300), both(agentRtp, 'the agent', 1000, 1300), both(colleagueRtp, 'the colleague', 1000, 440)]);

    await caller.hangUp();
    await colleagueCall.hangup();
    await agentCall.ended;
  }, 120000);
});
