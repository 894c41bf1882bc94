/**
 * call_agent (seed 002 "呼叫其它坐席", operation 41): a new conversation between the agent and a
 * colleague chosen by the `enqueue` document like a queue task — a task is queued on the new
 * conversation, and only Ready, unreserved, registered agents matching its conditions are
 * offered it, each under the same leased reservation with a fencing token as a queue call.
 * The calling agent joins first (its line, or its phone rung: click-to-dial) and hears the
 * conversation's music while the colleague rings. Both agents are Other Call (op 41).
 *
 * The command runs on the instance holding the calling agent's line, returns once the
 * conversation and its task exist; the rest comes as `queue.caller` and `conversation` events.
 */
import { randomUUID } from 'node:crypto';
import type { TaskConditions } from '../../lib/acd/strategies';
import { AgentUnreachableError, InvalidRequestError, UnavailableError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import type { Conversation } from '../conversation/conversation';
import { endAgentCall, type AgentLine } from '../conversation/line';
import { cleanUpStep } from '../sip/leg';
import type { OfferResult } from '../sip/queueCall';
import type { Reservation } from '../../lib/acd/taskStore';
import type { Leg } from '../sip/leg';
import { joinCallingAgent, type CallOutDeps } from './callOut';
import { serveTask, type ServeDeps } from './serveTask';

/** Rings reserved agents for a task (the queue call handler's offer). */
export type Offer = (cc: string, taskId: string, queue: string, callId: string, reservations: Reservation[], ringMs: number, caller: Leg, log: Logger, o: { internal?: { from: string } }) => Promise<OfferResult>;

/** What the call_agent script needs. */
export interface CallAgentDeps extends Omit<CallOutDeps, 'deadlines'>, ServeDeps {}

/** The `callAgent` command's arguments (validated by the REST route). */
interface CallAgentArgs {
  agent: string;
  conversation: string;
  queue: string;
  conditions?: TaskConditions | undefined;
  priority: number;
  maxWaitSeconds?: number | undefined;
}

function parseArgs(args: Record<string, unknown>): CallAgentArgs {
  const { agent, conversation, queue, conditions, priority, maxWaitSeconds } = args;
  if (typeof agent !== 'string' || typeof conversation !== 'string' || typeof queue !== 'string' || typeof priority !== 'number' || (maxWaitSeconds !== undefined && typeof maxWaitSeconds !== 'number')) {
    throw new InvalidRequestError('callAgent: malformed command arguments');
  }
  return { agent, conversation, queue, conditions: conditions as TaskConditions | undefined, priority, maxWaitSeconds };
}

/** Registers the `callAgent` command on the hub. */
export function registerCallAgent(d: CallAgentDeps): void {
  const { hub, engine, registrar, guard, media } = d;

  hub.handle('callAgent', async (cc, raw) => {
    const a = parseArgs(raw);
    const me = engine.agent(cc, a.agent);
    if (!media.available) throw new UnavailableError('the media server');
    const line = hub.lineOf(cc, a.agent);
    const contacts = line !== undefined ? [] : (await registrar.bindings(cc, a.agent)).map((b) => b.contact);
    if (line === undefined && contacts.length === 0) throw new AgentUnreachableError(a.agent);
    const taskId = randomUUID();
    const ccConfig = engine.callCenter(cc);
    const conv = await hub.open({ cc, id: a.conversation, moh: ccConfig.queues[a.queue]?.moh, task: taskId, queue: a.queue, taskQueued: true });
    const log = d.logger.child({ conversation: conv.id, agent: a.agent, task: taskId, op: 'call_agent' });
    void run(conv, a, me.extension, taskId, line, contacts, log).catch((err: unknown) => log.error({ err }, 'call to an agent failed'));
    return { conversation: conv.id, agent: a.agent, task: taskId, queue: a.queue, state: line === undefined ? 'ringing_agent' : 'queued' };
  });

  async function run(conv: Conversation, a: CallAgentArgs, extension: string, taskId: string, line: AgentLine | undefined, contacts: string[], log: Logger): Promise<void> {
    const { cc } = conv;
    const callId = `callagent-${conv.id}`;
    const ccConfig = engine.callCenter(cc);
    let callerLine = line;
    try {
      // Guard first (with the task: if this instance dies the task is closed), state second.
      await guard.track(cc, callId, [a.agent], { id: taskId, queue: a.queue });
      await engine.callStarted(cc, a.agent, { callId, op: OpType.InternalCall });
      const joined = await joinCallingAgent(d, conv, a.agent, line, contacts, { ringMs: ccConfig.queues[a.queue]!.ringSeconds * 1000, shows: a.queue }, log);
      if (joined === undefined) return;
      callerLine = joined.line;
      callerLine.callFor(conv.id, callId);
      const mine = joined.leg;
      void mine.hasLeft.then(() => cleanUpStep(log, `state restore of ${a.agent}`, () => endAgentCall(engine, cc, a.agent, callId, callerLine, conv.id)));
      const served = await serveTask(d, conv, { id: taskId, queue: a.queue, priority: a.priority, conditions: a.conditions, maxWaitSeconds: a.maxWaitSeconds, caller: a.agent, callId }, mine, log, { internal: { from: extension } });
      if (served.kind === 'timeout') await conv.playTo(mine.id, 'error');
      if (served.kind === 'connected') await conv.ended;
    } finally {
      if (!conv.isEnded) await cleanUpStep(log, 'conversation end', () => conv.end('call to an agent over'));
      await cleanUpStep(log, `state restore of ${a.agent}`, () => endAgentCall(engine, cc, a.agent, callId, callerLine, conv.id));
      await cleanUpStep(log, 'call guard release', () => guard.untrack(cc, callId));
    }
  }
}
