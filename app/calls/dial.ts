/**
 * Placing one call leg for a conversation: a media endpoint makes the offer, the INVITE is
 * forked to the target's URIs (an outside number through the trunk, or an agent's registered
 * devices), and the answer is given to the endpoint. A dial can be cancelled at any time (a
 * ring limit, the agent giving up, the conversation ending); a 2xx that races the CANCEL is
 * ACKed and released by the fork, so nothing is left half-open.
 */
import type { Logger } from '../../lib/logger';
import type { Endpoint, MediaServer } from '../../media/port';
import { ForkFailed, forkInvite } from '../sip/fork';
import { answerBrowserOffer, isWebRtcContact } from '../sip/webrtc';
import { Leg } from '../sip/leg';
import type { SrfLike } from '../sip/types';

/** How a dial ended. */
export type DialResult = { ok: true; leg: Leg; ep: Endpoint } | { ok: false; status: number; reason: string };

/** A dial in progress. */
export interface Dial {
  /** Settles once answered (leg and endpoint now the caller's) or failed (endpoint released). */
  readonly result: Promise<DialResult>;
  /** Gives up ringing: 487 Request Terminated, or the status given (408 for a ring limit). Idempotent; no effect once answered. */
  cancel(status?: number, reason?: string): void;
}

/** What a dial needs. */
export interface DialDeps {
  srf: Pick<SrfLike, 'createUAC'>;
  media: MediaServer;
}

/** Options of {@link startDial}. */
export interface DialOptions {
  /** Where to send the INVITE (every URI at once). */
  uris: string[];
  /** The From header: `<sip:user@domain>`, its user already validated. */
  from: string;
  headers?: Record<string, string>;
  /** Ring limit; past it the dial is cancelled (status 408). */
  ringMs?: number | undefined;
  onRinging?: () => void;
  log: Logger;
}

/** Starts a dial. */
export function startDial(deps: DialDeps, o: DialOptions): Dial {
  let cancelled: { status: number; reason: string } | undefined;
  let cancelFork: (() => void) | undefined;
  const cancel = (status = 487, reason = 'Request Terminated'): void => {
    cancelled ??= { status, reason };
    cancelFork?.();
  };
  const result = (async (): Promise<DialResult> => {
    const ep = await deps.media.createEndpoint();
    if (cancelled !== undefined) {
      await ep.destroy();
      return { ok: false, ...cancelled };
    }
    // Browsers (the agent console's softphone) are sent no offer: they offer WebRTC in their 200 OK.
    const fork = forkInvite(deps.srf, o.uris, { localSdp: ep.localSdp, offerless: isWebRtcContact, headers: { ...o.headers, From: o.from }, ...(o.onRinging ? { onRinging: o.onRinging } : {}), logger: o.log });
    cancelFork = () => fork.cancel();
    const timer = o.ringMs === undefined ? undefined : setTimeout(() => cancel(408, 'Ring Limit Reached'), o.ringMs);
    try {
      const answered = await fork.answered;
      if ('offer' in answered) {
        // A browser: FreeSWITCH's offer is not needed; a new leg answers the browser's.
        await ep.destroy();
        const browser = await answerBrowserOffer(deps.media, answered.offer);
        return { ok: true, leg: new Leg(browser.dialog, { webrtc: true }), ep: browser.ep };
      }
      const leg = new Leg(answered.dialog);
      try {
        await ep.modify(answered.dialog.remote.sdp);
      } catch (err) {
        await leg.release();
        throw err;
      }
      return { ok: true, leg, ep };
    } catch (err) {
      await ep.destroy().catch((e: unknown) => o.log.warn({ err: e }, 'endpoint release failed after a failed dial'));
      if (!(err instanceof ForkFailed)) throw err;
      return { ok: false, ...(cancelled ?? { status: err.status, reason: err.reason }) };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  })();
  return { result, cancel };
}
