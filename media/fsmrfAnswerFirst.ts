/**
 * A FreeSWITCH leg that answers a far end's offer whose media needs a handshake with that far
 * end before the channel is up: a browser's WebRTC offer (ICE, DTLS-SRTP). FreeSWITCH's
 * `answer` in the drachtio_mrf dialplan completes only once DTLS is done, so the outbound
 * event socket that makes the leg controllable connects after the far end has FreeSWITCH's
 * answer. drachtio-fsmrf 4.1.2's createEndpoint refuses such an offer, and its connectCaller
 * does this only for an incoming INVITE; this is the same sequence for any far end:
 *
 * 1. INVITE FreeSWITCH with the offer (User-Agent `drachtio-fsmrf:<uuid>`, X-esl-outbound),
 *    registering `<uuid>` in fsmrf's pending connections, as its createEndpoint does;
 * 2. hand FreeSWITCH's answer (its 200 OK) to `sendAnswer` (the caller ACKs its far end);
 * 3. once FreeSWITCH's outbound socket for the channel arrives, wrap it in fsmrf's Endpoint.
 *
 * It reads fsmrf's MediaServer internals (pendingConnections, sip addresses, the advertised
 * outbound-socket address) that connectCaller uses; they are typed here, and nowhere else.
 */
import { randomUUID } from 'node:crypto';
import type Mrf from 'drachtio-fsmrf';
import FsmrfEndpoint from 'drachtio-fsmrf/lib/endpoint';

/** A pending connection of fsmrf's MediaServer: `fn` is called with the channel's outbound socket. */
interface Pending {
  fn?: (conn: Mrf.EslConnection) => void;
  connTimeout?: NodeJS.Timeout;
}

/** What of fsmrf 4.1.2's MediaServer this module reads (lib/mediaserver.js). */
interface MediaServerInternals {
  srf: { createUAC(uri: string, opts: { localSdp: string; headers: Record<string, string> }): Promise<Mrf.FsDialog & { remote: { sdp: string } }> };
  sip: { ipv4: { udp: { address?: string } } };
  advertisedAddress: string;
  advertisedPort: number;
  pendingConnections: Map<string, Pending>;
  _mrf: { customEvents?: string[] };
}

/**
 * Creates a leg answering `remoteSdp`; FreeSWITCH's answer goes to `sendAnswer` before the
 * leg is waited for. Rejects after `timeoutMs` (the INVITE's dialog, if any, is released).
 */
export function createAnswerFirstEndpoint(ms: Mrf.MediaServer, remoteSdp: string, sendAnswer: (localSdp: string) => Promise<void>, timeoutMs: number): Promise<Mrf.Endpoint> {
  const m = ms as unknown as MediaServerInternals;
  const address = m.sip.ipv4.udp.address;
  if (address === undefined) return Promise.reject(new Error('create endpoint: the media server has no SIP address yet'));
  const uuid = randomUUID();
  return new Promise<Mrf.Endpoint>((resolve, reject) => {
    let dialog: Mrf.FsDialog | undefined;
    let conn: Mrf.EslConnection | undefined;
    let answered = false;
    let done = false;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      m.pendingConnections.delete(uuid);
      dialog?.destroy().catch(() => undefined);
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`create endpoint (answer first): no channel within ${timeoutMs} ms`)), timeoutMs);
    const produce = (): void => {
      if (done || dialog === undefined || conn === undefined || !answered) return;
      done = true;
      clearTimeout(timer);
      const ep = new FsmrfEndpoint(conn, dialog, ms, { customEvents: m._mrf.customEvents ?? [], is3pcc: false });
      ep.once('ready', () => resolve(ep));
    };
    m.pendingConnections.set(uuid, {
      fn: (c) => {
        conn = c;
        produce();
      },
    });
    m.srf
      .createUAC(`sip:drachtio@${address}`, {
        localSdp: remoteSdp,
        headers: { 'User-Agent': `drachtio-fsmrf:${uuid}`, 'X-esl-outbound': `${m.advertisedAddress}:${m.advertisedPort}` },
      })
      .then(async (dlg) => {
        dialog = dlg;
        if (done) {
          await dlg.destroy().catch(() => undefined);
          return;
        }
        await sendAnswer(dlg.remote.sdp);
        answered = true;
        produce();
      })
      .catch((err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
  });
}
