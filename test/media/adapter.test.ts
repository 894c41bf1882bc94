/**
 * The drachtio-fsmrf media adapter against a real drachtio-server and a real FreeSWITCH
 * started with config/freeswitch/ (DESIGN.md sections 5, 10 and 11). Calls come from sipp
 * through drachtio into a tiny srf app in this file that answers with the endpoint's SDP.
 * What FreeSWITCH did is read back over its own event socket, not from the adapter.
 */
import { once } from 'node:events';
import type { EventEmitter } from 'node:events';
import Srf from 'drachtio-srf';
import { createLogger } from '../../lib/logger';
import { createFsmrfMediaServer, DEFAULT_MOH, type FsmrfMediaServer } from '../../media/fsmrf';
import type { Endpoint, LegMode } from '../../media/port';
import { startDrachtio, type DrachtioServer } from '../helpers/drachtio';
import { listenRtp, startFreeSwitch, type FreeSwitchServer } from '../helpers/freeswitch';
import { hears, hearsNot } from '../helpers/hearing';
import { describeLayer } from '../helpers/layers';
import { runSipp, type SippResult } from '../helpers/sipp';

/** The parts of drachtio-srf this test's little app uses. */
interface TestSrf extends EventEmitter {
  connect(opts: { host: string; port: number; secret: string }): void;
  disconnect(): void;
  invite(fn: (req: { body: string }, res: unknown) => void): void;
  createUAS(req: unknown, res: unknown, opts: { localSdp: string }): Promise<{ destroy(): Promise<unknown> }>;
}

/** An answered sipp call anchored on a FreeSWITCH endpoint. */
interface Leg {
  ep: Endpoint;
  hangup(): Promise<void>;
  sipp: Promise<SippResult>;
}

/** A static answer for offerless endpoints: audio to a port nobody listens on. */
const ANSWER_SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n';

describeLayer('media', 'FreeSWITCH media adapter (drachtio-fsmrf)', () => {
  let drachtio: DrachtioServer;
  let fs: FreeSwitchServer;
  let srf: TestSrf;
  let media: FsmrfMediaServer;
  /** Receives the next INVITE the test's app answers. */
  let onInvite: ((req: { body: string }, res: unknown) => void) | undefined;

  beforeAll(async () => {
    [drachtio, fs] = await Promise.all([startDrachtio(), startFreeSwitch()]);
    srf = new Srf() as unknown as TestSrf;
    srf.invite((req, res) => onInvite?.(req, res));
    const connected = once(srf, 'connect');
    srf.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
    const [err] = (await connected) as [Error | null];
    if (err) throw err;
    // A short backoff cap keeps the reconnect test quick; the product default caps at 10 s.
    media = createFsmrfMediaServer({ srf, freeswitch: fs.esl, logger: createLogger('silent'), backoff: { initialMs: 100, maxMs: 500 } });
    await media.whenAvailable(15000);
  }, 60000);

  afterAll(async () => {
    await media?.stop();
    srf?.disconnect();
    await fs?.stop();
    await drachtio?.stop();
  }, 30000);

  /** Places a sipp call through drachtio; the app anchors it on a new FreeSWITCH endpoint. */
  const call = async (): Promise<Leg> => {
    const answered = new Promise<Leg>((resolve, reject) => {
      onInvite = (req, res) => {
        onInvite = undefined;
        (async () => {
          const ep = await media.createEndpoint({ remoteSdp: req.body });
          const dialog = await srf.createUAS(req, res, { localSdp: ep.localSdp });
          resolve({ ep, hangup: () => dialog.destroy().then(() => undefined), sipp });
        })().catch(reject);
      };
    });
    const sipp = runSipp({ scenario: 'media-call.xml', target: `127.0.0.1:${drachtio.sipPort}`, service: 'media', user: 'caller' });
    return Promise.race([answered, sipp.then((r) => Promise.reject(new Error(`sipp ended before the call was answered (${r.code})\n${r.output.slice(-2000)}`)))]);
  };

  const expectSippOk = (r: SippResult): void => {
    if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-2000)}`);
  };

  /**
   * Retries `check` until it passes: FreeSWITCH updates its channel table and ends
   * conferences on its own threads after the SIP exchange that caused it has finished.
   */
  const eventually = async (check: () => Promise<void>, timeoutMs = 5000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  /** The member flags FreeSWITCH lists for `ep` in `conf` (e.g. ['hear', 'speak']). */
  const memberFlags = async (conf: string, ep: Endpoint): Promise<string[]> => {
    const list = await fs.api(`conference ${conf} list`);
    const line = list.split('\n').find((l) => l.includes(ep.id));
    if (!line) throw new Error(`${ep.id} is not listed in ${conf}:\n${list}`);
    // id;channel;uuid;caller name;caller number;flags;...
    return (line.split(';')[5] ?? '').split('|').filter((f) => f === 'hear' || f === 'speak');
  };

  const expectNothingLeft = async (): Promise<void> => {
    await eventually(async () => {
      expect((await fs.api('show channels count')).trim()).toMatch(/^0 total/);
      expect(await fs.api('conference list')).toMatch(/No active conferences/);
    });
  };

  const FLAGS: Record<LegMode, string[]> = { 1: ['hear', 'speak'], 2: ['hear'], 3: ['speak'], 4: [] };

  it('maps each listen/speak mode of a leg to the conference member hear/speak flags, plays a prompt to it and leaves nothing behind', async () => {
    const conf = await media.createConference('ccs-modes');
    const leg = await call();
    await conf.join(leg.ep, 1);
    expect(await memberFlags('ccs-modes', leg.ep)).toEqual(FLAGS[1]);
    for (const mode of [2, 3, 4, 1] as LegMode[]) {
      await conf.setMode(leg.ep, mode);
      expect(await memberFlags('ccs-modes', leg.ep)).toEqual(FLAGS[mode]);
    }

    const started = Date.now();
    await leg.ep.play('confirm');
    // confirm is 380 ms of tone: resolving earlier would mean it did not wait for the end.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);

    await leg.hangup();
    await leg.ep.destroy();
    await conf.destroy();
    expectSippOk(await leg.sipp);
    await expectNothingLeft();
  });

  it('joins a leg directly in the mode it is given, so it never hears or speaks before that', async () => {
    const conf = await media.createConference('ccs-join-held');
    const leg = await call();
    await conf.join(leg.ep, 4);
    expect(await memberFlags('ccs-join-held', leg.ep)).toEqual([]);
    await conf.setMode(leg.ep, 3);
    expect(await memberFlags('ccs-join-held', leg.ep)).toEqual(['speak']);
    await leg.hangup();
    await leg.ep.destroy();
    await conf.destroy();
    expectSippOk(await leg.sipp);
    await expectNothingLeft();
  });

  it('plays the error prompt to a leg outside any conversation and resolves when it has finished', async () => {
    const leg = await call();
    const started = Date.now();
    await leg.ep.play('error');
    // error is three 150 ms beeps with two 100 ms gaps.
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    await leg.hangup();
    await leg.ep.destroy();
    expectSippOk(await leg.sipp);
    await expectNothingLeft();
  });

  it('creates an offerless endpoint whose offer is answered with modify()', async () => {
    const ep = await media.createEndpoint();
    expect(ep.localSdp).toMatch(/m=audio \d+ RTP\/AVP/);
    await ep.modify(ANSWER_SDP);
    expect((await fs.api(`uuid_getvar ${ep.id} remote_media_port`)).trim()).toBe('40000');
    await ep.destroy();
    await ep.destroy(); // safe twice
    await expectNothingLeft();
  });

  it('gives hold music to a member whose peers are all on hold, and stops it when one comes back', async () => {
    const conf = await media.createConference('ccs-hold');
    const caller = await call();
    const agent = await media.createEndpoint();
    await agent.modify(ANSWER_SDP);
    await conf.join(caller.ep, 1);
    await conf.join(agent, 1);
    const callerMember = (await fs.api('conference ccs-hold list')).split('\n').find((l) => l.includes(caller.ep.id))!.split(';')[0]!;
    const playing = async (): Promise<string> => fs.api(`conference ccs-hold play_status ${callerMember}`);

    // play_status names the file without its tone_stream:// prefix.
    const music = DEFAULT_MOH.replace('tone_stream://', '');
    await conf.setMode(agent, 4);
    expect(await playing()).toContain(music);
    await conf.setMode(agent, 1);
    await eventually(async () => expect(await playing()).not.toContain(music));

    await caller.hangup();
    await Promise.all([caller.ep.destroy(), agent.destroy()]);
    await conf.destroy();
    await conf.destroy(); // safe twice
    expectSippOk(await caller.sipp);
    await expectNothingLeft();
  });

  it('ends a conversation without hanging up the legs still in it', async () => {
    const conf = await media.createConference('ccs-end');
    const ep = await media.createEndpoint();
    await ep.modify(ANSWER_SDP);
    await conf.join(ep, 1);
    await conf.destroy();
    await eventually(async () => expect(await fs.api('conference list')).toMatch(/No active conferences/));
    expect((await fs.api(`uuid_exists ${ep.id}`)).trim()).toBe('true');
    await ep.destroy();
    await expectNothingLeft();
  });

  it('moves a member to another conference keeping its channel, in the mode it is given; out of an ended one it joins afresh', async () => {
    const [a, b, c] = await Promise.all([media.createConference('ccs-move-a'), media.createConference('ccs-move-b'), media.createConference('ccs-move-c')]);
    const ep = await media.createEndpoint();
    await ep.modify(ANSWER_SDP);
    await a.join(ep, 1);
    // `show channels` reads FreeSWITCH's channel table, which its SQL thread fills a moment
    // later: wait for ep to be counted (a conference has no channel of its own).
    const oneChannel = async (): Promise<void> => eventually(async () => expect((await fs.api('show channels count')).trim()).toBe('1 total.'));
    await oneChannel();
    await a.moveTo(ep, b, 2);
    // The same channel (no new one, none hung up), listed in b only, with b's mode.
    expect(await memberFlags('ccs-move-b', ep)).toEqual(FLAGS[2]);
    expect(await fs.api('conference ccs-move-a list')).not.toContain(ep.id);
    expect((await fs.api(`uuid_exists ${ep.id}`)).trim()).toBe('true');
    await oneChannel();
    // Its member id is the one mod_conference now lists: mode changes reach it.
    await b.setMode(ep, 3);
    expect(await memberFlags('ccs-move-b', ep)).toEqual(FLAGS[3]);
    // b ends under it (a browser line's conversation over): moving it from b joins c afresh.
    await b.destroy();
    await b.moveTo(ep, c, 1);
    expect(await memberFlags('ccs-move-c', ep)).toEqual(FLAGS[1]);
    expect((await fs.api(`uuid_exists ${ep.id}`)).trim()).toBe('true');
    await ep.destroy();
    await Promise.all([a.destroy(), c.destroy()]);
    await expectNothingLeft();
  });

  it('has no channel of its own: the conference exists while it has members, and a join after the last one left creates it afresh with the conversation\'s music', async () => {
    // The conversation's music is a steady 440 Hz; the profile's (DEFAULT_MOH) has no 440 Hz.
    const conf = await media.createConference('ccs-again', { moh: 'tone_stream://%(10000,0,440);loops=-1' });
    const phone = await listenRtp();
    try {
      const ep = await media.createEndpoint();
      await ep.modify(ANSWER_SDP.replace('m=audio 40000', `m=audio ${phone.port}`));
      await conf.join(ep, 1);
      // Alone in it, the member hears the conversation's music, measured on its RTP.
      await hears(phone, 'the member alone', 440);
      await eventually(async () => expect((await fs.api('show channels count')).trim()).toBe('1 total.'));
      // Out again (as a moving browser line is): mod_conference ends the conference.
      const other = await media.createConference('ccs-elsewhere');
      await conf.moveTo(ep, other, 1);
      await eventually(async () => expect(await fs.api('conference ccs-again list count')).toMatch(/not found/));
      await hearsNot(phone, 'the member in another conference', 440);
      // Back: created afresh, in the mode given and with the same music.
      await other.moveTo(ep, conf, 2);
      expect(await memberFlags('ccs-again', ep)).toEqual(FLAGS[2]);
      await hears(phone, 'the member back alone', 440);
      await Promise.all([conf.destroy(), other.destroy()]);
      // The member still in it is let go with its channel up.
      await eventually(async () => expect(await fs.api('conference list')).toMatch(/No active conferences/));
      expect((await fs.api(`uuid_exists ${ep.id}`)).trim()).toBe('true');
      await ep.destroy();
    } finally {
      phone.close();
    }
    await expectNothingLeft();
  });

  it('refuses a conversation whose name is already in use', async () => {
    const conf = await media.createConference('ccs-dup');
    await expect(media.createConference('ccs-dup')).rejects.toThrow(/ccs-dup/);
    await conf.destroy();
    await expectNothingLeft();
  });

  it('reports unavailable while FreeSWITCH is down and reconnects when it is back', async () => {
    const ports = { sipPort: fs.sipPort, eslPort: fs.esl.port };
    await fs.stop();
    await eventually(() => Promise.resolve(expect(media.available).toBe(false)));
    await expect(media.createEndpoint()).rejects.toThrow(/unavailable/);
    fs = await startFreeSwitch(ports);
    await media.whenAvailable(20000);
    expect(media.health().up).toBe(true);
    const ep = await media.createEndpoint();
    await ep.destroy();
    await expectNothingLeft();
  }, 60000);
});
