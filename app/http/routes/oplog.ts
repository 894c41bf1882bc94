/** The operation log (seed 004 codes), paged by sequence number. */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../../../lib/agent/engine';
import { readOplog } from '../../../lib/agent/queries';
import { principalOf } from '../principal';
import type { TaskStore } from '../../../lib/acd/taskStore';
import { audit } from '../../../lib/audit/audit';
import { repair } from '../../../lib/audit/repair';
import type { ConversationStore } from '../../../lib/conversation/store';
import type { Logger } from '../../../lib/logger';
import { AuditBody, AuditRepairBody, CcParams, OplogBody, OplogQuery, errorResponses, type CcParamsT, type OplogQueryT } from '../schemas';

/** What the operation-log and audit routes need. */
export interface OplogRouteDeps {
  engine: AgentEngine;
  redis: Redis;
  tasks: TaskStore;
  conversations: ConversationStore;
  logger: Logger;
}

/** Registers GET /callcenter/:cc/oplog, GET /callcenter/:cc/audit and POST /callcenter/:cc/audit/repair. */
export function oplogRoutes(app: FastifyInstance, deps: OplogRouteDeps): void {
  app.get<{ Params: CcParamsT; Querystring: OplogQueryT }>(
    '/callcenter/:cc/oplog',
    {
      schema: {
        tags: ['oplog'],
        summary: 'Operation log: latest entries, or entries after `since`, optionally of one agent; a supervisor token reads its queues\' agents, an agent token its own',
        params: CcParams,
        querystring: OplogQuery,
        response: { 200: OplogBody, ...errorResponses(400, 403, 404, 503) },
      },
    },
    async (req) => {
      const cc = deps.engine.callCenter(req.params.cc);
      const who = principalOf(req);
      if (req.query.agent !== undefined) {
        deps.engine.agent(cc.id, req.query.agent);
        who.readAgent(cc, req.query.agent);
      }
      // A supervisor reads the entries of its queues' agents, an agent its own.
      const agents = who.isAdmin ? undefined : new Set(Object.keys(cc.agents).filter((a) => who.seesAgent(cc, a)));
      return readOplog(deps.redis, deps.engine.keys(cc.id).oplog, { ...req.query, ...(agents === undefined ? {} : { agents }) });
    },
  );

  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/audit',
    { schema: { tags: ['oplog'], summary: 'Invariant audit (admin): every broken invariant found in Redis, each with its key and a plain explanation; an empty list is a healthy call center', params: CcParams, response: { 200: AuditBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = deps.engine.callCenter(req.params.cc);
      principalOf(req).requireAdmin('audit the call center');
      return { findings: await audit(deps.redis, deps.engine.keys(cc.id), cc) };
    },
  );

  app.post<{ Params: CcParamsT }>(
    '/callcenter/:cc/audit/repair',
    { schema: { tags: ['oplog'], summary: 'Audit and repair (admin): each finding gets the ending the normal path would have given it (with its events); returns what was done and what the audit finds afterwards', params: CcParams, response: { 200: AuditRepairBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = deps.engine.callCenter(req.params.cc);
      const who = principalOf(req);
      who.requireAdmin('repair the call center');
      const keys = deps.engine.keys(cc.id);
      const found = await audit(deps.redis, keys, cc);
      const repaired = await repair({ ...deps, logger: deps.logger.child({ component: 'audit', token: who.name }) }, cc, keys, found);
      return { repaired, findings: await audit(deps.redis, keys, cc) };
    },
  );
}
