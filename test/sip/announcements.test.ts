/**
 * Queue announcements (issue 4 item 1, the queue's `announcements`): a waiting caller hears
 * the welcome sound once, then its place in the queue every period, and the place follows
 * the queue as callers ahead of it are answered. Played through the media port (the
 * static-SDP fake records what each leg was played).
 */
import type { QueueCallerEvent } from '../../lib/events';
import type { Announcement, Prompt } from '../../media/port';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';

const WELCOME = 'tone_stream://%(200,0,440)';
const isPosition = (n: number) => (_ep: string, p: Prompt | Announcement): boolean => typeof p !== 'string' && p.kind === 'position' && p.position === n;

describeLayer('sip', 'queue announcements: welcome and periodic position', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({
      wrapUpSeconds8000: 0,
      queues: { '8000': { announcements: { welcome: WELCOME, position: true, periodSeconds: 1 } } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });
  beforeEach(async () => {
    await s.reset();
  });
  const enqueued = (caller: string): Promise<QueueCallerEvent> =>
    waitForEvent(s.redisServer.url, 'ccs:{default}:events', (e) => e.type === 'queue.caller' && e.reason === 'enqueued' && e.caller === caller, 0, 15000) as Promise<QueueCallerEvent>;

  it('two waiting callers hear the welcome, then places 1 and 2; when the first is answered the second hears place 1', async () => {
    const first = await s.phone('1004');
    const second = await s.phone('1005');
    const call1 = await first.dial('8000');
    expect((await enqueued('1004')).position).toBe(1);
    const call2 = await second.dial('8000');
    expect((await enqueued('1005')).position).toBe(2);
    const [ep1, ep2] = await Promise.all([s.media.nextPlay(isPosition(1)), s.media.nextPlay(isPosition(2))]);
    expect(ep1).not.toBe(ep2);
    // Each leg heard the welcome first, once.
    for (const ep of [ep1, ep2]) {
      const heard = s.media.playedTo.filter((x) => x.endpoint === ep).map((x) => x.prompt);
      expect(heard[0]).toEqual({ kind: 'sound', sound: WELCOME });
      expect(heard.filter((p) => typeof p !== 'string' && p.kind === 'sound')).toHaveLength(1);
    }

    // An agent takes the first caller; the second moves up to place 1 on its own leg.
    const movedUp = s.media.nextPlay((ep, p) => ep === ep2 && isPosition(1)(ep, p));
    const agent = await s.phone('1001');
    const incoming = agent.nextIncoming(); // before the login: the offer may come at once
    await s.app.engine.login('default', '1001');
    const leg = await incoming;
    expect(await movedUp).toBe(ep2);
    // Nothing is announced to a caller once it is connected.
    const before = s.media.playedTo.filter((x) => x.endpoint === ep1).length;
    await leg.hangup();
    await call1.ended;
    expect(s.media.playedTo.filter((x) => x.endpoint === ep1).length).toBe(before);
    await call2.hangup();
  });
});
