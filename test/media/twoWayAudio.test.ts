/**
 * Two-way audio on every conversation (issue 9, item 0), measured on RTP at both ends: each
 * party is a phone that sends its own steady tone from the answer on and decodes what it
 * receives. A party "hears" the other when most of the energy of what reaches it is the
 * other's tone; a flag in `conference json_list` is not audio.
 *
 * - Queue call: a sipp trunk caller (1000 Hz, its RTP is a listenRtp port of the test) and a
 *   SIP.js agent (440 Hz, likewise); the queue's hold music is a 300 Hz tone, so it cannot be
 *   mistaken for either party.
 * - Agent-to-agent call: SIP.js 1001 (700 Hz) dials 1002 (1300 Hz).
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { waitForEvent } from '../helpers/events';
import { listenRtp, toneShare, type RtpListener } from '../helpers/freeswitch';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { trunkCaller } from '../helpers/trunkCaller';

const MOH_HZ = 300;
const QUEUE_MOH = `tone_stream://%(1000,0,${MOH_HZ});loops=-1`;
/** Frames (20 ms each) in a row that must carry the tone: a quarter second. */
const RUN = 12;
/** Share of a frame's energy at the tone's frequency for "hears it". */
const HEARS = 0.6;

describeLayer('media', 'two-way audio through a real FreeSWITCH', () => {
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

  const event = (what: string, pred: (e: CcsEvent) => boolean): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, 0, 20000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const rtpPhone = async (toneHz: number): Promise<RtpListener> => {
    const l = await listenRtp({ toneHz });
    closers.push(() => l.close());
    return l;
  };
  const hears = (l: RtpListener, who: string, hz: number): Promise<void> => l.frames(`${who} hears ${hz} Hz`, (s) => toneShare(s, hz) > HEARS, RUN, 15000);

  it('in a queue call the caller hears the agent and the agent hears the caller', async () => {
    const callerRtp = await rtpPhone(1000);
    const agentRtp = await rtpPhone(440);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    closers.push(() => caller.abort());
    await event('caller queued', (e) => e.type === 'queue.caller' && e.reason === 'enqueued');
    await hears(callerRtp, 'the waiting caller', MOH_HZ);

    const phone = await stack.phone('1001', { rtp: agentRtp });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001');
    const agentCall = await offered;
    await event('agent on the call', (e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);

    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);
    expect(callerRtp.sent).toBeGreaterThan(RUN);
    expect(agentRtp.sent).toBeGreaterThan(RUN);

    await caller.hangUp();
    await agentCall.ended;
    const r = await caller.result;
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}`);
  }, 90000);

  it('in an agent-to-agent call each agent hears the other', async () => {
    const aRtp = await rtpPhone(700);
    const bRtp = await rtpPhone(1300);
    const a = await stack.phone('1001', { rtp: aRtp });
    const b = await stack.phone('1002', { rtp: bRtp });
    const incoming = b.nextIncoming();
    const call = await a.dial('1002');
    const answered = await incoming;

    await Promise.all([hears(aRtp, '1001', 1300), hears(bRtp, '1002', 700)]);

    await call.hangup();
    await answered.ended;
  }, 90000);
});
