/** Agent state routes (DESIGN.md section 8): login, logout, ready, not_ready, GET agent(s). */
import type { FastifyInstance } from 'fastify';
import type { AgentEngine, ApplyResult } from '../../../lib/agent/engine';
import { agentAcdView } from '../../../lib/acd/agentView';
import { agentStates } from '../../../lib/agent/queries';
import type { Redis } from 'ioredis';
import type { ConversationStore } from '../../../lib/conversation/store';
import type { Registrar } from '../../../lib/sip/registrar';
import { agentConversations } from './conversations';
import { principalOf } from '../principal';
import {
  AgentBody,
  AgentParams,
  AgentsBody,
  ApplyResultBody,
  CcParams,
  LogoutBody,
  NotReadyBody,
  QueueBody,
  errorResponses,
  type AgentParamsT,
  type CcParamsT,
  type QueueBodyT,
  type ReasonBodyT,
} from '../schemas';

/** What the agent routes need. */
export interface AgentRouteDeps {
  engine: AgentEngine;
  registrar: Registrar;
  redis: Redis;
  conversations: ConversationStore;
  /** Counts applied operations for /metrics. */
  onApplied?: (op: string, result: ApplyResult) => void;
}

type Op = 'login' | 'logout' | 'ready' | 'not_ready';

const OPS: Record<Op, { summary: string; body: typeof QueueBody | typeof LogoutBody | typeof NotReadyBody }> = {
  login: { summary: 'Log the agent in to one queue, or to all its queues (operation 1)', body: QueueBody },
  logout: { summary: 'Log the agent out of one queue or all (operation 0; a call in progress continues)', body: LogoutBody },
  ready: { summary: 'Set the agent Ready in one queue or all (operation 2)', body: QueueBody },
  not_ready: { summary: 'Set the agent Not Ready with a reason in one queue or all (operation 3)', body: NotReadyBody },
};

/** Registers the agent routes. */
export function agentRoutes(app: FastifyInstance, deps: AgentRouteDeps): void {
  const { engine } = deps;
  const run = (op: Op, cc: string, agent: string, body: QueueBodyT & ReasonBodyT): Promise<ApplyResult> => {
    switch (op) {
      case 'login':
        return engine.login(cc, agent, { queue: body.queue });
      case 'logout':
        return engine.logout(cc, agent, { queue: body.queue, reason: body.reason });
      case 'ready':
        return engine.ready(cc, agent, { queue: body.queue });
      case 'not_ready':
        return engine.notReady(cc, agent, { queue: body.queue, reason: body.reason });
    }
  };

  for (const op of Object.keys(OPS) as Op[]) {
    app.post<{ Params: AgentParamsT; Body: QueueBodyT & ReasonBodyT }>(
      `/callcenter/:cc/agent/:agent/${op}`,
      {
        schema: {
          tags: ['agents'],
          summary: OPS[op].summary,
          params: AgentParams,
          body: OPS[op].body,
          response: { 200: ApplyResultBody, ...errorResponses(400, 403, 404, 409, 413, 422, 503) },
        },
      },
      async (req) => {
        principalOf(req).actAsAgent(engine.callCenter(req.params.cc), req.params.agent);
        const result = await run(op, req.params.cc, req.params.agent, req.body);
        deps.onApplied?.(op, result);
        return result;
      },
    );
  }

  app.get<{ Params: AgentParamsT }>(
    '/callcenter/:cc/agent/:agent',
    { schema: { tags: ['agents'], summary: 'The agent: state per queue, registration, reservation, conversations', params: AgentParams, response: { 200: AgentBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const { cc, agent } = req.params;
      principalOf(req).readAgent(engine.callCenter(cc), agent);
      const a = engine.agent(cc, agent);
      const [states, bindings, conversations] = await Promise.all([engine.states(cc, agent), deps.registrar.bindings(cc, agent), agentConversations(deps.conversations, cc, agent)]);
      const { reservation, acdCall } = await agentAcdView(deps.redis, engine.keys(cc), agent, states);
      return {
        id: a.id,
        name: a.name ?? null,
        extension: a.extension,
        queues: states.map((s) => ({ ...s, skills: a.queues[s.queue]?.skills ?? {} })),
        registration: bindings.length === 0 ? null : { contacts: bindings.map(({ contact, expires, transport, source, userAgent }) => ({ contact, expires, transport, source, userAgent })) },
        reservation,
        acdCall,
        conversations,
      };
    },
  );

  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/agents',
    { schema: { tags: ['agents'], summary: 'Every agent of the call center the token may see (a supervisor: the members of its queues; an agent: itself) with its state per queue', params: CcParams, response: { 200: AgentsBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const who = principalOf(req);
      const ids = Object.keys(cc.agents).filter((id) => who.seesAgent(cc, id));
      const states = await agentStates(deps.redis, engine.keys(cc.id), cc, ids);
      return {
        agents: ids.map((id) => ({
          id,
          name: cc.agents[id]!.name ?? null,
          extension: cc.agents[id]!.extension,
          queues: states.get(id)!.map(({ queue, state, reason, since }) => ({ queue, state, reason, since })),
        })),
      };
    },
  );
}
