/**
 * Supervisor routes (DESIGN.md section 12, seed 004): the supervisors of a call center, the
 * forced state changes (ops 29 / 30 / 31, each with the agent's own entry) and monitoring of
 * an agent's active conversation (listen / whisper / barge / intercept). A supervisor token
 * reaches only the agents of its queues and acts only as its own supervisor.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AgentEngine, ApplyResult, ForcedBy } from '../../../lib/agent/engine';
import type { Principal } from '../../../lib/auth/scope';
import type { CallCenterConfig } from '../../../lib/config/schema';
import type { ConversationStore } from '../../../lib/conversation/store';
import { ForbiddenError, InvalidRequestError, NotFoundError, NotMonitoringError, NotOnCallError } from '../../../lib/errors';
import type { Registrar } from '../../../lib/sip/registrar';
import { activeConversationOf, monitoredBy, monitorModeNamed, oversees, supervisorLegOf } from '../../calls/monitor';
import type { ConversationHub } from '../../conversation/hub';
import { principalOf } from '../principal';
import { idemKey } from './conversations';
import {
  AgentParams,
  ApplyResultBody,
  CcParams,
  ForceLogoutBody,
  ForceNotReadyBody,
  ForceReadyBody,
  IdempotencyHeaders,
  MonitorBody,
  MonitorStartedBody,
  MonitorStoppedBody,
  SupervisorBody,
  SupervisorParams,
  errorResponses,
  type AgentParamsT,
  type CcParamsT,
  type ForceBodyT,
  type IdempotencyHeadersT,
  type MonitorBodyT,
  type SupervisorParamsT,
} from '../schemas';

/** What the supervisor routes need. */
export interface SupervisorRouteDeps {
  engine: AgentEngine;
  registrar: Registrar;
  conversations: ConversationStore;
  hub: ConversationHub;
  /** Counts applied operations for /metrics. */
  onApplied?: (op: string, result: ApplyResult) => void;
}

type Force = 'logout' | 'ready' | 'not_ready';

const FORCES: Record<Force, { summary: string; body: typeof ForceLogoutBody | typeof ForceReadyBody | typeof ForceNotReadyBody }> = {
  logout: { summary: 'Forced sign-out (op 29, then the agent\'s op 0 reason 257) in one queue or all the supervisor oversees; a call in progress is not dropped', body: ForceLogoutBody },
  ready: { summary: 'Forced idle (op 30, then the agent\'s op 2) in one queue or all the supervisor oversees', body: ForceReadyBody },
  not_ready: { summary: 'Forced busy (op 31, then the agent\'s op 3 reason 3 "forced by a QC inspector") in one queue or all the supervisor oversees', body: ForceNotReadyBody },
};

/** The supervisor, or 404. */
function supervisorOf(cc: CallCenterConfig, sup: string) {
  const s = Object.hasOwn(cc.supervisors, sup) ? cc.supervisors[sup] : undefined;
  if (s === undefined) throw new NotFoundError('supervisor', sup);
  return s;
}

/** Who the forced entry names: the token's supervisor, one an admin names, or (no supervisor) the token. */
function forcedBy(cc: CallCenterConfig, who: Principal, named: string | undefined): ForcedBy {
  if (named !== undefined && !who.isAdmin && named !== who.supervisor) throw new ForbiddenError(`${who.article} token may not act as supervisor '${named}'`);
  const sup = named ?? who.supervisor;
  if (sup === undefined) return { object: -1, by: who.name };
  return { object: Number(supervisorOf(cc, sup).extension), by: sup };
}

/** Registers the supervisor routes. */
export function supervisorRoutes(app: FastifyInstance, deps: SupervisorRouteDeps): void {
  const { engine, conversations, hub } = deps;

  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/supervisors',
    { schema: { tags: ['supervisors'], summary: 'The supervisors the token may see (a supervisor: those sharing a queue with it), with registration and whom they monitor', params: CcParams, response: { 200: Type.Object({ supervisors: Type.Array(SupervisorBody) }), ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const who = principalOf(req);
      if (who.role === 'agent') throw new ForbiddenError('an agent token may not list supervisors');
      const ids = Object.keys(cc.supervisors).filter((id) => who.seesSupervisor(cc, id));
      const live = await conversations.list(cc.id, { limit: 100_000 });
      const supervisors = await Promise.all(
        ids.map(async (id) => {
          const s = cc.supervisors[id]!;
          const conv = live.find((c) => supervisorLegOf(c, id) !== undefined);
          const leg = conv === undefined ? undefined : supervisorLegOf(conv, id);
          return {
            id,
            name: s.name ?? null,
            extension: s.extension,
            queues: s.queues,
            registered: (await deps.registrar.bindings(cc.id, id)).length > 0,
            monitoring: conv === undefined ? null : { conversation: conv.id, monitor: leg?.monitor ?? 'listen' },
          };
        }),
      );
      return { supervisors };
    },
  );

  for (const kind of Object.keys(FORCES) as Force[]) {
    app.post<{ Params: AgentParamsT; Body: ForceBodyT }>(
      `/callcenter/:cc/agent/:agent/force_${kind}`,
      { schema: { tags: ['supervisors'], summary: FORCES[kind].summary, params: AgentParams, body: FORCES[kind].body, response: { 200: ApplyResultBody, ...errorResponses(400, 403, 404, 409, 422, 503) } } },
      async (req) => {
        const { agent } = req.params;
        const cc = engine.callCenter(req.params.cc);
        const who = principalOf(req);
        const within = who.forceAgent(cc, agent);
        engine.agent(cc.id, agent);
        const { queue, reason, supervisor } = req.body;
        if (queue !== undefined && within !== undefined && !within.includes(queue)) throw new ForbiddenError(`${who.article} token may not force agent '${agent}' in queue '${queue}'`);
        const by = forcedBy(cc, who, supervisor);
        const result = await engine.force(cc.id, agent, kind, { queue, reason, by, within });
        deps.onApplied?.(`force_${kind}`, result);
        req.log.info({ agent, kind, queue, by: by.by, token: who.name }, 'forced state change');
        return result;
      },
    );
  }

  app.post<{ Params: SupervisorParamsT; Body: MonitorBodyT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/supervisor/:sup/monitor',
    {
      schema: {
        tags: ['supervisors'],
        summary: 'Monitor the agent\'s active conversation: the supervisor\'s registered phones ring, and its answered leg joins as kind supervisor in listen (op 20), whisper (op 20), barge (op 10) or intercept (op 43); already monitoring it: the mode changes',
        params: SupervisorParams,
        headers: IdempotencyHeaders,
        body: MonitorBody,
        response: { 200: MonitorStartedBody, ...errorResponses(400, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const { sup } = req.params;
      supervisorOf(cc, sup);
      const who = principalOf(req);
      who.actAsSupervisor(cc, sup);
      const { agent } = req.body;
      engine.agent(cc.id, agent);
      // Outside its queues: a scope refusal for the supervisor's own token, a bad request from an admin.
      if (!oversees(cc, sup, agent)) {
        const why = `supervisor '${sup}' does not oversee a queue of agent '${agent}'`;
        throw who.isAdmin ? new InvalidRequestError(why) : new ForbiddenError(why);
      }
      const mode = monitorModeNamed(req.body.mode);
      const rec = await activeConversationOf(conversations, cc.id, agent);
      if (rec === undefined) throw new NotOnCallError(agent);
      return hub.run(cc.id, rec.owner, { op: 'monitor', args: { conversation: rec.id, agent, supervisor: sup, mode } }, idemKey(req.headers, 'monitor', sup));
    },
  );

  app.post<{ Params: SupervisorParamsT; Headers: IdempotencyHeadersT }>(
    '/callcenter/:cc/supervisor/:sup/monitor/stop',
    { schema: { tags: ['supervisors'], summary: 'Stop monitoring: the supervisor\'s leg is released (BYE)', params: SupervisorParams, headers: IdempotencyHeaders, response: { 200: MonitorStoppedBody, ...errorResponses(400, 403, 404, 409, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const { sup } = req.params;
      supervisorOf(cc, sup);
      principalOf(req).actAsSupervisor(cc, sup);
      const rec = await monitoredBy(conversations, cc.id, sup);
      if (rec === undefined) throw new NotMonitoringError(sup);
      return hub.run(cc.id, rec.owner, { op: 'monitor.stop', args: { conversation: rec.id, supervisor: sup } }, idemKey(req.headers, 'monitor_stop', sup));
    },
  );
}
