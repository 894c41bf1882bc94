/**
 * Read-only routes a client needs before it shows anything (the browser UI's sign-in and
 * pickers): what the token is, and the Not Ready reasons to offer. Any token of the call
 * center may read them; they show nothing beyond the token's own scope.
 */
import type { FastifyInstance } from 'fastify';
import type { AgentEngine } from '../../../lib/agent/engine';
import { busyReasons } from '../../../lib/reasons';
import { principalOf } from '../principal';
import { CcParams, MeBody, ReasonsBody, errorResponses, type CcParamsT } from '../schemas';

/** What the routes need. */
export interface MeRouteDeps {
  engine: AgentEngine;
  /** The browser softphone's WebSocket and SIP domain (config sip.softphone, sip.realm), if it is on. */
  softphone?: { wsUrl: string; domain: string } | undefined;
}

/** Registers GET /callcenter/:cc/me and GET /callcenter/:cc/reasons. */
export function meRoutes(app: FastifyInstance, deps: MeRouteDeps): void {
  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/me',
    { schema: { tags: ['agents'], summary: 'What the bearer token is: its role, name, agent or supervisor, and the queues it may see (never the token itself)', params: CcParams, response: { 200: MeBody, ...errorResponses(403, 404) } } },
    (req) => {
      const cc = deps.engine.callCenter(req.params.cc);
      const who = principalOf(req);
      return Promise.resolve({
        callcenter: cc.id,
        name: who.name,
        role: who.role,
        agent: who.agent ?? null,
        supervisor: who.supervisor ?? null,
        queues: Object.keys(cc.queues).filter((q) => who.seesQueue(cc, q)),
        softphone: deps.softphone ?? null,
      });
    },
  );

  app.get<{ Params: CcParamsT }>(
    '/callcenter/:cc/reasons',
    { schema: { tags: ['agents'], summary: 'The Not Ready reasons: the operation-log table\'s (seed 004, operation 3) and the site\'s 200-250 (config busyReasons)', params: CcParams, response: { 200: ReasonsBody, ...errorResponses(403, 404) } } },
    (req) => {
      const cc = deps.engine.callCenter(req.params.cc);
      principalOf(req);
      return Promise.resolve({ notReady: busyReasons(cc) });
    },
  );
}
