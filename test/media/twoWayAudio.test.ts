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
import { hears, RUN } from '../helpers/hearing';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import { trunkCaller } from '../helpers/trunkCaller';

const MOH_HZ = 300;
const QUEUE_MOH = `tone_stream://%(1000,0,${MOH_HZ});loops=-1`;

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

  it('pause: the caller hears the hold music and nothing of the agent; resume in mode 2: the agent hears the caller, the caller does not hear the agent; resume in mode 1: both again; json_list agrees with GET conversation at every step', async () => {
    const callerRtp = await rtpPhone(1000);
    const agentRtp = await rtpPhone(440);
    const caller = await trunkCaller(stack.drachtio.sipPort, callerRtp);
    closers.push(() => caller.abort());
    const phone = await stack.phone('1001', { rtp: agentRtp });
    const offered = phone.nextIncoming();
    await stack.app.engine.login('default', '1001');
    const agentCall = await offered;
    const answered = (await event('answered', (e) => e.type === 'queue.caller' && e.reason === 'answered')) as { task?: string };
    const conv = String(answered.task);
    await event('agent joined', (e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);

    const rest = async (op: string, json: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
      const addr = stack.app.http.server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      const res = await fetch(`http://127.0.0.1:${port}/callcenter/default/${op}`, {
        method: json === undefined ? 'GET' : 'POST',
        headers: { authorization: 'Bearer test-token-0123456789', ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    /** FreeSWITCH's members and the record's live legs agree, as sorted hears/speaks pairs. */
    const agree = async (): Promise<void> => {
      const list = JSON.parse(await stack.freeswitch.api(`conference ccs-${conv} json_list`)) as { members: { flags: { can_hear: boolean; can_speak: boolean; end_conference: boolean } }[] }[];
      // The control leg (ghost, flag endconf) holds the conference open; it is no leg of the record.
      const fs = list[0]!.members.filter((m) => !m.flags.end_conference).map((m) => `${m.flags.can_hear}/${m.flags.can_speak}`).sort();
      const legs = (await rest(`conversation/${conv}`, undefined)).body.legs as { mode: number; state: string }[];
      const rec = legs.filter((l) => l.state !== 'gone').map((l) => `${l.mode === 1 || l.mode === 2}/${l.mode === 1 || l.mode === 3}`).sort();
      expect(fs).toEqual(rec);
    };
    await agree();

    expect((await rest('agent/1001/pause', { conversation_id: conv })).status).toBe(200);
    await agree();
    await hears(callerRtp, 'the caller on hold', MOH_HZ);
    await callerRtp.frames('the caller hears no agent while on hold', (x) => toneShare(x, 440) < 0.05, 50, 15000);

    expect((await rest('agent/1001/resume', { conversation_id: conv, mode: 2 })).status).toBe(200);
    await agree();
    await hears(agentRtp, 'the listening agent', 1000);
    await callerRtp.frames('the caller hears neither the agent nor the music', (x) => toneShare(x, 440) < 0.05 && toneShare(x, MOH_HZ) < 0.05, 50, 15000);

    expect((await rest('agent/1001/resume', { conversation_id: conv }).then((r) => r.status))).toBe(200);
    await agree();
    await Promise.all([hears(callerRtp, 'the caller', 440), hears(agentRtp, 'the agent', 1000)]);

    await caller.hangUp();
    await agentCall.ended;
  }, 120000);
});
