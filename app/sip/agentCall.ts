/**
 * Calls to an agent's extension (from another agent, or from a trunk), bridged as a B2BUA
 * through the media port: the caller's leg and the callee's leg each terminate on the media
 * server and meet in a conference (the conversation), so that later hold, transfer and
 * supervisor modes work on them like on any other call (DESIGN.md section 5).
 *
 * Both agents go to Other Call for the call with operation 41 (internal call) and return to
 * their remembered states when it ends. The caller is marked when it starts dialing, so the
 * ACD does not offer it a queue call meanwhile; the callee when it answers. A direct call
 * from a trunk puts only the callee on Other Call (operation 4, talking).
 */
import { randomUUID } from 'node:crypto';
import type { AgentEngine } from '../../lib/agent/engine';
import { AgentState } from '../../lib/agent/stateMachine';
import type { CallGuard } from '../../lib/calls/guard';
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import type { Registrar } from '../../lib/sip/registrar';
import { LegKind } from '../../lib/conversation/model';
import type { Endpoint, MediaServer } from '../../media/port';
import type { Conversation } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import { endAgentCall } from '../conversation/line';
import { ForkFailed, forkInvite } from './fork';
import { answerBrowserOffer, isWebRtcContact } from './webrtc';
import type { InviteOutcome } from './invite';
import { cleanUpStep, Leg } from './leg';
import type { SipRequest, SipResponse, SrfLike } from './types';

/** Dependencies of {@link agentCallHandler}. */
export interface AgentCallDeps {
  config: Config;
  engine: AgentEngine;
  registrar: Registrar;
  media: MediaServer;
  guard: CallGuard;
  hub: ConversationHub;
  srf: Pick<SrfLike, 'createUAS' | 'createUAC'>;
}

/** One call attempt to an agent's extension. */
export interface AgentCallRequest {
  cc: string;
  /** The calling agent; undefined for a call from a trunk (an outside caller). */
  caller: string | undefined;
  /** What the callee's phone shows: the caller's extension or the outside number. */
  callerId: string;
  callee: string;
  isCanceled: () => boolean;
  log: Logger;
}

const BUSY_STATES: ReadonlySet<string> = new Set([AgentState.QueueCall, AgentState.OtherCall]);

/** Builds the handler. */
export function agentCallHandler(deps: AgentCallDeps) {
  const { engine, media, srf, guard, hub } = deps;

  return async (req: SipRequest, res: SipResponse, call: AgentCallRequest): Promise<InviteOutcome> => {
    const { cc, caller, callee, log } = call;
    if (callee === caller) {
      res.send(482, 'Loop Detected');
      return 'refused';
    }
    const contacts = (await deps.registrar.bindings(cc, callee)).map((b) => b.contact);
    if (contacts.length === 0) {
      res.send(480, 'Agent Not Registered');
      return 'refused';
    }
    if ((await engine.states(cc, callee)).some((v) => BUSY_STATES.has(v.state))) {
      res.send(486, 'Busy Here');
      return 'refused';
    }
    if (!media.available) {
      res.send(503, 'Media Server Unavailable', { headers: { 'Retry-After': '10' } });
      return 'refused';
    }
    if (call.isCanceled()) return 'canceled';

    const callId = req.callId;
    const conversation = randomUUID();
    const clog = log.child({ conversation, callee });
    const started: string[] = [];
    /** Endpoints not (yet) handed to the conversation, which releases its own. */
    const endpoints: Endpoint[] = [];
    let conv: Conversation | undefined;
    let answered: Leg | undefined;
    let uas: Leg | undefined;
    try {
      // Guard first, state second: a crash between the two leaves nothing to clean.
      const op = caller === undefined ? OpType.Talking : OpType.InternalCall;
      await guard.track(cc, callId, caller === undefined ? [callee] : [caller, callee]);
      if (caller !== undefined) {
        await engine.callStarted(cc, caller, { callId, op });
        started.push(caller);
      }

      const epA = await media.createEndpoint({ remoteSdp: req.body });
      endpoints.push(epA);
      let epB = await media.createEndpoint();
      endpoints.push(epB);

      const domain = deps.config.sip.realm ?? 'ccswitch';
      const fork = forkInvite(srf, contacts, {
        localSdp: epB.localSdp,
        headers: { From: `<sip:${call.callerId}@${domain}>`, 'X-CCS-Conversation': conversation },
        onRinging: () => {
          if (!call.isCanceled()) res.send(180, 'Ringing');
        },
        // Browsers (the agent console's softphone) are sent no offer: they offer WebRTC in their 200 OK.
        offerless: isWebRtcContact,
        logger: clog,
      });
      req.on('cancel', () => fork.cancel());
      if (call.isCanceled()) fork.cancel();
      /** The callee's answer to FreeSWITCH's offer (none from a browser: its own leg answered it). */
      let calleeAnswer: string | undefined;
      try {
        const won = await fork.answered;
        if ('offer' in won) {
          await epB.destroy();
          const browser = await answerBrowserOffer(media, won.offer);
          epB = browser.ep;
          endpoints.push(epB);
          answered = new Leg(browser.dialog, { webrtc: true });
        } else {
          answered = new Leg(won.dialog);
          calleeAnswer = won.dialog.remote.sdp;
        }
      } catch (err) {
        if (!(err instanceof ForkFailed)) throw err;
        if (call.isCanceled()) return 'canceled';
        clog.info({ status: err.status }, 'agent call not answered');
        res.send(err.status, err.reason);
        return 'refused';
      }
      await engine.callStarted(cc, callee, { callId, op });
      started.push(callee);
      if (calleeAnswer !== undefined) await epB.modify(calleeAnswer);
      if (call.isCanceled()) return 'canceled';
      if (answered.gone) {
        res.send(480, 'Callee Hung Up');
        return 'refused';
      }
      try {
        uas = new Leg(await srf.createUAS(req, res, { localSdp: epA.localSdp }));
      } catch (err) {
        // The caller cancelled while the callee answered: drachtio answered the CANCEL.
        if (call.isCanceled()) return 'canceled';
        throw err;
      }
      // The conversation: both legs in mode 1; it ends (and releases both) when either leaves.
      conv = await hub.open({ cc, id: conversation });
      endpoints.length = 0;
      // Agents' extension calls are lines: call-out and consultation may take them elsewhere.
      // Once added, a leg is the conversation's to release (BYE only from a line's last
      // conversation); until then it is ours (the caller may hang up before the callee joins).
      const a = await conv.add({ kind: caller === undefined ? LegKind.Caller : LegKind.Agent, agent: caller, ep: epA, sip: uas, line: caller === undefined ? undefined : hub.line(cc, caller, uas), mode: 1 });
      uas = undefined;
      const b = await conv.add({ kind: LegKind.Agent, agent: callee, ep: epB, sip: answered, line: hub.line(cc, callee, answered), mode: 1 });
      answered = undefined;
      // An agent whose leg leaves (a transfer out) is done with the call then, not at its end.
      const doneWhenLeft = (leg: typeof a, agent: string): void => {
        leg.line?.callFor(conversation, callId);
        void leg.hasLeft.then(() => cleanUpStep(clog, `state restore of ${agent}`, () => endAgentCall(engine, cc, agent, callId, leg.line, conversation)));
      };
      if (caller !== undefined) doneWhenLeft(a, caller);
      doneWhenLeft(b, callee);
      clog.info({ caller, callee }, 'agent call connected');
      await conv.ended;
      clog.info({ why: conv.endReason }, 'agent call ended');
      return 'answered';
    } finally {
      // Release everything whatever happened; each step on its own so one failure does not
      // leave the rest (and the agents' states) behind.
      const quietly = (what: string, step: () => Promise<unknown>): Promise<void> => cleanUpStep(clog, what, step);
      if (conv) await quietly('conversation end', () => conv!.end('call over'));
      // BYEs out at once, their answers awaited after the agents' call end (a gone far end
      // takes 32 s to time out).
      const byes: Promise<void>[] = [];
      if (uas) byes.push(quietly('BYE to the caller', () => uas!.release()));
      if (answered) byes.push(quietly('BYE to the callee', () => answered!.release()));
      for (const ep of endpoints) await quietly('endpoint release', () => ep.destroy());
      for (const agent of started) await quietly(`state restore of ${agent}`, () => engine.callEnded(cc, agent, { callId }));
      await quietly('call guard release', () => guard.untrack(cc, callId));
      await Promise.all(byes);
    }
  };
}
