/**
 * The basic queue call (issue 4) through a real FreeSWITCH (DESIGN.md sections 5, 10, 11):
 * a sipp caller from a trunk dials queue 8000 and waits in its conversation (a FreeSWITCH
 * conference) hearing the queue's music on hold; a SIP.js agent logs in with *38 (its confirm
 * prompt played by FreeSWITCH), is offered the call and answers; caller and agent end up in
 * one conference; the caller hangs up and everything is released.
 *
 * What FreeSWITCH did is read from FreeSWITCH itself, never from the adapter: its events on
 * an event socket of the test's own (conference::maintenance, CHANNEL_CREATE/DESTROY and
 * CHANNEL_EXECUTE_COMPLETE of the prompt's playback), its api
 * (`conference <name> json_list`, `uuid_getvar`), and the RTP it sends to the caller, which
 * the test receives and decodes in place of the caller's phone. The queue's hold music is a
 * 440 Hz tone that neither the conference profile's default music nor any prompt uses, so
 * hearing 440 Hz means the queue's own music reached the caller.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { promptFor } from '../../fac/prompts';
import { waitForEvent } from '../helpers/events';
import { listenRtp, subscribeFsEvents, toneShare, type FsEvent, type FsEvents, type RtpListener } from '../helpers/freeswitch';
import { describeLayer } from '../helpers/layers';
import { PHONE_SDP } from '../helpers/phone';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';
import type { SippResult } from '../helpers/sipp';
import { trunkCaller, type SippCaller } from '../helpers/trunkCaller';

/** Queue 8000's hold music in this suite: a steady 440 Hz tone, looped forever. */
const MOH_HZ = 440;
const QUEUE_MOH = `tone_stream://%(1000,0,${MOH_HZ});loops=-1`;
/** The RTP port of the SIP.js test phones' static SDP: FreeSWITCH sends the agent leg there. */
const PHONE_RTP_PORT = /m=audio (\d+)/.exec(PHONE_SDP)![1]!;

/** A conference member as `conference <name> json_list` shows it. */
interface JsonMember {
  uuid: string;
  flags: { can_hear: boolean; can_speak: boolean };
}

describeLayer('media', 'queue calls through a real FreeSWITCH', () => {
  let stack: FreeSwitchSipStack;
  let fsEvents: FsEvents;
  let rtp: RtpListener | undefined;
  let caller: SippCaller | undefined;

  beforeAll(async () => {
    stack = await startSipStack({
      media: 'freeswitch',
      // sipp sending from 127.0.0.2 plays a carrier trunk.
      sip: { trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
      wrapUpSeconds8000: 0.5,
      queues: { '8000': { moh: QUEUE_MOH, ringSeconds: 15, maxWaitSeconds: 120 } },
    });
    fsEvents = await subscribeFsEvents(stack.freeswitch.esl, 'CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_EXECUTE_COMPLETE CUSTOM conference::maintenance');
  }, 120000);

  afterAll(async () => {
    // A failed test leaves the caller up: end it, so the instance stops without draining it.
    await caller?.abort();
    rtp?.close();
    fsEvents?.close();
    await stack?.close();
  }, 60000);

  const event = (what: string, pred: (e: CcsEvent) => boolean): Promise<CcsEvent> =>
    waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, 0, 20000).catch((err: unknown) => {
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`);
    });
  const agentState = (agent: string, state: S, prev?: S) => event(`${agent} ${prev ?? ''}→${state}`, (e) => e.type === 'agent.state' && e.agent === agent && e.queue === '8000' && e.state === state && (prev === undefined || e.prev === prev));
  const fsApi = (command: string): Promise<string> => stack.freeswitch.api(command);
  /** The conference's non-ghost members as json_list shows them, and its member count. */
  const conferenceNow = async (conf: string): Promise<{ count: number; members: Map<string, JsonMember['flags']> }> => {
    const text = await fsApi(`conference ${conf} json_list`);
    let list: { member_count: number; members: JsonMember[] }[];
    try {
      list = JSON.parse(text) as typeof list;
    } catch {
      throw new Error(`conference ${conf} json_list is not JSON:\n${text}`);
    }
    expect(list).toHaveLength(1);
    return { count: list[0]!.member_count, members: new Map(list[0]!.members.map((m) => [m.uuid, m.flags])) };
  };
  const isConf = (conf: string, action: string) => (e: FsEvent) => e['Event-Subclass'] === 'conference::maintenance' && e['Conference-Name'] === conf && e.Action === action;
  const expectSippOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-2000)}`);
  };

  it('a trunk caller to 8000 hears the queue\'s hold music alone in its FreeSWITCH conference, then talks with the agent who logged in and answered; its hang-up ends the agent leg and the conference, and the agent wraps up and is Ready again', async () => {
    const fs = stack.freeswitch;
    const listener = (rtp = await listenRtp());
    const sipp = (caller = await trunkCaller(stack.drachtio.sipPort, listener));
    /** Fails fast with sipp's output if sipp ends while `p` is pending. */
    const whileCalling = <T>(p: Promise<T>): Promise<T> =>
      Promise.race([p, sipp.result.then((r) => Promise.reject(new Error(`sipp ended early (${r.code})\n${r.errors}\n${r.output.slice(-2000)}`)))]);

    // 1. Answered onto a conference, alone (mode 1), queued, no agent logged in.
    const enqueued = await whileCalling(event('caller queued', (e) => e.type === 'queue.caller' && e.reason === 'enqueued'));
    expect(enqueued).toMatchObject({ queue: '8000', caller: '5550100', position: 1 });
    const task = (enqueued as { task?: unknown }).task;
    expect(typeof task).toBe('string');
    const conf = `ccs-${String(task)}`;
    const callerJoined = await fsEvents.next(`caller joins ${conf}`, (e) => isConf(conf, 'add-member')(e) && e['Member-Ghost'] === 'false');
    const callerUuid = callerJoined['Unique-ID']!;
    // That member is the caller's leg: FreeSWITCH sends its audio to the caller's SDP address.
    expect((await fsApi(`uuid_getvar ${callerUuid} remote_media_port`)).trim()).toBe(String(listener.port));
    const alone = await conferenceNow(conf);
    expect(alone.count).toBe(1);
    expect(alone.members.get(callerUuid)).toMatchObject({ can_hear: true, can_speak: true });

    // 2. Music on hold while waiting (agent 1001, the queue's only member, is not logged in):
    //    half a second of the queue's tone, as the caller receives it.
    expect((await stack.app.engine.states('default', '1001')).map((v) => v.state)).toEqual([S.LoggedOut]);
    await whileCalling(listener.frames(`${MOH_HZ} Hz hold music`, (s) => toneShare(s, MOH_HZ) > 0.8, 25, 15000));

    // 3. The agent logs in by feature code (answered by FreeSWITCH with the confirm prompt,
    //    then released) and is Ready; the waiting call is offered to it and it answers.
    const phone = await stack.phone('1001');
    const offered = phone.nextIncoming();
    const fac = await phone.dial('*38');
    await agentState('1001', S.Ready, S.LoggedOut);
    await fac.ended;
    const loggedIn = promptFor({ outcome: 'logged_in_ready', queues: 1, text: '', status: 200 }, undefined);
    const confirm = await fsEvents.next('logged-in prompt played', (e) => e['Event-Name'] === 'CHANNEL_EXECUTE_COMPLETE' && e.Application === 'playback' && e['Application-Data'] === loggedIn);
    expect(confirm['Application-Response']).toBe('FILE PLAYED');
    const agentCall = await whileCalling(offered);
    const answered = await event('caller answered', (e) => e.type === 'queue.caller' && e.reason === 'answered');
    expect(answered).toMatchObject({ queue: '8000', caller: '5550100', agent: '1001', task });
    await agentState('1001', S.QueueCall, S.Ready);

    // 4. One conversation: the agent's leg joined the caller's conference, both hear and speak.
    const agentJoined = await fsEvents.next(`agent joins ${conf}`, (e) => isConf(conf, 'add-member')(e) && e['Member-Ghost'] === 'false' && e['Unique-ID'] !== callerUuid);
    const agentUuid = agentJoined['Unique-ID']!;
    expect((await fsApi(`uuid_getvar ${agentUuid} remote_media_port`)).trim()).toBe(PHONE_RTP_PORT);
    expect(agentJoined).toMatchObject({ Hear: 'true', Speak: 'true' });
    const together = await conferenceNow(conf);
    expect(together.count).toBe(2);
    expect(together.members.get(callerUuid)).toMatchObject({ can_hear: true, can_speak: true });
    expect(together.members.get(agentUuid)).toMatchObject({ can_hear: true, can_speak: true });

    // 5. The music stops for the caller: FreeSWITCH ends the conference's hold-music file,
    //    and what reaches the caller is no longer the tone.
    const mohDone = await fsEvents.next(`hold music ends in ${conf}`, (e) => isConf(conf, 'play-file-done')(e) && e.Async === 'true');
    expect(mohDone.File).toBe(QUEUE_MOH);
    await whileCalling(listener.frames(`no ${MOH_HZ} Hz after the answer`, (s) => toneShare(s, MOH_HZ) < 0.2, 25, 15000));

    // 6. The caller hangs up: the agent gets BYE, the conference ends on FreeSWITCH.
    await sipp.hangUp();
    await agentCall.ended;
    expectSippOk(await sipp.result);
    await fsEvents.next(`${conf} destroyed`, isConf(conf, 'conference-destroy'));
    expect(await fsApi('conference list')).not.toContain(conf);

    // 7. The agent wraps up, then is Ready again.
    await agentState('1001', S.WrapUp, S.QueueCall);
    await agentState('1001', S.Ready, S.WrapUp);

    // 8. Every FreeSWITCH channel of the test (FAC, caller, agent: a conference has none of
    //    its own) is gone.
    const created = fsEvents.received.filter((e) => e['Event-Name'] === 'CHANNEL_CREATE').map((e) => e['Unique-ID']!);
    expect(created).toEqual(expect.arrayContaining([callerUuid, agentUuid]));
    expect(created.length).toBe(3);
    await Promise.all(created.map((uuid) => fsEvents.next(`channel ${uuid} destroyed`, (e) => e['Event-Name'] === 'CHANNEL_DESTROY' && e['Unique-ID'] === uuid)));
    expect((await fs.api('show channels count')).trim()).toMatch(/^0 total/);
  }, 120000);
});
