/**
 * Consultation (seed 004 operation 40 "internal help", reasons 3 speak-transfer, 5 three-party;
 * operation 10 three-party conversation): while the caller waits on hold in the first
 * conversation, the agent calls a colleague (an enqueue document, as call_agent) or a number
 * (as call_out) in a new one — its extension call moves there, so the caller hears music. Then:
 *
 * - `consult_complete` `transfer`: the consulted party is handed over into the caller's
 *   conversation (re-INVITEd to an endpoint there) and the agent leaves it: an attended transfer;
 * - `consult_complete` `conference`: the same hand-over, and the agent resumes: three parties;
 * - `consult_cancel`: the consultation ends and the agent is back with the caller.
 *
 * All on the instance holding the agent's line (the caller's conversation's owner).
 */
import { randomUUID } from 'node:crypto';
import type { AgentEngine } from '../../lib/agent/engine';
import type { CallGuard } from '../../lib/calls/guard';
import { LegKind } from '../../lib/conversation/model';
import { ConflictError, InvalidRequestError, MediaFailedError, NotInConversationError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import type { Endpoint, MediaServer } from '../../media/port';
import type { Conversation } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import { endAgentCall } from '../conversation/line';
import { cleanUpStep } from '../sip/leg';

/** What consultation needs. */
export interface ConsultDeps {
  hub: ConversationHub;
  /** The colleague's call (guarded under its call id by the offer) stays guarded after the hand-over, until it leaves. */
  guard: CallGuard;
  media: MediaServer;
  engine: AgentEngine;
  logger: Logger;
}

/** Operation-log reasons of op 40 (seed 004). */
const HELP = { twoParty: 1, speakTransfer: 3, threeParty: 5 } as const;

function str(args: Record<string, unknown>, name: string): string {
  const v = args[name];
  if (typeof v !== 'string' || v === '') throw new InvalidRequestError(`command argument ${name} is missing`);
  return v;
}

/** Registers `consult`, `consultComplete` and `consultCancel` on the hub. */
export function registerConsult(d: ConsultDeps): void {
  const { hub } = d;
  /** Consultations in progress: `cc|conversation|agent` → the consultation's conversation. */
  const consults = new Map<string, string>();
  const key = (cc: string, conv: string, agent: string): string => `${cc}|${conv}|${agent}`;

  /** The agent's leg in `conv`, which must be a line (its extension call). */
  const agentIn = (conv: Conversation, agent: string) => {
    const leg = conv.legOf(agent);
    if (leg === undefined) throw new NotInConversationError(agent, conv.id);
    return leg;
  };

  hub.handle('consult', async (cc, args) => {
    const agent = str(args, 'agent');
    const conv = hub.get(cc, str(args, 'conversation'));
    agentIn(conv, agent);
    const k = key(cc, conv.id, agent);
    if (consults.has(k)) throw new ConflictError(`agent ${agent} is consulting already from conversation ${conv.id}`, { consultation: consults.get(k) });
    const target = args.target as Record<string, unknown> | undefined;
    if (typeof target !== 'object' || target === null) throw new InvalidRequestError('consult: target is missing');
    const id = randomUUID();
    const op = args.kind === 'agent' ? 'callAgent' : 'callOut';
    const started = (await hub.execute(cc, { op, args: { ...target, agent, conversation: id } })) as Record<string, unknown>;
    consults.set(k, id);
    const b = hub.get(cc, id);
    void b.ended.then(() => {
      if (consults.get(k) === id) consults.delete(k);
    });
    await hub.logOp(cc, conv.id, agent, OpType.InternalHelp, conv.queue, HELP.twoParty);
    d.logger.info({ cc, conversation: conv.id, consultation: id, agent }, 'consultation started: the caller waits on hold');
    return { ...started, conversation: id, consulting: conv.id };
  });

  hub.handle('consultCancel', async (cc, args) => {
    const agent = str(args, 'agent');
    const conv = hub.get(cc, str(args, 'conversation'));
    agentIn(conv, agent);
    const id = consults.get(key(cc, conv.id, agent));
    if (id === undefined) throw new ConflictError(`agent ${agent} is not consulting from conversation ${conv.id}`);
    consults.delete(key(cc, conv.id, agent));
    const b = (() => {
      try {
        return hub.get(cc, id);
      } catch {
        return undefined; // ended by itself meanwhile
      }
    })();
    await b?.end('consultation cancelled');
    const r = await conv.setAgentMode(agent, 1);
    return { conversation: conv.id, consultation: id, ...r };
  });

  hub.handle('consultComplete', async (cc, args) => {
    const agent = str(args, 'agent');
    const how = args.how;
    if (how !== 'transfer' && how !== 'conference') throw new InvalidRequestError('how must be transfer or conference');
    const conv = hub.get(cc, str(args, 'conversation'));
    agentIn(conv, agent);
    const id = consults.get(key(cc, conv.id, agent));
    if (id === undefined) throw new ConflictError(`agent ${agent} is not consulting from conversation ${conv.id}`);
    const b = hub.get(cc, id);
    const party = b.liveLegs.find((l) => !(l.kind === LegKind.Agent && l.agent === agent) && l.kind !== LegKind.Supervisor);
    if (party === undefined) throw new ConflictError('the consulted party has not answered yet', { consultation: id });
    const log = d.logger.child({ conversation: conv.id, consultation: id, agent, how });
    consults.delete(key(cc, conv.id, agent));
    // A colleague's call goes on in the caller's conversation: say so before it leaves the
    // consultation, so its leaving there ends nothing (same call id, still Other Call).
    const calleeCallId = `callagent-${id}-callee`;
    party.line?.enter(conv.id);
    party.line?.callFor(conv.id, calleeCallId);
    const moved = await b.handOver(party.id);
    // Into the caller's conversation: a line re-anchors by itself; any other leg is re-INVITEd here.
    let ep: Endpoint | undefined;
    if (moved.line === undefined) {
      const fresh = await d.media.createEndpoint();
      ep = fresh;
      try {
        await fresh.modify(await moved.sip.dialog.modify(fresh.localSdp));
      } catch (err) {
        await cleanUpStep(log, 'endpoint release', () => fresh.destroy());
        await cleanUpStep(log, 'BYE to the consulted party', () => moved.sip.release());
        throw new MediaFailedError('the re-INVITE moving the consulted party', err);
      }
    }
    const leg = await conv.add({ kind: moved.kind, agent: moved.agent, sip: moved.sip, line: moved.line, ep, mode: 1 });
    if (moved.agent !== undefined && moved.line !== undefined) {
      // The colleague's call now goes on here: it stays Other Call until it leaves this conversation.
      const colleague = moved.agent;
      const line = moved.line;
      void leg.hasLeft.then(async () => {
        await cleanUpStep(log, `state restore of ${colleague}`, () => endAgentCall(d.engine, cc, colleague, calleeCallId, line, conv.id));
        await cleanUpStep(log, 'guard release', () => d.guard.untrack(cc, calleeCallId));
      });
    }
    if (how === 'transfer') {
      await hub.logOp(cc, conv.id, agent, OpType.InternalHelp, conv.queue, HELP.speakTransfer);
      await conv.removeAgent(agent);
      log.info('consultation completed: transferred, the agent left');
    } else {
      await hub.logOp(cc, conv.id, agent, OpType.InternalHelp, conv.queue, HELP.threeParty);
      await hub.logOp(cc, conv.id, agent, OpType.ThreeParty, conv.queue);
      await conv.setAgentMode(agent, 1);
      log.info('consultation completed: three-party conversation');
    }
    return { conversation: conv.id, consultation: id, how, leg: leg.id };
  });
}
