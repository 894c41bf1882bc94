/**
 * Agent answers to an offer while its phone rings (seed 002): `reject` (back to the IVR with
 * data, or to the next agent) and `forward_agent` (re-queue with new target conditions). Only
 * the agent the task is being offered to may do either; the instance holding the caller's
 * call (the task's owner) carries it out.
 */
import type { FastifyInstance } from 'fastify';
import type { AgentEngine } from '../../../lib/agent/engine';
import { EnqueueXmlError, parseEnqueueXml, type EnqueueSpec } from '../../../lib/acd/enqueueXml';
import type { TaskStore } from '../../../lib/acd/taskStore';
import { MalformedEnqueueError, TaskStateError } from '../../../lib/errors';
import type { ConversationHub } from '../../conversation/hub';
import type { VerdictOutcome } from '../../sip/queueCall';
import { idemKey } from './conversations';
import { principalOf } from '../principal';
import { AgentParams, ForwardBody, IdempotencyHeaders, RejectBody, VerdictBody, errorResponses, type AgentParamsT, type ForwardBodyT, type IdempotencyHeadersT, type RejectBodyT } from '../schemas';

/** What the offer routes need. */
export interface OfferRouteDeps {
  engine: AgentEngine;
  tasks: TaskStore;
  hub: ConversationHub;
}

/** The owner's answer to a verdict, as an HTTP outcome: applied, or the task's state as an error. */
function verdictResult(r: unknown, agent: string, task: string): { task: string; agent: string; outcome: 'applied' } {
  const outcome = (r as { outcome?: VerdictOutcome }).outcome;
  if (outcome === 'applied') return { task, agent, outcome };
  throw new TaskStateError(outcome === 'answered' ? 'task_answered' : 'task_not_offered', agent, task);
}

/** Registers the offer routes. */
export function offerRoutes(app: FastifyInstance, deps: OfferRouteDeps): void {
  const { engine, tasks, hub } = deps;

  app.post<{ Params: AgentParamsT; Body: RejectBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/reject',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Reject the queue task ringing on this agent: a trunk caller goes back to its IVR (BYE with X-CCS-Reject-Data and Reason), any other to the next agent; the agent goes Not Ready (7) as with a reject on the phone',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: RejectBody,
        response: { 200: VerdictBody, ...errorResponses(400, 403, 404, 409, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      const task = await tasks.offeredTo(cc, req.body.queue_task_id, agent);
      const r = await hub.run(cc, task.owner, { op: 'offer.reject', args: { task: task.id, agent, ...(req.body.data === undefined ? {} : { data: req.body.data }) } }, idemKey(req.headers, 'reject', agent));
      return verdictResult(r, agent, task.id);
    },
  );

  app.post<{ Params: AgentParamsT; Body: ForwardBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/forward_agent',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Forward the queue task ringing on this agent: re-queued with the enqueue document\'s conditions, keeping its age and (unless set) its priority; the agent is not penalised',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: ForwardBody,
        response: { 200: VerdictBody, ...errorResponses(400, 403, 404, 409, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      const ccConfig = engine.callCenter(cc);
      engine.agent(cc, agent);
      let spec: EnqueueSpec;
      try {
        spec = parseEnqueueXml(req.body.enqueue);
      } catch (err) {
        if (err instanceof EnqueueXmlError) throw new MalformedEnqueueError(err.message);
        throw err;
      }
      const unknown = (spec.conditions.agents ?? []).find((a) => !Object.hasOwn(ccConfig.agents, a));
      if (unknown !== undefined) throw new MalformedEnqueueError(`unknown agent ${unknown}`);
      const task = await tasks.offeredTo(cc, req.body.queue_task_id, agent);
      if (spec.queue !== task.queue) throw new MalformedEnqueueError(`the document names queue ${spec.queue}, the task waits in ${task.queue}`);
      const conditions = spec.conditions.agents === undefined && spec.conditions.skills === undefined ? undefined : spec.conditions;
      const r = await hub.run(
        cc,
        task.owner,
        { op: 'offer.forward', args: { task: task.id, agent, ...(conditions === undefined ? {} : { conditions }), ...(spec.prioritySet ? { priority: spec.priority } : {}) } },
        idemKey(req.headers, 'forward_agent', agent),
      );
      return verdictResult(r, agent, task.id);
    },
  );
}
