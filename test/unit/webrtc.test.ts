/**
 * The browser softphone's server side without a browser: which bindings are browsers, the
 * fork sending them no offer, a browser's offer answered through the media port with the
 * answer in the ACK, the softphone's config and the UI's policy allowing its WebSocket.
 */
import { uiContentSecurityPolicy } from '../../app/http/ui';
import { forkInvite, type ForkAnswer, type ForkOfferAnswer } from '../../app/sip/fork';
import type { SipDialog, SipOfferIn2xx, SrfLike } from '../../app/sip/types';
import { answerBrowserOffer, isWebRtcContact } from '../../app/sip/webrtc';
import { ConfigError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import { FAKE_SDP, FakeMediaServer } from '../../media/fake';
import { testConfig } from '../helpers/config';

const BROWSER_OFFER = 'v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AA\r\n';

describe('isWebRtcContact', () => {
  it.each([
    ['sip:x7@df7jal23ls0d.invalid;transport=ws;ccs-webrtc=1', true],
    ['<sip:x7@h.invalid;ccs-webrtc;transport=ws>', true],
    ['sip:x7@h.invalid;transport=ws;CCS-WEBRTC=1', true],
    ['sip:x7@h.invalid;transport=ws', false],
    ['sip:1001@10.0.0.5:5060', false],
    ['sip:ccs-webrtc@10.0.0.5:5060', false],
    ['sip:1001@10.0.0.5;x-ccs-webrtc=1', false],
  ])('%s → %s', (contact, yes) => {
    expect(isWebRtcContact(contact)).toBe(yes);
  });
});

/** A fake drachtio-srf whose INVITEs the test answers by hand. */
function fakeSrf() {
  const sent: { uri: string; opts: Record<string, unknown>; answer: (r: SipDialog | SipOfferIn2xx) => void; fail: (status: number) => void }[] = [];
  const srf = {
    createUAC: (uri: string, opts: Record<string, unknown>) =>
      new Promise((resolve, reject) => {
        sent.push({ uri, opts, answer: resolve, fail: (status) => reject(Object.assign(new Error(`SIP ${status}`), { status })) });
      }),
  } as unknown as Pick<SrfLike, 'createUAC'>;
  return { srf, sent };
}
const dialog = (): SipDialog & { destroyed: number } => {
  const d = { destroyed: 0, remote: { sdp: 'v=0 phone' }, sip: { callId: 'c' }, on: () => undefined, modify: () => Promise.resolve(''), destroy: () => ((d.destroyed += 1), Promise.resolve()) };
  return d;
};
const offerIn2xx = (d: SipDialog = dialog()) => {
  const o = { acked: [] as string[], destroyed: 0, sdp: BROWSER_OFFER, ack: (sdp: string) => (o.acked.push(sdp), Promise.resolve(d)), destroy: () => ((o.destroyed += 1), Promise.resolve()) };
  return o;
};
const logger = createLogger('silent');

describe('forkInvite with browsers', () => {
  it('sends FreeSWITCH\'s offer to phones and no SDP (noAck) to browsers', () => {
    const { srf, sent } = fakeSrf();
    forkInvite(srf, ['sip:1001@10.0.0.5', 'sip:x@h.invalid;transport=ws;ccs-webrtc=1'], { localSdp: 'v=0 fs', offerless: isWebRtcContact, logger });
    expect(sent.map((s) => s.opts)).toEqual([{ localSdp: 'v=0 fs' }, { noAck: true }]);
  });

  it("resolves with the browser's offer when the browser answers first, and releases the phone's late answer", async () => {
    const { srf, sent } = fakeSrf();
    const fork = forkInvite(srf, ['sip:1001@10.0.0.5', 'sip:x@h.invalid;ccs-webrtc'], { localSdp: 'v=0 fs', offerless: isWebRtcContact, logger });
    const offer = offerIn2xx();
    sent[1]!.answer(offer);
    const won = (await fork.answered) as ForkOfferAnswer;
    expect(won.offer.sdp).toBe(BROWSER_OFFER);
    expect(won.uri).toBe('sip:x@h.invalid;ccs-webrtc');
    const late = dialog();
    sent[0]!.answer(late);
    await new Promise((r) => setImmediate(r));
    expect(late.destroyed).toBe(1);
  });

  it("abandons a browser's late offer (ACK and BYE) when a phone answered first", async () => {
    const { srf, sent } = fakeSrf();
    const fork = forkInvite(srf, ['sip:1001@10.0.0.5', 'sip:x@h.invalid;ccs-webrtc'], { localSdp: 'v=0 fs', offerless: isWebRtcContact, logger });
    const phone = dialog();
    sent[0]!.answer(phone);
    expect(((await fork.answered) as ForkAnswer).dialog).toBe(phone);
    const late = offerIn2xx();
    sent[1]!.answer(late);
    await new Promise((r) => setImmediate(r));
    expect(late.destroyed).toBe(1);
    expect(late.acked).toEqual([]);
  });
});

describe('answerBrowserOffer', () => {
  it("answers the browser's offer with a media leg and ACKs with the leg's answer before the leg resolves", async () => {
    const media = new FakeMediaServer();
    const d = dialog();
    const offer = offerIn2xx(d);
    const { dialog: got, ep } = await answerBrowserOffer(media, offer);
    expect(got).toBe(d);
    expect(offer.acked).toEqual([FAKE_SDP]);
    expect((ep as unknown as { remoteSdp: string }).remoteSdp).toBe(BROWSER_OFFER);
  });

  it('releases the browser (ACK + BYE) and rethrows when the media server cannot answer', async () => {
    const offer = offerIn2xx();
    const media = { createEndpoint: () => Promise.reject(new Error('FreeSWITCH is down')) };
    await expect(answerBrowserOffer(media, offer)).rejects.toThrow('FreeSWITCH is down');
    expect(offer.destroyed).toBe(1);
  });

  it('sends BYE on the dialog when the leg fails after the ACK', async () => {
    const d = dialog();
    const offer = offerIn2xx(d);
    const media = {
      createEndpoint: async (o: { sendAnswer?: (sdp: string) => Promise<void> } = {}) => {
        await o.sendAnswer?.('v=0 fs');
        throw new Error('no channel within 10000 ms');
      },
    };
    await expect(answerBrowserOffer(media, offer)).rejects.toThrow('no channel');
    expect(offer.acked).toEqual(['v=0 fs']);
    expect(d.destroyed).toBe(1);
    expect(offer.destroyed).toBe(0);
  });
});

describe('softphone config', () => {
  it('accepts a ws or wss URL', () => {
    expect(testConfig({ redisUrl: 'redis://x', sip: { softphone: { wsUrl: 'wss://sip.example.com:8443' } } }).sip.softphone).toEqual({ wsUrl: 'wss://sip.example.com:8443' });
  });

  it.each(['http://sip.example.com', 'wss://a b', 'ws://host/<script>', ''])('refuses wsUrl %j with a message naming the key', (wsUrl) => {
    expect(() => testConfig({ redisUrl: 'redis://x', sip: { softphone: { wsUrl } } })).toThrow(ConfigError);
    expect(() => testConfig({ redisUrl: 'redis://x', sip: { softphone: { wsUrl } } })).toThrow(/softphone\/wsUrl|softphone\.wsUrl/);
  });

  it("lets the UI's pages connect to the softphone's WebSocket", () => {
    expect(uiContentSecurityPolicy('ccs.example.com:8080', ['wss://sip.example.com:8443'])).toContain("connect-src 'self' ws://ccs.example.com:8080 wss://ccs.example.com:8080 wss://sip.example.com:8443;");
  });
});
