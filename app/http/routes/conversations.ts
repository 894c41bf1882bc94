/**
 * Conversation routes (DESIGN.md 5.1 and 8, seed 002): read one or the live ones, and the
 * agent operations on a conversation — pause (mode 4) and resume (mode 1..3). Operations are
 * checked against Redis on whichever instance the request reaches and run by the instance
 * that owns the conversation (app/conversation/hub.ts); a retried request with the same
 * `Idempotency-Key` is answered with the first outcome, not executed again.
 */
import type { FastifyInstance } from 'fastify';
import type { AgentEngine } from '../../../lib/agent/engine';
import { agentConversationViews, HOLD, resumeMode, withoutSilentMonitors, type AgentConversationView, type ConversationRecord } from '../../../lib/conversation/model';
import type { ConversationStore } from '../../../lib/conversation/store';
import { UnknownConversationError } from '../../../lib/errors';
import type { ConversationHub } from '../../conversation/hub';
import { principalOf } from '../principal';
import {
  AgentParams,
  CcParams,
  ConversationBody,
  ConversationParams,
  ConversationsBody,
  ConversationsQuery,
  IdempotencyHeaders,
  ModeResultBody,
  PauseBody,
  ResumeBody,
  errorResponses,
  type AgentParamsT,
  type CcParamsT,
  type ConversationParamsT,
  type ConversationsQueryT,
  type IdempotencyHeadersT,
  type PauseBodyT,
  type ResumeBodyT,
} from '../schemas';

/** What the conversation routes need. */
export interface ConversationRouteDeps {
  engine: AgentEngine;
  conversations: ConversationStore;
  hub: ConversationHub;
}

/** A conversation as the API shows it. */
export function conversationView(c: ConversationRecord) {
  return {
    id: c.id,
    state: c.state,
    owner: c.owner,
    created: c.created,
    task: c.task ?? null,
    queue: c.queue ?? null,
    taskQueued: c.taskQueued,
    legs: c.legs.map((l) => ({
      leg: l.leg,
      kind: l.kind,
      ...(l.agent === undefined ? {} : { agent: l.agent }),
      ...(l.supervisor === undefined ? {} : { supervisor: l.supervisor, monitor: l.monitor ?? 'listen' }),
      mode: l.mode,
      state: l.state,
      since: l.since,
    })),
  };
}

/** An agent's conversations for `GET agent`: its live leg in each, with mode and whether it is the active one. */
export async function agentConversations(store: ConversationStore, cc: string, agent: string): Promise<AgentConversationView[]> {
  return agentConversationViews(agent, await store.ofAgent(cc, agent));
}

/** Scopes a request's Idempotency-Key to the operation and the agent it was sent for. */
export function idemKey(h: IdempotencyHeadersT, op: string, agent: string): string | undefined {
  const key = h['idempotency-key'];
  return key === undefined ? undefined : `${op}|${agent}|${key}`;
}

/** Registers the conversation routes. */
export function conversationRoutes(app: FastifyInstance, deps: ConversationRouteDeps): void {
  const { engine, conversations, hub } = deps;

  app.get<{ Params: ConversationParamsT }>(
    '/callcenter/:cc/conversation/:id',
    { schema: { tags: ['conversations'], summary: 'One conversation: its legs with kind, agent, mode and state, and its queue task', params: ConversationParams, response: { 200: ConversationBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const c = await conversations.get(cc.id, req.params.id);
      if (c === undefined) throw new UnknownConversationError(req.params.id);
      const who = principalOf(req);
      who.readConversation(cc, c.id, c);
      // An agent is not told of a supervisor listening in or whispering (DESIGN.md 12).
      return conversationView(who.role === 'agent' ? withoutSilentMonitors(c) : c);
    },
  );

  app.get<{ Params: CcParamsT; Querystring: ConversationsQueryT }>(
    '/callcenter/:cc/conversations',
    { schema: { tags: ['conversations'], summary: 'The live conversations the token may see, oldest first; with `agent`, those it has a leg in; with `queue`, those of that queue', params: CcParams, querystring: ConversationsQuery, response: { 200: ConversationsBody, ...errorResponses(400, 403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const who = principalOf(req);
      if (req.query.agent !== undefined) engine.agent(cc.id, req.query.agent);
      const list = await conversations.list(cc.id, { agent: req.query.agent, queue: req.query.queue });
      return { conversations: list.filter((c) => who.seesConversation(cc, c)).map((c) => conversationView(who.role === 'agent' ? withoutSilentMonitors(c) : c)) };
    },
  );

  app.post<{ Params: AgentParamsT; Body: PauseBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/pause',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Hold: the agent neither listens nor speaks in the conversation (mode 4, operation 38); a party left alone with it hears the hold music',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: PauseBody,
        response: { 200: ModeResultBody, ...errorResponses(400, 403, 404, 409, 502, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      return hub.setAgentMode(cc, agent, req.body.conversation_id, HOLD, idemKey(req.headers, 'pause', agent));
    },
  );

  app.post<{ Params: AgentParamsT; Body: ResumeBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/agent/:agent/resume',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Resume in mode 1..3 (default 1); the agent goes on hold in every other conversation first (one active conversation at a time)',
        params: AgentParams,
        headers: IdempotencyHeaders,
        body: ResumeBody,
        response: { 200: ModeResultBody, ...errorResponses(400, 403, 404, 409, 422, 502, 503) },
      },
    },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).actAsAgent(engine.callCenter(cc), agent);
      engine.agent(cc, agent);
      const mode = resumeMode(req.body.mode);
      return hub.setAgentMode(cc, agent, req.body.conversation_id, mode, idemKey(req.headers, 'resume', agent));
    },
  );
}
