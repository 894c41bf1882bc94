/**
 * A trunk caller sent to an outside number (an inbound number's `number` target, or a closed
 * schedule's): the number is called over the outbound routes (failover included) and the
 * caller is answered only when it answers, so the caller hears the far end's ringing and gets
 * its final status (486, 404…) when it fails — a B2BUA forward, not an answered call that
 * plays an error. Once answered both are legs of one conversation, which ends when either
 * hangs up.
 */
import { randomUUID } from 'node:crypto';
import { LegKind } from '../../lib/conversation/model';
import type { Endpoint } from '../../media/port';
import type { Conversation } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import type { ForwardRequest, InviteOutcome } from '../sip/invite';
import { cleanUpStep, Leg } from '../sip/leg';
import type { SipRequest, SipResponse, SrfLike } from '../sip/types';
import { startOutsideDial, type OutsideDialDeps } from './routedDial';

/** How long the number may ring. */
const RING_MS = 60_000;

/** What a forward needs. */
export interface ForwardDeps extends OutsideDialDeps {
  srf: Pick<SrfLike, 'createUAS' | 'createUAC'>;
  hub: ConversationHub;
}

/** The forward handler for the INVITE pipeline. */
export function forwardCallHandler(deps: ForwardDeps) {
  return async (req: SipRequest, res: SipResponse, f: ForwardRequest): Promise<InviteOutcome> => {
    const conversation = randomUUID();
    const log = f.log.child({ conversation, forwardTo: f.number });
    const endpoints: Endpoint[] = [];
    let conv: Conversation | undefined;
    let far: Leg | undefined;
    let uas: Leg | undefined;
    try {
      const epA = await deps.media.createEndpoint({ remoteSdp: req.body });
      endpoints.push(epA);
      const dial = startOutsideDial(deps, f.cc, { to: f.number, from: f.caller, ringMs: RING_MS, headers: { 'X-CCS-Conversation': conversation } }, log);
      req.on('cancel', () => dial.cancel());
      if (f.isCanceled()) dial.cancel();
      const r = await dial.result;
      if (!r.ok) {
        if (f.isCanceled()) return 'canceled';
        log.info({ status: r.status, reason: r.reason }, 'forwarded number not reached');
        res.send(r.status >= 400 && r.status < 700 ? r.status : 480, r.reason);
        return 'refused';
      }
      far = r.leg;
      endpoints.push(r.ep);
      if (f.isCanceled()) return 'canceled';
      try {
        uas = new Leg(await deps.srf.createUAS(req, res, { localSdp: epA.localSdp }));
      } catch (err) {
        if (f.isCanceled()) return 'canceled';
        throw err;
      }
      conv = await deps.hub.open({ cc: f.cc, id: conversation });
      endpoints.length = 0;
      await conv.add({ kind: LegKind.Caller, ep: epA, sip: uas, mode: 1 });
      uas = undefined;
      await conv.add({ kind: LegKind.External, ep: r.ep, sip: far, mode: 1 });
      far = undefined;
      log.info('forwarded call connected');
      await conv.ended;
      return 'answered';
    } finally {
      const quietly = (what: string, step: () => Promise<unknown>): Promise<void> => cleanUpStep(log, what, step);
      if (conv) await quietly('conversation end', () => conv!.end('forward over'));
      if (uas) await quietly('BYE to the caller', () => uas!.release());
      if (far) await quietly('BYE to the number', () => far!.release());
      for (const ep of endpoints) await quietly('endpoint release', () => ep.destroy());
    }
  };
}
