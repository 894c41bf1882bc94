/**
 * The HTTP server: REST API (JSON, or form-encoded bodies), bearer auth, OpenAPI at /docs,
 * /healthz and /metrics. Errors all leave through {@link toHttpError}.
 */
import formbody from '@fastify/formbody';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../../lib/agent/engine';
import type { Config } from '../../lib/config/schema';
import { CcsError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { TaskStore } from '../../lib/acd/taskStore';
import type { ConversationStore } from '../../lib/conversation/store';
import type { Registrar } from '../../lib/sip/registrar';
import type { ConversationHub } from '../conversation/hub';
import type { EventHub } from '../ws/eventHub';
import type { HealthReport } from '../health';
import type { Metrics } from '../metrics';
import { TokenTable } from '../../lib/auth/scope';
import { ForbiddenError } from '../../lib/errors';
import { attachPrincipal } from './principal';
import { FailureLimiter } from '../../lib/security/failureLimiter';
import { toHttpError } from './errors';
import { agentRoutes } from './routes/agents';
import { conversationRoutes } from './routes/conversations';
import { offerRoutes } from './routes/offers';
import { callRoutes } from './routes/calls';
import { oplogRoutes } from './routes/oplog';
import { supervisorRoutes } from './routes/supervisors';
import { queueRoutes } from './routes/queues';
import { meRoutes } from './routes/me';
import { uiRoutes } from './ui';
import { trunkRoutes, type TrunkRouteDeps } from './routes/trunks';
import { ErrorBody } from './schemas';

/** What the HTTP server needs. */
export interface HttpDeps {
  config: Config;
  engine: AgentEngine;
  registrar: Registrar;
  redis: Redis;
  logger: Logger;
  metrics: Metrics;
  conversations: ConversationStore;
  hub: ConversationHub;
  tasks: TaskStore;
  /** The WebSocket event stream (`GET /callcenter/{cc}/events`). */
  events: EventHub;
  health: () => Promise<HealthReport>;
  /** This instance's OPTIONS pings of the trunks (`GET /callcenter/{cc}/trunks`). */
  trunkHealth?: TrunkRouteDeps['trunkHealth'];
  /** The carrier registrations' status (same route). */
  registrations?: TrunkRouteDeps['registrations'];
  /** The built browser UI served at /ui/ (default: dist/ui of the package). */
  uiDir?: string | undefined;
}

/**
 * Paths served without a token: liveness probes, scrapers, the API documentation and the
 * browser UI's static files (the page asks for the token itself).
 */
const PUBLIC = /^\/(healthz|metrics|docs|ui)(\/|\?|$)/;
/**
 * The event stream's upgrade: authenticated by the socket itself (the header, or a first auth
 * frame, since browsers cannot set headers on a WebSocket), so its refusals are close codes.
 */
const EVENTS = /^\/callcenter\/[^/?]+\/events(\?|$)/;

/** The OpenAPI entry of the event stream's upgrade (its protocol is in the README). */
const EVENTS_UPGRADE_DOC = {
  get: {
    tags: ['events'],
    summary: 'WebSocket upgrade: the live event stream',
    description:
      'Upgrade with `Connection: Upgrade` / `Upgrade: websocket`. Authenticate with `Authorization: Bearer` on the upgrade or a first `{"op":"auth","token"}` frame ' +
      '(close 4001 otherwise). `{"op":"subscribe","topics":["queue:8000","agent:1001","conversation:<id>","callcenter"],"since"?:N}` gets a snapshot per topic ' +
      'stamped with its sequence (or the events after `since`, or a gap snapshot), then every later event in order as `{"op":"event","event":{...}}`. ' +
      'Slow clients are closed with 4008 and `lastSeq`; errors are `{"op":"error","error","message"}` frames.',
    parameters: [{ name: 'cc', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } }],
    responses: {
      '101': { description: 'Switching Protocols: the event stream' },
      '400': { description: 'A call center id that is no id, or a request that does not parse' },
      '401': { description: 'A plain GET (no upgrade) without a valid bearer token' },
      '403': { description: 'A plain GET with a token of another call center' },
      '404': { description: 'Unknown call center (before the upgrade)' },
      '426': { description: 'A plain GET with a valid token: this route only upgrades to a WebSocket' },
      '429': { description: 'Too many failed bearer tokens from this address' },
      '431': { description: 'Request line and headers too large' },
    },
  },
};

/**
 * Statuses any route may answer whatever it does, added to every route's documented
 * responses: 400 (a request that does not parse or fails a schema), 431 (a request line and
 * headers over Node's limit, e.g. a huge query string), 401 and 429 (the bearer check,
 * outside the public paths), and for POST 413 and 415 (the body parsers).
 */
function commonResponses(method: string, url: string): number[] {
  const authenticated = !PUBLIC.test(url);
  return [400, 431, ...(authenticated ? [401, 429] : []), ...(method === 'POST' ? [413, 415] : [])];
}

/** Fastify's own answer to a client error (unparsable request line, headers too large), as `{error, message}`. */
function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, error, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'the request took too long'] : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large', 'the request headers are too large'] : [400, 'bad_request', 'the request does not parse as HTTP'];
  const body = JSON.stringify({ error, message });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

/** The health report (app/health.ts), as it is. */
const HealthBody = { type: 'object', additionalProperties: true, properties: { status: { type: 'string', enum: ['ok', 'degraded', 'down'] } } } as const;

/** The path of the first non-finite number in validated request data (objects and arrays, a few levels deep), if any. */
function nonFinite(path: string, v: unknown, depth = 0): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path;
  if (v === null || typeof v !== 'object' || depth > 8) return undefined;
  for (const [k, x] of Object.entries(v)) {
    const found = nonFinite(`${path}/${k}`, x, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Builds (does not listen) the Fastify instance. */
export async function buildHttp(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, logger, metrics } = deps;
  const tokens = new TokenTable(config.apiTokens);
  const authFailures = new FailureLimiter(deps.redis, config.redis.keyPrefix, 'http', config.http.authFailureLimit);
  /** Counts a wrong bearer token of the request's address; the one that reaches the limit is logged. */
  const countFailure = async (req: FastifyRequest): Promise<void> => {
    if (await authFailures.failed(req.ip)) req.log.warn({ source: req.ip, ...config.http.authFailureLimit }, 'bearer-token failures over the limit: the source is refused for the rest of the window');
  };
  // Typed as Fastify's logger interface so the instance is the plain FastifyInstance routes expect.
  const httpLogger: FastifyBaseLogger = logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: httpLogger,
    // Per-request lines are left to the metrics; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    return503OnClosing: true,
    clientErrorHandler,
    // Router refusals (invalid percent-encoding, a path parameter over maxParamLength) in the
    // API's error shape, and as the 400 a too-long parameter gets from the schema too.
    frameworkErrors: (err, _req, res) => {
      const reply = res as FastifyReply;
      if (err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH') return void reply.status(400).send({ error: 'bad_request', message: err.message });
      const { status, body } = toHttpError(err);
      return void reply.status(status).send(body);
    },
    // An unknown field is a client mistake to report (400), not to drop silently.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  });

  // POST bodies are optional for routes whose fields are all optional: an empty JSON body
  // is `{}`. Everything else goes through Fastify's own parser (prototype-poisoning safe).
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.http.bodyLimitBytes }, (req, body, done) => {
    if (typeof body === 'string' && body.trim() === '') {
      done(null, {});
      return;
    }
    void jsonParser(req, body as string, done);
  });
  await app.register(formbody, { bodyLimit: config.http.bodyLimitBytes });
  // JSON and form bodies only, as documented: a text/plain body is 415, not a string the schema refuses.
  app.removeContentTypeParser('text/plain');
  // The hard frame limit; frames above events.maxFrameBytes get an error frame (app/ws/session.ts).
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.method === 'POST' && (req.body === undefined || req.body === null)) req.body = {};
    done();
  });
  // Ajv coerces a query or form string such as `1e400` or `Infinity` to Infinity and then
  // skips minimum/maximum for it (they only test finite numbers), so `limit=Infinity` would
  // pass `maximum: 1000`. No field of the API takes an infinite number: refuse it here, after
  // validation, as the schema would have.
  app.addHook('preHandler', (req, _reply, done) => {
    const where = nonFinite('querystring', req.query) ?? nonFinite('body', req.body) ?? nonFinite('params', req.params);
    if (where === undefined) return done();
    done(Object.assign(new Error(`${where} must be a finite number`), { validation: [{ instancePath: where, message: 'must be a finite number' }], statusCode: 400 }));
  });

  app.addSchema(ErrorBody);
  // Before swagger registers its own hook, so that the document shows the added statuses.
  app.addHook('onRoute', (route) => {
    if (route.schema === undefined || route.schema.hide === true) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const response: Record<string, unknown> = { ...((route.schema.response as Record<string, unknown> | undefined) ?? {}) };
    for (const m of methods) for (const status of commonResponses(m, route.url)) response[status] ??= { $ref: 'Error#' };
    route.schema.response = response;
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'ccswitch', description: 'Call-center agent, queue and operation-log API', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'agents', description: 'Agent states per queue' },
        { name: 'queues', description: 'Queues and their members' },
        { name: 'conversations', description: 'Conversations (seed 002): legs and their listen/speak modes, hold and resume' },
        { name: 'calls', description: 'Calls placed for agents (seed 002): call-out, transfer out, blind transfer to a queue' },
        { name: 'oplog', description: 'Operation log with seed 004 codes' },
        { name: 'supervisors', description: 'Supervisors (DESIGN.md section 12): forced state changes and monitoring' },
        { name: 'trunks', description: 'SIP trunks: outbound address health (OPTIONS pings) and carrier registration' },
        { name: 'events', description: 'WebSocket event stream (see the README for the protocol)' },
        { name: 'ui', description: 'The browser UI: wallboard, agent console, supervisor view (static files; the page asks for the token)' },
        { name: 'system', description: 'Health and metrics' },
      ],
    },
    // @fastify/websocket hides WebSocket routes from the document; the upgrade is described here.
    transformObject: (doc) => {
      const openapi = 'openapiObject' in doc ? doc.openapiObject : {};
      return { ...openapi, paths: { ...openapi.paths, '/callcenter/{cc}/events': EVENTS_UPGRADE_DOC } };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  attachPrincipal(app);
  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC.test(req.url)) return;
    if (EVENTS.test(req.url) && req.headers.upgrade?.toLowerCase() === 'websocket') return;
    // A source over its bearer-failure limit is refused whatever token it sends (brute force).
    if (await authFailures.blocked(req.ip)) {
      void reply.header('Retry-After', String(Math.ceil(config.http.authFailureLimit.seconds)));
      throw new CcsError('too_many_failures', 'too many failed bearer tokens from this address; try again later');
    }
    const principal = tokens.fromHeader(req.headers.authorization);
    if (principal === undefined) {
      await countFailure(req);
      void reply.header('WWW-Authenticate', 'Bearer realm="ccswitch"');
      throw new CcsError('unauthorized', tokens.empty ? 'no API tokens are configured (set API_TOKENS)' : 'missing or invalid bearer token');
    }
    req.principal = principal;
    // A token of one call center never reaches another's routes.
    const cc = /^\/callcenter\/([^/?]+)/.exec(req.url)?.[1];
    if (cc !== undefined) principal.useCallCenter(decodeURIComponent(cc));
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) req.log.error({ err, url: req.url }, 'request failed');
    // Who tried to act outside its scope is worth a line (the token's name, never the token).
    else if (err instanceof ForbiddenError) req.log.warn({ token: req.principal?.name, role: req.principal?.role, method: req.method, url: req.url.split('?')[0], why: err.message }, 'request outside the token\'s scope refused');
    else req.log.debug({ url: req.url, status, error: body.error }, 'request refused');
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler(async (req, reply) => reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));

  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness/readiness: Redis, drachtio, media server (503 when Redis is down)', security: [], response: { 200: HealthBody, 503: HealthBody } } }, async (_req, reply) => {
    const report = await deps.health();
    return reply.status(report.status === 'down' ? 503 : 200).send(report);
  });
  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics', security: [], response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } }, async (_req, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const onApplied = (op: string, result: { results: { to: string; changed: boolean }[] }): void => {
    for (const r of result.results) if (r.changed) metrics.transitions.inc({ op, to: r.to });
  };
  agentRoutes(app, { engine: deps.engine, registrar: deps.registrar, redis: deps.redis, conversations: deps.conversations, onApplied });
  conversationRoutes(app, { engine: deps.engine, conversations: deps.conversations, hub: deps.hub });
  offerRoutes(app, { engine: deps.engine, tasks: deps.tasks, hub: deps.hub });
  callRoutes(app, { config: deps.config, engine: deps.engine, conversations: deps.conversations, hub: deps.hub });
  app.route<{ Params: { cc: string } }>({
    method: 'GET',
    url: '/callcenter/:cc/events',
    schema: { params: { type: 'object', properties: { cc: { type: 'string', maxLength: 64 } }, required: ['cc'] } },
    preValidation: async (req, reply) => {
      if (!deps.events.knows(req.params.cc)) return void (await reply.status(404).send({ error: 'unknown_callcenter', message: `unknown call center '${req.params.cc}'` }));
      // The event socket's tokens are under the same brute-force limit as the REST API's.
      if (await authFailures.blocked(req.ip)) {
        await reply.status(429).header('Retry-After', String(Math.ceil(config.http.authFailureLimit.seconds))).send({ error: 'too_many_failures', message: 'too many failed bearer tokens from this address; try again later' });
      }
    },
    // A plain GET (the auth hook has checked its token): the route only upgrades.
    handler: async (_req, reply) =>
      reply.status(426).header('Upgrade', 'websocket').send({ error: 'upgrade_required', message: 'the event stream is a WebSocket: send Connection: Upgrade and Upgrade: websocket' }),
    wsHandler: (socket, req) =>
      deps.events.accept(socket, req.params.cc, req.headers.authorization, () => {
        void countFailure(req).catch((err: unknown) => req.log.warn({ err }, 'counting a token failure failed'));
      }),
  });
  queueRoutes(app, { engine: deps.engine, redis: deps.redis });
  const softphone = deps.config.sip.softphone === undefined ? undefined : { wsUrl: deps.config.sip.softphone.wsUrl, domain: deps.config.sip.realm ?? 'ccswitch' };
  meRoutes(app, { engine: deps.engine, softphone });
  supervisorRoutes(app, { engine: deps.engine, registrar: deps.registrar, conversations: deps.conversations, hub: deps.hub, onApplied });
  oplogRoutes(app, { engine: deps.engine, redis: deps.redis, tasks: deps.tasks, conversations: deps.conversations, logger: deps.logger });
  trunkRoutes(app, { config: deps.config, trunkHealth: deps.trunkHealth, registrations: deps.registrations });
  uiRoutes(app, { dir: deps.uiDir, logger: deps.logger.child({ component: 'ui' }), ...(softphone === undefined ? {} : { connect: [softphone.wsUrl] }) });
  return app;
}
