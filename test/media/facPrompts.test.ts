/**
 * Feature-code feedback through a real FreeSWITCH (issue 14): the phone talks from the answer
 * on, as a desk phone does, and what it receives before ccswitch's BYE is decoded. Each outcome
 * has its own tone pattern, heard whole (its full length, within one 20 ms frame), and the BYE
 * carries the outcome in its Reason header.
 */
import { promptFor } from '../../fac/prompts';
import { listenRtp, toneShare, type RtpListener } from '../helpers/freeswitch';
import { describeLayer } from '../helpers/layers';
import type { Phone } from '../helpers/phone';
import { startSipStack, type FreeSwitchSipStack } from '../helpers/sipStack';

/** Every frequency a FAC pattern may use: what a received frame is checked for. */
const FREQS = [262, 330, 415, 494, 523, 587, 659, 784, 880, 1200];

/** The segments of a tone_stream URI: [on ms, off ms, Hz]. */
function segments(uri: string): [number, number, number][] {
  return [...uri.matchAll(/%\((\d+),(\d+),(\d+)[^)]*\)/g)].map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

const rms = (x: Int16Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / Math.max(1, x.length));

describeLayer('media', 'feature-code prompts through a real FreeSWITCH', () => {
  let stack: FreeSwitchSipStack;
  let rtp: RtpListener;
  let phone: Phone;

  beforeAll(async () => {
    stack = await startSipStack({ media: 'freeswitch' });
    // The phone hums at 200 Hz from the answer on (no pattern uses it); FreeSWITCH plays to it alone.
    rtp = await listenRtp({ toneHz: 200 });
    phone = await stack.phone('1001', {
      rtp,
      onRemoteSdp: (sdp) => {
        const ip = /c=IN IP4 (\S+)/.exec(sdp)?.[1];
        const port = /m=audio (\d+)/.exec(sdp)?.[1];
        if (ip !== undefined && port !== undefined) rtp.talkTo({ address: ip, port: Number(port) });
      },
    });
  }, 120000);

  afterAll(async () => {
    rtp?.close();
    await stack?.close();
  }, 60000);

  /** Dials `code` and returns every frame received until the BYE, and the BYE's Reason. */
  const dial = async (code: string): Promise<{ frames: Int16Array[]; reason: string | undefined }> => {
    const frames: Int16Array[] = [];
    const stop = rtp.onFrame((f) => frames.push(f));
    try {
      const call = await phone.dial(code);
      await call.ended;
      return { frames, reason: await call.byeReason };
    } finally {
      stop();
    }
  };

  /** Checks that `frames` hold the whole pattern of `uri`: its frequencies, each about as long as it plays, and its full length. */
  const expectPattern = (frames: Int16Array[], uri: string): void => {
    const segs = segments(uri);
    const active = frames.map((f) => rms(f) > 300);
    const first = active.indexOf(true);
    const last = active.lastIndexOf(true);
    expect(first).toBeGreaterThanOrEqual(0);
    const expectedMs = segs.reduce((t, [on, off]) => t + on + off, 0) - segs[segs.length - 1]![1];
    // The whole prompt arrived before the BYE: within one 20 ms frame of its length.
    expect((last - first + 1) * 20).toBeGreaterThanOrEqual(expectedMs - 20);
    const heard = new Map(FREQS.map((hz) => [hz, frames.filter((f) => toneShare(f, hz) > 0.5).length]));
    const playedMs = new Map<number, number>();
    for (const [on, , hz] of segs) playedMs.set(hz, (playedMs.get(hz) ?? 0) + on);
    for (const hz of FREQS) {
      const ms = playedMs.get(hz);
      // Each tone of the pattern, for its length (a frame at each edge may straddle); no other.
      if (ms === undefined) expect({ hz, frames: heard.get(hz) }).toEqual({ hz, frames: 0 });
      else expect(heard.get(hz)! * 20).toBeGreaterThanOrEqual(ms - 2 * 20 * segs.filter((s) => s[2] === hz).length);
    }
  };

  it('*36 while logged out: the not-allowed pattern (three 415 Hz tones), and Reason 409 "not allowed while logged out in queue 8000"', async () => {
    const { frames, reason } = await dial('*36');
    expectPattern(frames, promptFor({ outcome: 'not_allowed', queues: 0, text: '', status: 409 }, undefined));
    expect(reason).toBe('SIP;cause=409;text="not allowed while logged out in queue 8000"');
  }, 60000);

  it('*388001 from a non-member: the not-a-member pattern (three 330 Hz tones), and Reason 403', async () => {
    const { frames, reason } = await dial('*388001');
    expectPattern(frames, promptFor({ outcome: 'not_member', queues: 0, text: '', status: 403 }, undefined));
    expect(reason).toBe('SIP;cause=403;text="not a member of queue 8001"');
  }, 60000);

  it('*38 into autoReady 8000: the logged-in-and-ready pattern (C E G rising) and one queue beep, heard whole, and Reason 200', async () => {
    const { frames, reason } = await dial('*38');
    expectPattern(frames, promptFor({ outcome: 'logged_in_ready', queues: 1, text: '', status: 200 }, undefined));
    expect(reason).toBe('SIP;cause=200;text="logged in: ready in 1 queue"');
  }, 60000);
});
