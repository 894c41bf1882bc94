/**
 * Calling an outside number into a conversation (call_out, xferOut; seed 002): through the
 * call center's outbound trunk, with a calling number the trunk allows, under two limits
 * that are Redis deadlines so they hold when this instance is gone — `max_dial_seconds` (the
 * ring limit: deadline `maxdial|<conversation>|<leg>`) and `max_answer_seconds` (the longest
 * the call may last once answered: `maxtalk|<conversation>|<leg>`, which ends the
 * conversation). While it rings, the leg is recorded `dialing` and keeps the conversation.
 */
import type { Config } from '../../lib/config/schema';
import { LegKind } from '../../lib/conversation/model';
import { FromNotAllowedError, InvalidRequestError, NoOutboundTrunkError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OUTSIDE_NUMBER, outboundTrunk } from '../../lib/sip/trunks';
import { Deadlines } from '../../lib/timers/deadlines';
import type { MediaServer } from '../../media/port';
import type { Conversation } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import type { SrfLike } from '../sip/types';
import { startOutsideDial, type TrunkUpCheck } from './routedDial';

/** Bounds of the limits a request may ask for (seconds). */
export const LIMITS = { maxDial: { min: 1, max: 300, default: 60 }, maxAnswer: { min: 1, max: 86_400 } } as const;

/** A validated request to call an outside number. */
export interface OutsideCall {
  to: string;
  /** The calling number presented (validated against the trunk). */
  from: string;
  maxDialMs: number;
  maxAnswerMs: number;
}

/**
 * Checks a call_out / xferOut request against the call center's outbound trunk: the trunk
 * exists (409 no_outbound_trunk), `to` is a number (422), `from` is one the trunk allows
 * (422 from_not_allowed; default its first caller id, else `fallbackFrom`), the limits are
 * in range (422).
 */
export function checkOutsideCall(
  config: Config,
  cc: string,
  body: { to: string; from?: string | undefined; max_dial_seconds?: number | undefined; max_answer_seconds: number },
  fallbackFrom: string,
): OutsideCall {
  if (!OUTSIDE_NUMBER.test(body.to)) throw new InvalidRequestError(`'${body.to}' is not a phone number (digits, an optional leading +, * and #)`, { to: body.to });
  // The route the number takes first: its trunk's caller ids are what `from` is checked against.
  const trunk = outboundTrunk(config.sip.trunks, cc, config.callcenters[cc]?.outbound, body.to);
  if (trunk === undefined) throw new NoOutboundTrunkError(cc);
  let from: string;
  if (body.from !== undefined) {
    if (!trunk.callerIds.includes(body.from)) throw new FromNotAllowedError(body.from, trunk.callerIds);
    from = body.from;
  } else {
    from = trunk.callerIds[0] ?? fallbackFrom;
  }
  const dial = body.max_dial_seconds ?? LIMITS.maxDial.default;
  const answer = body.max_answer_seconds;
  const range = (name: string, v: number, lim: { min: number; max: number }): void => {
    if (!Number.isInteger(v) || v < lim.min || v > lim.max) throw new InvalidRequestError(`${name} must be a whole number of seconds, ${lim.min}..${lim.max}`, { [name]: v });
  };
  range('max_dial_seconds', dial, LIMITS.maxDial);
  range('max_answer_seconds', answer, LIMITS.maxAnswer);
  return { to: body.to, from, maxDialMs: dial * 1000, maxAnswerMs: answer * 1000 };
}

/** What {@link dialOutside} needs. */
export interface OutsideDeps {
  config: Config;
  srf: Pick<SrfLike, 'createUAC'>;
  media: MediaServer;
  hub: ConversationHub;
  deadlines: Deadlines;
  /** Which trunk addresses answer their OPTIONS pings (failover skips the others). */
  trunkHealth?: TrunkUpCheck | undefined;
}

/** How a dial to an outside number ended. */
export type OutsideResult = { answered: true; leg: string } | { answered: false; cause: string };

/**
 * Dials `call.to` into `conv` in mode 1, as the dialing leg `o.legId` when one was recorded
 * already (a transfer records it before the agent leaves). Resolves once it is answered (the
 * leg joined and the talk limit armed) or failed (busy, no answer, ring limit, the
 * conversation ended): then `o.beforeFailure` runs (the error prompt of a transfer) and the
 * dialing leg leaves, so the ending rule applies.
 */
export async function dialOutside(
  d: OutsideDeps,
  conv: Conversation,
  call: OutsideCall,
  log: Logger,
  o: { beforeFailure?: () => Promise<void>; legId?: string } = {},
): Promise<OutsideResult> {
  const { cc } = conv;
  const { beforeFailure } = o;
  if (outboundTrunk(d.config.sip.trunks, cc, d.config.callcenters[cc]?.outbound, call.to) === undefined) throw new NoOutboundTrunkError(cc);
  const legId = o.legId ?? (await conv.dialing(LegKind.External));
  const ringLimit = Deadlines.member('maxdial', conv.id, legId);
  await d.deadlines.arm(cc, ringLimit, call.maxDialMs);
  const dial = startOutsideDial(d, cc, { to: call.to, from: call.from }, log);
  // The ring limit (a deadline, fired on any instance) reaches the dial here through the hub.
  const untrack = d.hub.trackDial(cc, conv.id, legId, () => dial.cancel(408, 'Ring Limit Reached'));
  void conv.ended.then(() => dial.cancel());
  let r;
  try {
    r = await dial.result;
  } finally {
    untrack();
    await d.deadlines.disarm(cc, ringLimit).catch((err: unknown) => log.warn({ err }, 'disarming the ring limit failed'));
  }
  if (!r.ok || conv.isEnded) {
    if (r.ok) {
      await r.leg.release();
      await r.ep.destroy();
    }
    const cause = r.ok ? 'conversation ended' : `${r.status} ${r.reason}`;
    log.info({ to: call.to, cause }, 'outside number not reached');
    if (beforeFailure !== undefined && !conv.isEnded) await beforeFailure().catch((err: unknown) => log.warn({ err }, 'failure prompt failed'));
    await conv.dialFailed(legId, cause);
    return { answered: false, cause };
  }
  let leg;
  try {
    leg = await conv.add({ kind: LegKind.External, ep: r.ep, sip: r.leg, mode: 1, id: legId });
  } catch (err) {
    // The conversation ended between the answer and the join: release the outside party.
    await r.leg.release().catch((e: unknown) => log.warn({ err: e }, 'BYE to the outside party failed'));
    await r.ep.destroy().catch((e: unknown) => log.warn({ err: e }, 'endpoint release failed'));
    throw err;
  }
  const talkLimit = Deadlines.member('maxtalk', conv.id, legId);
  await d.deadlines.arm(cc, talkLimit, call.maxAnswerMs);
  void leg.hasLeft.then(() => d.deadlines.disarm(cc, talkLimit)).catch((err: unknown) => log.warn({ err }, 'disarming the talk limit failed'));
  log.info({ to: call.to, leg: legId }, 'outside number answered');
  return { answered: true, leg: legId };
}
