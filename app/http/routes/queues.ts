/** Queue routes: list with per-state counts, one queue with its members and waiting callers. */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../../../lib/agent/engine';
import { queueViews } from '../../../lib/agent/queries';
import { queueTraffic } from '../../../lib/acd/queueStats';
import { queueHistory } from '../../../lib/acd/queueHistory';
import type { QueueConfig } from '../../../lib/config/schema';
import { NotFoundError } from '../../../lib/errors';
import { principalOf } from '../principal';
import { CcParams, QueueHistoryBody, QueueParams, QueuesBody, QueueViewBody, errorResponses, type CcParamsT, type QueueParamsT } from '../schemas';

/** What the queue routes need. */
export interface QueueRouteDeps {
  engine: AgentEngine;
  redis: Redis;
}

const summary = (id: string, q: QueueConfig) => ({
  id,
  name: q.name,
  strategy: q.strategy,
  autoReady: q.autoReady,
  wrapUpSeconds: q.wrapUpSeconds,
  ringSeconds: q.ringSeconds,
  maxWaitSeconds: q.maxWaitSeconds,
  slaSeconds: q.slaSeconds,
});

/** Registers the queue routes. */
export function queueRoutes(app: FastifyInstance, deps: QueueRouteDeps): void {
  const { engine, redis } = deps;

  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/queues',
    { schema: { tags: ['queues'], summary: 'The queues the token may see (a supervisor: its queues; an agent: its own) with agents per state and waiting callers', params: CcParams, response: { 200: QueuesBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const who = principalOf(req);
      const ids = Object.keys(cc.queues).filter((q) => who.seesQueue(cc, q));
      const views = await queueViews(redis, engine.keys(cc.id), cc, ids);
      return { queues: ids.map((id) => ({ ...summary(id, cc.queues[id]!), agents: views.get(id)!.counts, waiting: views.get(id)!.waiting })) };
    },
  );

  app.get<{ Params: QueueParamsT }>(
    '/callcenter/:cc/queue/:q',
    { schema: { tags: ['queues'], summary: 'One queue: options, members and their states, waiting callers', params: QueueParams, response: { 200: QueueViewBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      const q = Object.hasOwn(cc.queues, req.params.q) ? cc.queues[req.params.q] : undefined;
      if (q === undefined) throw new NotFoundError('queue', req.params.q);
      principalOf(req).readQueue(cc, q.id);
      const [views, traffic] = await Promise.all([queueViews(redis, engine.keys(cc.id), cc, [q.id]), queueTraffic(redis, engine.keys(cc.id), q.id, q.slaSeconds)]);
      const view = views.get(q.id)!;
      return { ...summary(q.id, q), agents: view.counts, members: view.members, waiting: view.waiting, callers: traffic.callers, stats: traffic.stats };
    },
  );

  app.get<{ Params: QueueParamsT }>(
    '/callcenter/:cc/queue/:q/history',
    { schema: { tags: ['queues'], summary: 'The queue\'s last hour, minute by minute: callers answered and the most waiting at once (the wallboard\'s chart)', params: QueueParams, response: { 200: QueueHistoryBody, ...errorResponses(403, 404, 503) } } },
    async (req) => {
      const cc = engine.callCenter(req.params.cc);
      if (!Object.hasOwn(cc.queues, req.params.q)) throw new NotFoundError('queue', req.params.q);
      principalOf(req).readQueue(cc, req.params.q);
      return { queue: req.params.q, ...(await queueHistory(redis, engine.keys(cc.id), req.params.q)) };
    },
  );
}
