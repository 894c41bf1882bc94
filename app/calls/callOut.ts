/**
 * call_out (seed 002 "呼叫外线"): a new conversation between the agent and an outside number.
 * When the agent's extension is in no conversation, its registered devices are rung first
 * and the number is dialed once the agent answers (click-to-dial); when it is in some, its
 * extension call (line) is taken into the new conversation: on hold (mode 4) in all the
 * others, active in the new one. The agent is Other Call for the call.
 *
 * The command runs on the instance holding the agent's line, returns once the conversation
 * exists, and the rest (ringing, the answer, a failure) is told by `conversation` events.
 */
import type { AgentEngine } from '../../lib/agent/engine';
import type { CallGuard } from '../../lib/calls/guard';
import { LegKind } from '../../lib/conversation/model';
import { AgentUnreachableError, InvalidRequestError, UnavailableError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Registrar } from '../../lib/sip/registrar';
import type { ConversationLeg, Conversation } from '../conversation/conversation';
import { endAgentCall, type AgentLine } from '../conversation/line';
import { cleanUpStep } from '../sip/leg';
import { startDial } from './dial';
import { dialOutside, type OutsideCall, type OutsideDeps } from './outside';

/** What the call_out script needs. */
export interface CallOutDeps extends OutsideDeps {
  engine: AgentEngine;
  registrar: Registrar;
  guard: CallGuard;
  logger: Logger;
}

/** The `callOut` command's arguments (validated by the REST route). */
export interface CallOutArgs extends OutsideCall {
  agent: string;
  /** The new conversation's id, chosen by the route so a retried request names the same one. */
  conversation: string;
}

function parseArgs(args: Record<string, unknown>): CallOutArgs {
  const { agent, conversation, to, from, maxDialMs, maxAnswerMs } = args;
  if (typeof agent !== 'string' || typeof conversation !== 'string' || typeof to !== 'string' || typeof from !== 'string' || typeof maxDialMs !== 'number' || typeof maxAnswerMs !== 'number') {
    throw new InvalidRequestError('callOut: malformed command arguments');
  }
  return { agent, conversation, to, from, maxDialMs, maxAnswerMs };
}

/** Registers the `callOut` command on the hub. */
export function registerCallOut(d: CallOutDeps): void {
  const { hub, engine, registrar, guard, media } = d;

  hub.handle('callOut', async (cc, raw) => {
    const a = parseArgs(raw);
    engine.agent(cc, a.agent);
    if (!media.available) throw new UnavailableError('the media server');
    const line = hub.lineOf(cc, a.agent);
    const contacts = line !== undefined ? [] : (await registrar.bindings(cc, a.agent)).map((b) => b.contact);
    if (line === undefined && contacts.length === 0) throw new AgentUnreachableError(a.agent);
    const conv = await hub.open({ cc, id: a.conversation });
    const log = d.logger.child({ conversation: conv.id, agent: a.agent, op: 'call_out' });
    void run(conv, a, line, contacts, log).catch((err: unknown) => log.error({ err }, 'call-out failed'));
    return { conversation: conv.id, agent: a.agent, to: a.to, state: line === undefined ? 'ringing_agent' : 'dialing' };
  });

  async function run(conv: Conversation, a: CallOutArgs, line: AgentLine | undefined, contacts: string[], log: Logger): Promise<void> {
    const { cc } = conv;
    const callId = `callout-${conv.id}`;
    let busy = false;
    let agentLine = line;
    const callEnded = (): Promise<void> => cleanUpStep(log, `state restore of ${a.agent}`, () => endAgentCall(engine, cc, a.agent, callId, agentLine, conv.id));
    try {
      // Guard first, state second: a crash between the two leaves nothing to clean.
      await guard.track(cc, callId, [a.agent]);
      await engine.callStarted(cc, a.agent, { callId });
      busy = true;
      const joined = await joinCallingAgent(d, conv, a.agent, line, contacts, { ringMs: a.maxDialMs, shows: a.to }, log);
      if (joined === undefined) return;
      agentLine = joined.line;
      const agentLeg = joined.leg;
      agentLine.callFor(conv.id, callId);
      // The agent's call is over when its leg leaves (hang-up, a transfer), not only at the end.
      void agentLeg.hasLeft.then(callEnded);
      await dialOutside(d, conv, a, log, { beforeFailure: () => conv.playTo(agentLeg.id, 'error') });
      await conv.ended;
    } finally {
      if (!conv.isEnded) await cleanUpStep(log, 'conversation end', () => conv.end('call-out over'));
      if (busy) await callEnded();
      await cleanUpStep(log, 'call guard release', () => guard.untrack(cc, callId));
    }
  }
}

/**
 * Brings the agent who asked for a call into `conv` (seed 002, call_out and call_agent): its
 * extension call (line) when it is in a conversation here, active in this one and held in the
 * others; else its registered devices are rung first (click-to-dial; the phone shows `shows`)
 * and the answered call becomes its line. Undefined when the agent did not answer: the
 * conversation is then ended.
 */
export async function joinCallingAgent(
  d: Pick<CallOutDeps, 'hub' | 'srf' | 'media' | 'config'>,
  conv: Conversation,
  agent: string,
  line: AgentLine | undefined,
  contacts: string[],
  o: { ringMs: number; shows: string },
  log: Logger,
): Promise<{ leg: ConversationLeg; line: AgentLine } | undefined> {
  if (line !== undefined) return { leg: await conv.add({ kind: LegKind.Agent, agent, sip: line.sip, line, mode: 1 }), line };
  const domain = d.config.sip.realm ?? 'ccswitch';
  const dial = startDial(d, { uris: contacts, from: `<sip:${o.shows}@${domain}>`, headers: { 'X-CCS-Conversation': conv.id }, ringMs: o.ringMs, log });
  void conv.ended.then(() => dial.cancel());
  const r = await dial.result;
  if (!r.ok) {
    log.info({ status: r.status }, 'the agent did not answer its own call');
    await conv.end(`agent did not answer (${r.status})`);
    return undefined;
  }
  const fresh = d.hub.line(conv.cc, agent, r.leg);
  try {
    return { leg: await conv.add({ kind: LegKind.Agent, agent, ep: r.ep, sip: r.leg, line: fresh, mode: 1 }), line: fresh };
  } catch (err) {
    // Not in the conversation (it ended meanwhile): the phone's call is ours to release.
    await cleanUpStep(log, 'BYE to the agent', () => r.leg.release());
    await cleanUpStep(log, 'endpoint release', () => r.ep.destroy());
    throw err;
  }
}
