/**
 * Calls the platform places for an agent (seed 002, DESIGN.md section 8): call_out, xferOut
 * and xfer_agent. Each request is checked here (trunk, numbers, limits, the enqueue document,
 * the agent's place in the conversation) and run by the instance that holds what it acts on:
 * the agent's extension call for call_out, the conversation for the transfers.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { AgentEngine } from '../../../lib/agent/engine';
import { EnqueueXmlError, parseEnqueueXml } from '../../../lib/acd/enqueueXml';
import type { Config } from '../../../lib/config/schema';
import { LegState } from '../../../lib/conversation/model';
import type { ConversationStore } from '../../../lib/conversation/store';
import { InvalidRequestError, MalformedEnqueueError, NotFoundError } from '../../../lib/errors';
import { checkOutsideCall } from '../../calls/outside';
import type { ConversationHub } from '../../conversation/hub';
import { idemKey } from './conversations';
import { principalOf } from '../principal';
import {
  AgentParams,
  CallAgentBody,
  CallAgentStartedBody,
  CallOutBody,
  ConsultBody,
  ConsultCompleteBody,
  ConsultResultBody,
  PauseBody,
  CallStartedBody,
  IdempotencyHeaders,
  TransferredBody,
  XferAgentBody,
  XferOutBody,
  errorResponses,
  type AgentParamsT,
  type CallAgentBodyT,
  type CallOutBodyT,
  type ConsultBodyT,
  type ConsultCompleteBodyT,
  type PauseBodyT,
  type IdempotencyHeadersT,
  type XferAgentBodyT,
  type XferOutBodyT,
} from '../schemas';

/** What the call routes need. */
export interface CallRouteDeps {
  config: Config;
  engine: AgentEngine;
  conversations: ConversationStore;
  hub: ConversationHub;
}

/** Registers the call routes. */
export function callRoutes(app: FastifyInstance, deps: CallRouteDeps): void {
  const { config, engine, conversations, hub } = deps;

  /** An enqueue / queue document checked against the call center: its queue and agents exist. */
  const enqueueSpec = (xml: string, cc: string) => {
    const ccConfig = engine.callCenter(cc);
    let spec;
    try {
      spec = parseEnqueueXml(xml);
    } catch (err) {
      if (err instanceof EnqueueXmlError) throw new MalformedEnqueueError(err.message);
      throw err;
    }
    if (!Object.hasOwn(ccConfig.queues, spec.queue)) throw new NotFoundError('queue', spec.queue);
    const unknown = (spec.conditions.agents ?? []).find((x) => !Object.hasOwn(ccConfig.agents, x));
    if (unknown !== undefined) throw new MalformedEnqueueError(`unknown agent ${unknown}`);
    const conditions = spec.conditions.agents === undefined && spec.conditions.skills === undefined ? undefined : spec.conditions;
    return { queue: spec.queue, priority: spec.priority, prioritySet: spec.prioritySet, conditions, maxWaitSeconds: spec.timeoutSeconds };
  };
  /** A document's task as command arguments (only what it sets). */
  const taskArgs = (spec: ReturnType<typeof enqueueSpec>) => ({
    queue: spec.queue,
    ...(spec.conditions === undefined ? {} : { conditions: spec.conditions }),
    ...(spec.maxWaitSeconds === undefined ? {} : { maxWaitSeconds: spec.maxWaitSeconds }),
  });
  /** The instance holding the agent's extension call (its line), or this one when it has none. */
  const lineOwner = async (cc: string, agent: string): Promise<string> =>
    (await conversations.ofAgent(cc, agent)).find((c) => c.state === 'active' && c.legs.some((l) => l.agent === agent && l.state !== LegState.Gone))?.owner ?? hub.owner;

  app.post<{ Params: AgentParamsT; Body: CallOutBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/call_out',
    {
      schema: {
        tags: ['calls'],
        summary: 'Call an outside number through the outbound trunk in a new conversation: the agent\'s phone is rung first when it is in no conversation (click-to-dial); otherwise its call goes on hold in every other conversation and joins the new one. Progress comes as conversation events',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: CallOutBody,
        response: { 200: CallStartedBody, ...errorResponses(400, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      const a = engine.agent(cc, agent);
      const call = checkOutsideCall(config, cc, req.body, a.extension);
      const args = { agent, conversation: randomUUID(), ...call };
      return hub.run(cc, await lineOwner(cc, agent), { op: 'callOut', args }, idemKey(req.headers, 'call_out', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: CallAgentBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/call_agent',
    {
      schema: {
        tags: ['calls'],
        summary: 'Call a colleague chosen by the enqueue document like a queue task (only Ready, unreserved, registered agents, under a leased reservation) in a new conversation (op 41); the calling agent joins first as with call_out',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: CallAgentBody,
        response: { 200: CallAgentStartedBody, ...errorResponses(400, 403, 404, 409, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      const spec = enqueueSpec(req.body.enqueue, cc);
      const args = { agent, conversation: randomUUID(), priority: spec.priority, ...taskArgs(spec) };
      return hub.run(cc, await lineOwner(cc, agent), { op: 'callAgent', args }, idemKey(req.headers, 'call_agent', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: XferOutBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/xferOut',
    {
      schema: {
        tags: ['calls'],
        summary: 'Transfer out (op 46): the agent leaves and the conversation calls the outside number; the caller hears music meanwhile, and the error prompt if the number fails',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: XferOutBody,
        response: { 200: CallStartedBody, ...errorResponses(400, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      const a = engine.agent(cc, agent);
      const call = checkOutsideCall(config, cc, req.body, a.extension);
      return hub.runAsAgent(cc, agent, req.body.conversation_id, { op: 'xferOut', args: { ...call } }, idemKey(req.headers, 'xferOut', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: XferAgentBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/xfer_agent',
    {
      schema: {
        tags: ['calls'],
        summary: 'Blind transfer (op 45): the caller is queued with the document\'s queue and conditions first (it hears music), then the agent leaves and goes through its call end (Wrap Up…); the next agent joins the same conversation',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: XferAgentBody,
        response: { 200: TransferredBody, ...errorResponses(400, 403, 404, 409, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      const spec = enqueueSpec(req.body.queue, cc);
      const args = { ...taskArgs(spec), ...(spec.prioritySet ? { priority: spec.priority } : {}) };
      return hub.runAsAgent(cc, agent, req.body.conversation_id, { op: 'xferAgent', args }, idemKey(req.headers, 'xfer_agent', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: ConsultBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/consult',
    {
      schema: {
        tags: ['calls'],
        summary: 'Consult (op 40): while the caller waits on hold (music), call a colleague chosen by `enqueue` (as call_agent) or a number `to` (as call_out) in a new conversation; then consult_complete or consult_cancel',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: ConsultBody,
        response: { 200: ConsultResultBody, ...errorResponses(400, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      const a = engine.agent(cc, agent);
      const b = req.body;
      if ((b.enqueue === undefined) === (b.to === undefined)) throw new InvalidRequestError('give either enqueue (a colleague) or to (a number)');
      let args: Record<string, unknown>;
      if (b.enqueue !== undefined) {
        const spec = enqueueSpec(b.enqueue, cc);
        args = { kind: 'agent', target: { priority: spec.priority, ...taskArgs(spec) } };
      } else {
        const call = checkOutsideCall(config, cc, { to: b.to!, from: b.from, max_dial_seconds: b.max_dial_seconds, max_answer_seconds: b.max_answer_seconds ?? 3600 }, a.extension);
        args = { kind: 'number', target: { ...call } };
      }
      return hub.runAsAgent(cc, agent, b.conversation_id, { op: 'consult', args }, idemKey(req.headers, 'consult', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: ConsultCompleteBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/consult_complete',
    {
      schema: {
        tags: ['calls'],
        summary: 'Complete a consultation: `transfer` (op 40 reason 3) hands the consulted party to the caller and the agent leaves; `conference` (op 40 reason 5, op 10) makes one three-party conversation',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: ConsultCompleteBody,
        response: { 200: ConsultResultBody, ...errorResponses(400, 403, 404, 409, 502, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      return hub.runAsAgent(cc, agent, req.body.conversation_id, { op: 'consultComplete', args: { how: req.body.how } }, idemKey(req.headers, 'consult_complete', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: PauseBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/consult_cancel',
    {
      schema: {
        tags: ['calls'],
        summary: 'Cancel a consultation: its conversation ends and the agent is back with the caller (mode 1)',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: PauseBody,
        response: { 200: ConsultResultBody, ...errorResponses(400, 403, 404, 409, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      return hub.runAsAgent(cc, agent, req.body.conversation_id, { op: 'consultCancel', args: {} }, idemKey(req.headers, 'consult_cancel', agent));
    },
  );
}
