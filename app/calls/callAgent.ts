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
import type { Selector } from '../../lib/acd/selector';
import type { TaskConditions } from '../../lib/acd/strategies';
import type { TaskStore } from '../../lib/acd/taskStore';
import { LegKind } from '../../lib/conversation/model';
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

/** Rings reserved agents for a task (the queue call handler's offer). */
export type Offer = (cc: string, taskId: string, queue: string, callId: string, reservations: Reservation[], ringMs: number, caller: Leg, log: Logger, o: { internal: { from: string } }) => Promise<OfferResult>;

/** What the call_agent script needs. */
export interface CallAgentDeps extends Omit<CallOutDeps, 'deadlines'> {
  tasks: TaskStore;
  selector: Selector;
  offer: Offer;
}

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
  const { hub, engine, registrar, guard, media, tasks, selector, config } = d;

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
    const { queue } = a;
    const callId = `callagent-${conv.id}`;
    const calleeCallId = `${callId}-callee`;
    const ccConfig = engine.callCenter(cc);
    let callerLine = line;
    let enqueued = false;
    let callee: { agent: string; line: AgentLine } | undefined;
    try {
      // Guard first (with the task: if this instance dies the task is closed), state second.
      await guard.track(cc, callId, [a.agent], { id: taskId, queue });
      await engine.callStarted(cc, a.agent, { callId, op: OpType.InternalCall });
      const joined = await joinCallingAgent(d, conv, a.agent, line, contacts, { ringMs: ccConfig.queues[queue]!.ringSeconds * 1000, shows: queue }, log);
      if (joined === undefined) return;
      callerLine = joined.line;
      callerLine.callFor(conv.id, callId);
      const mine = joined.leg;
      void mine.hasLeft.then(() => cleanUpStep(log, `state restore of ${a.agent}`, () => endAgentCall(engine, cc, a.agent, callId, callerLine, conv.id)));
      await tasks.enqueue(cc, {
        id: taskId, queue, priority: a.priority, callId, caller: a.agent, owner: guard.incarnation,
        maxWaitMs: (a.maxWaitSeconds ?? ccConfig.queues[queue]!.maxWaitSeconds) * 1000, conditions: a.conditions,
      });
      enqueued = true;
      const keys = tasks.keys(cc);
      for (;;) {
        if (mine.left || conv.isEnded) return;
        const task = await tasks.get(cc, taskId);
        if (task === undefined || task.state === 'ended') return;
        if (task.maxWaitReached) {
          await tasks.end(cc, taskId, queue, 'timeout');
          enqueued = false;
          log.info('nobody answered within the max wait');
          await conv.playTo(mine.id, 'error');
          return;
        }
        const plan = await selector.plan(ccConfig, keys, queue, task.conditions);
        const got = plan.agents.length === 0 ? 'no_agent' : await tasks.reserve(cc, taskId, queue, plan.agents, 1, ccConfig.queues[queue]!.ringSeconds * 1000 + 5000);
        if (Array.isArray(got)) {
          for (const r of got) selector.offered(ccConfig, keys, queue, r.agent);
          const result = await d.offer(cc, taskId, queue, calleeCallId, got, ccConfig.queues[queue]!.ringSeconds * 1000, mine.sip, log, { internal: { from: extension } });
          if (result.kind === 'connected') {
            const calleeLine = hub.line(cc, result.agent, result.leg);
            callee = { agent: result.agent, line: calleeLine };
            await conv.setTask(taskId, queue, false);
            let leg;
            try {
              leg = await conv.add({ kind: LegKind.Agent, agent: result.agent, ep: result.ep, sip: result.leg, line: calleeLine, mode: 1 });
            } catch (err) {
              // The conversation ended between the answer and the join: the callee's call is ours to end.
              await cleanUpStep(log, 'BYE to the callee', () => result.leg.release());
              await cleanUpStep(log, 'endpoint release', () => result.ep.destroy());
              throw err;
            }
            calleeLine.callFor(conv.id, calleeCallId);
            const who = result.agent;
            void leg.hasLeft.then(() => cleanUpStep(log, `state restore of ${who}`, () => endAgentCall(engine, cc, who, calleeCallId, calleeLine, conv.id)));
            log.info({ callee: who }, 'agent call connected');
            await conv.ended;
            return;
          }
          await tasks.requeue(cc, taskId, queue);
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, config.timers.pollMs);
          void mine.hasLeft.then(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    } finally {
      if (!conv.isEnded) await cleanUpStep(log, 'conversation end', () => conv.end('call to an agent over'));
      if (enqueued) await cleanUpStep(log, 'task end', () => tasks.end(cc, taskId, queue, callee === undefined ? 'abandoned' : 'completed', callee?.agent));
      await cleanUpStep(log, `state restore of ${a.agent}`, () => endAgentCall(engine, cc, a.agent, callId, callerLine, conv.id));
      if (callee !== undefined) {
        const c = callee;
        await cleanUpStep(log, `state restore of ${c.agent}`, () => endAgentCall(engine, cc, c.agent, calleeCallId, c.line, conv.id));
        await cleanUpStep(log, 'callee guard release', () => guard.untrack(cc, calleeCallId));
      }
      await cleanUpStep(log, 'call guard release', () => guard.untrack(cc, callId));
    }
  }
}
