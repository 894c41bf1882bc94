/**
 * Serving a queue task queued on an existing conversation (DESIGN.md 5.1: "queue a task on
 * itself"): the task waits in its queue with its conditions, is offered by the queue calls'
 * offer (only Ready, unreserved, registered agents under a leased reservation with a fencing
 * token), and the agent who answers joins the conversation as a line. Used by call_agent (the
 * calling agent waits) and by a blind transfer of a conversation that is not a queue call (the
 * party left waits). Queue calls keep their own loop in app/sip/queueCall.ts (announcements,
 * overflow, reject back to the IVR).
 */
import type { Selector } from '../../lib/acd/selector';
import type { TaskConditions } from '../../lib/acd/strategies';
import type { TaskStore } from '../../lib/acd/taskStore';
import type { AgentEngine } from '../../lib/agent/engine';
import type { CallGuard } from '../../lib/calls/guard';
import type { Config } from '../../lib/config/schema';
import { LegKind } from '../../lib/conversation/model';
import type { Logger } from '../../lib/logger';
import type { Conversation, ConversationLeg } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import { endAgentCall, type AgentLine } from '../conversation/line';
import { cleanUpStep } from '../sip/leg';
import type { Offer } from './callAgent';

/** What serving a task needs. */
export interface ServeDeps {
  config: Config;
  hub: ConversationHub;
  engine: AgentEngine;
  guard: CallGuard;
  tasks: TaskStore;
  selector: Selector;
  offer: Offer;
}

/** The task to queue on the conversation. */
export interface TaskToServe {
  id: string;
  queue: string;
  priority: number;
  conditions?: TaskConditions | undefined;
  maxWaitSeconds?: number | undefined;
  /** When the party started waiting, if before now (a transfer keeps the caller's wait). */
  waitingSince?: number | undefined;
  /** Who waits, as queue.caller events show it. */
  caller: string;
  /** The call id the task is guarded and offered under. */
  callId: string;
}

/** How serving ended. */
export type Served = { kind: 'connected'; agent: string; line: AgentLine; leg: ConversationLeg } | { kind: 'timeout' } | { kind: 'gone' };

/**
 * Queues `t` on `conv` and serves it until an agent answers (it joins in mode 1), the max wait
 * passes (the task ends `timeout`) or `waiting` leaves (`abandoned`). `o.internal`: the callee
 * goes Other Call with operation 41 (call_agent) instead of Queue Call; `o.onQueued` runs once
 * the task is in its queue (a transfer lets the agent go then). The answering agent's
 * call end (state, task completed, guard) follows its leg leaving.
 */
export async function serveTask(
  d: ServeDeps, conv: Conversation, t: TaskToServe, waiting: ConversationLeg, log: Logger,
  o: { internal?: { from: string }; onQueued?: () => Promise<void> } = {},
): Promise<Served> {
  const { internal } = o;
  const { cc } = conv;
  const { tasks, selector, engine, hub } = d;
  const ccConfig = engine.callCenter(cc);
  const ringMs = ccConfig.queues[t.queue]!.ringSeconds * 1000;
  const calleeCallId = `${t.callId}-callee`;
  await tasks.enqueue(cc, {
    id: t.id, queue: t.queue, priority: t.priority, callId: t.callId, caller: t.caller, owner: d.guard.incarnation,
    maxWaitMs: (t.maxWaitSeconds ?? ccConfig.queues[t.queue]!.maxWaitSeconds) * 1000, conditions: t.conditions, waitingSince: t.waitingSince,
  });
  await o.onQueued?.();
  const keys = tasks.keys(cc);
  for (;;) {
    if (waiting.left || conv.isEnded) {
      await tasks.end(cc, t.id, t.queue, 'abandoned');
      return { kind: 'gone' };
    }
    const task = await tasks.get(cc, t.id);
    if (task === undefined || task.state === 'ended') return { kind: 'gone' };
    if (task.maxWaitReached) {
      await tasks.end(cc, t.id, t.queue, 'timeout');
      log.info('nobody answered within the max wait');
      return { kind: 'timeout' };
    }
    const plan = await selector.plan(ccConfig, keys, t.queue, task.conditions);
    const got = plan.agents.length === 0 ? 'no_agent' : await tasks.reserve(cc, t.id, t.queue, plan.agents, 1, ringMs + 5000);
    if (Array.isArray(got)) {
      for (const r of got) selector.offered(ccConfig, keys, t.queue, r.agent);
      const result = await d.offer(cc, t.id, t.queue, calleeCallId, got, ringMs, waiting.sip, log, internal === undefined ? {} : { internal });
      if (result.kind === 'connected') {
        const line = hub.line(cc, result.agent, result.leg);
        await conv.setTask(t.id, t.queue, false);
        let leg;
        try {
          leg = await conv.add({ kind: LegKind.Agent, agent: result.agent, ep: result.ep, sip: result.leg, line, mode: 1 });
        } catch (err) {
          // The conversation ended between the answer and the join: the agent's call is ours to end.
          await cleanUpStep(log, 'BYE to the agent', () => result.leg.release());
          await cleanUpStep(log, 'endpoint release', () => result.ep.destroy());
          await cleanUpStep(log, 'task end', () => tasks.end(cc, t.id, t.queue, 'completed', result.agent));
          await cleanUpStep(log, `state restore of ${result.agent}`, () => engine.callEnded(cc, result.agent, { callId: calleeCallId }));
          await cleanUpStep(log, 'guard release', () => d.guard.untrack(cc, calleeCallId));
          throw err;
        }
        line.callFor(conv.id, calleeCallId);
        const who = result.agent;
        void leg.hasLeft.then(async () => {
          await cleanUpStep(log, 'task end', () => tasks.end(cc, t.id, t.queue, 'completed', who));
          // Handed over to another conversation (consult_complete): the call, its state and its
          // guard go on there.
          if (!line.gone && line.otherCall(conv.id) === calleeCallId) return;
          await cleanUpStep(log, `state restore of ${who}`, () => endAgentCall(engine, cc, who, calleeCallId, line, conv.id));
          await cleanUpStep(log, 'guard release', () => d.guard.untrack(cc, calleeCallId));
        });
        log.info({ agent: who }, 'task answered: the agent joined the conversation');
        return { kind: 'connected', agent: who, line, leg };
      }
      await tasks.requeue(cc, t.id, t.queue);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, d.config.timers.pollMs);
      void waiting.hasLeft.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
