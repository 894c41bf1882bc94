/**
 * Parallel forking of one offer to several contacts (an agent's registered devices now;
 * ring-all offers later): the first 2xx wins, the other branches are cancelled, and a 2xx
 * that arrives after we cancelled its branch is ACKed (drachtio-srf does that) and then
 * released with BYE, so no device is left with a half-open call.
 */
import type { Logger } from '../../lib/logger';
import type { SipDialog, SipErrorLike, SipOfferIn2xx, SipUacRequest, SrfLike } from './types';

/** The winning branch, when it was sent our offer. */
export interface ForkAnswer {
  dialog: SipDialog;
  /** Contact URI that answered. */
  uri: string;
}

/** The winning branch, when it was sent no offer: its 200 OK carries its offer, which the winner must answer in the ACK. */
export interface ForkOfferAnswer {
  offer: SipOfferIn2xx;
  uri: string;
}

/** A fork in progress. */
export interface Fork<A = ForkAnswer> {
  /** Resolves with the first answer; rejects with {@link ForkFailed} when every branch failed or the fork was cancelled. */
  readonly answered: Promise<A>;
  /** Cancels every branch still ringing (the caller gave up, a timeout). Idempotent. */
  cancel(): void;
}

/** Every branch failed (or the fork was cancelled: status 487). */
export class ForkFailed extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`fork failed: ${status} ${reason}`);
    this.name = 'ForkFailed';
  }
}

function isSipError(err: unknown): err is SipErrorLike {
  return typeof err === 'object' && err !== null && typeof (err as { status?: unknown }).status === 'number';
}

/**
 * RFC 3261 16.7 step 6, simplified: a 6xx beats everything (the callee declined on every
 * device), then the lowest class; within a class, 486 Busy is the most useful to a caller.
 */
function better(a: SipErrorLike, b: SipErrorLike): SipErrorLike {
  const rank = (s: number): number => (s >= 600 ? 0 : s === 486 ? 1 : Math.floor(s / 100) * 10 + (s === 408 || s === 480 ? 1 : 2));
  return rank(b.status) < rank(a.status) ? b : a;
}

/**
 * How long a cancelled fork waits for its branches' final responses (487 normally) before it
 * reports 487 anyway. RFC 3261 9.1 lets a UAC give up 64*T1 after its CANCEL; a queue offer
 * must not hold its caller's task that long for a silent phone.
 */
export const CANCEL_SETTLE_MS = 4000;

/** Options of {@link forkInvite}. */
export interface ForkOptions {
  localSdp: string;
  headers?: Record<string, string>;
  onRinging?: () => void;
  logger: Logger;
}

/**
 * Sends `localSdp` to every URI at once. `onRinging` is called once, on the first 18x.
 */
export function forkInvite(srf: Pick<SrfLike, 'createUAC'>, uris: string[], opts: ForkOptions): Fork;
/**
 * With `offerless`: the URIs it picks (browsers, whose WebRTC media FreeSWITCH must answer
 * rather than offer) are sent the INVITE without SDP; their answer is a {@link ForkOfferAnswer}.
 */
export function forkInvite(srf: Pick<SrfLike, 'createUAC'>, uris: string[], opts: ForkOptions & { offerless: (uri: string) => boolean }): Fork<ForkAnswer | ForkOfferAnswer>;
export function forkInvite(
  srf: Pick<SrfLike, 'createUAC'>,
  uris: string[],
  opts: ForkOptions & { offerless?: (uri: string) => boolean },
): Fork<ForkAnswer | ForkOfferAnswer> {
  const pending = new Map<string, SipUacRequest>();
  let cancelled = false;
  let won = false;
  let rang = false;
  let worst: SipErrorLike | undefined;
  const cancelOthers = (except?: string): void => {
    for (const [uri, req] of pending) {
      if (uri === except) continue;
      try {
        req.cancel();
      } catch (err) {
        // The branch already has a final response: nothing to cancel.
        opts.logger.debug({ err, uri }, 'CANCEL not sent');
      }
    }
  };
  let giveUp: (() => void) | undefined;
  /** Branches without a final response yet. */
  let leftCount = uris.length;
  const answered = new Promise<ForkAnswer | ForkOfferAnswer>((resolve, reject) => {
    giveUp = () => {
      if (!won) reject(new ForkFailed(487, 'Request Terminated'));
    };
    if (uris.length === 0) {
      reject(new ForkFailed(480, 'Temporarily Unavailable'));
      return;
    }
    for (const uri of uris) {
      const progress = {
        cbRequest: (err: Error | null, req: SipUacRequest) => {
          if (err) return;
          pending.set(uri, req);
          // cancel() may have been called before this branch's request existed.
          if (cancelled || won) cancelOthers();
        },
        cbProvisional: (res: { status: number }) => {
          if (res.status >= 180 && !rang) {
            rang = true;
            opts.onRinging?.();
          }
        },
      };
      const headers = opts.headers ? { headers: opts.headers } : {};
      const branch: Promise<ForkAnswer | ForkOfferAnswer> =
        opts.offerless?.(uri) === true
          ? srf.createUAC(uri, { noAck: true, ...headers }, progress).then((offer) => ({ offer, uri }))
          : srf.createUAC(uri, { localSdp: opts.localSdp, ...headers }, progress).then((dialog) => ({ dialog, uri }));
      branch.then(
        (answer) => {
          pending.delete(uri);
          leftCount -= 1;
          if (won || cancelled) {
            // Glare with our CANCEL, or a second device answering: release it at once.
            opts.logger.info({ uri }, 'late answer released with BYE');
            ('dialog' in answer ? answer.dialog.destroy() : answer.offer.destroy()).catch((err: unknown) => opts.logger.warn({ err, uri }, 'BYE of a late answer failed'));
            if (cancelled && !won && leftCount === 0) reject(new ForkFailed(487, 'Request Terminated'));
            return;
          }
          won = true;
          cancelOthers(uri);
          resolve(answer);
        },
        (err: unknown) => {
          pending.delete(uri);
          leftCount -= 1;
          if (isSipError(err)) worst = worst === undefined ? err : better(worst, err);
          else opts.logger.warn({ err, uri }, 'INVITE branch failed');
          if (leftCount === 0 && !won) reject(cancelled ? new ForkFailed(487, 'Request Terminated') : new ForkFailed(worst?.status ?? 480, worst?.reason ?? 'Temporarily Unavailable'));
        },
      );
    }
  });
  return {
    answered,
    cancel: () => {
      if (cancelled || won) return;
      cancelled = true;
      cancelOthers();
      // A far end that went silent never sends its 487 (nor a final response at all: no CANCEL
      // can go before a provisional, and sofia keeps a proceeding INVITE open). The fork is
      // over for us after CANCEL_SETTLE_MS anyway; a 2xx after that is released as above.
      setTimeout(() => {
        if (leftCount > 0) opts.logger.debug({ branches: leftCount }, 'no final response to our CANCEL; the offer moves on');
        giveUp?.();
      }, CANCEL_SETTLE_MS).unref();
    },
  };
}
