/**
 * The token holder of a request (lib/auth/scope.ts), set by the server's auth hook before any
 * route runs; routes ask it before they touch anything.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../lib/auth/scope';
import { CcsError } from '../../lib/errors';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who sent the request (undefined only on the public paths). */
    principal: Principal | undefined;
  }
}

/** Declares the request property (Fastify wants it known before the first request). */
export function attachPrincipal(app: FastifyInstance): void {
  app.decorateRequest('principal', undefined);
}

/** The request's token holder; a route reached without one is a wiring mistake, refused as unauthorized. */
export function principalOf(req: FastifyRequest): Principal {
  if (req.principal === undefined) throw new CcsError('unauthorized', 'missing bearer token');
  return req.principal;
}
