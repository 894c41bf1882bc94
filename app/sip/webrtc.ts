/**
 * Which registered devices are browsers: the agent console's softphone (ui/src/softphone.ts)
 * registers a Contact URI with the parameter `ccs-webrtc`. Such a device gets its calls as
 * an INVITE without SDP: the browser offers WebRTC media (ICE, DTLS-SRTP) in its 200 OK and
 * FreeSWITCH answers it in the ACK. Every other device (desk phones, SIP clients over UDP,
 * TCP or a WebSocket) keeps being sent FreeSWITCH's plain RTP offer.
 */
import type { Endpoint, MediaServer } from '../../media/port';
import type { SipDialog, SipOfferIn2xx } from './types';

/** The Contact URI parameter the browser softphone registers with. */
export const WEBRTC_CONTACT_PARAM = 'ccs-webrtc';

/** True if `contact` (a binding's Contact URI) is a browser softphone's. */
export function isWebRtcContact(contact: string): boolean {
  const params = contact.replace(/^<|>$/g, '').split('?')[0]!.split(';').slice(1);
  return params.some((p) => p.split('=')[0]!.trim().toLowerCase() === WEBRTC_CONTACT_PARAM);
}

/**
 * Answers a browser's offer (the 200 OK to an offerless INVITE) with a new media leg, the
 * ACK carrying the leg's answer; resolves with the browser's dialog and that leg. On failure
 * the browser's call is released (ACK + BYE, or BYE) and the error rethrown.
 */
/**
 * Answers the offer a phone (plain RTP) made in its 200 OK to an offerless INVITE: a media
 * server endpoint answers it, and the ACK carries that answer. The endpoint is up before the
 * ACK goes (unlike a browser's, which waits for the DTLS handshake the ACK starts).
 */
export async function answerPhoneOffer(media: Pick<MediaServer, 'createEndpoint'>, offer: SipOfferIn2xx): Promise<{ dialog: SipDialog; ep: Endpoint }> {
  let ep: Endpoint;
  try {
    ep = await media.createEndpoint({ remoteSdp: offer.sdp });
  } catch (err) {
    await offer.destroy().catch(() => undefined);
    throw err;
  }
  try {
    return { dialog: await offer.ack(ep.localSdp), ep };
  } catch (err) {
    await ep.destroy();
    await offer.destroy().catch(() => undefined);
    throw err;
  }
}

export async function answerBrowserOffer(media: Pick<MediaServer, 'createEndpoint'>, offer: SipOfferIn2xx): Promise<{ dialog: SipDialog; ep: Endpoint }> {
  let dialog: SipDialog | undefined;
  try {
    const ep = await media.createEndpoint({
      remoteSdp: offer.sdp,
      sendAnswer: async (sdp) => {
        dialog = await offer.ack(sdp);
      },
    });
    if (dialog === undefined) {
      await ep.destroy();
      throw new Error('the media server answered the browser without sending the answer');
    }
    return { dialog, ep };
  } catch (err) {
    await (dialog === undefined ? offer.destroy() : dialog.destroy()).catch(() => undefined);
    throw err;
  }
}
