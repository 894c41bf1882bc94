/**
 * The composition root: builds every part of one ccswitch instance from a configuration and
 * its connections. Nothing here reads the environment or opens connections by itself;
 * app/main.ts does that and passes them in.
 */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { AgentEngine } from '../lib/agent/engine';
import type { Config } from '../lib/config/schema';
import type { Logger } from '../lib/logger';
import { CallGuard } from '../lib/calls/guard';
import { CommandBus } from '../lib/conversation/commandBus';
import { ConversationStore } from '../lib/conversation/store';
import { Selector } from '../lib/acd/selector';
import { QueueStatsPublisher } from '../lib/acd/statsPublisher';
import { TaskStore } from '../lib/acd/taskStore';
import { CarrierRegistrations, isSipRequester, srfRegisterSender, type CarrierRegistrationTiming, type RegisterSender } from '../lib/sip/carrierRegistration';
import { Registrar } from '../lib/sip/registrar';
import { outboundAddresses } from '../lib/sip/trunks';
import { blockingConnection, defineScripts } from '../lib/store/redis';
import { DialogTracker } from './sip/dialogTracker';
import { DeadlineWorker } from '../lib/timers/deadlineWorker';
import { Deadlines } from '../lib/timers/deadlines';
import { UnavailableError } from '../lib/errors';
import { registerCallOut } from './calls/callOut';
import { registerXferOut } from './calls/transfer';
import { registerConsult } from './calls/consult';
import { registerMonitor } from './calls/monitor';
import { NO_MEDIA } from '../media/none';
import type { MediaServer } from '../media/port';
import { ConversationHub } from './conversation/hub';
import { EventHub } from './ws/eventHub';
import { TokenTable } from '../lib/auth/scope';
import { checkHealth, redisProbe, trunksProbe, type HealthProbe } from './health';
import { buildHttp } from './http/server';
import { createMetrics, type Metrics } from './metrics';
import { startSip, type SipApp } from './sip/sipApp';
import { createTrunkHealth, type TrunkHealth } from './sip/trunkHealth';
import type { InviteOutcome } from './sip/invite';
import type { SrfLike } from './sip/types';

/** Connections and collaborators of an instance. */
export interface AppDeps {
  redis: Redis;
  logger: Logger;
  metrics?: Metrics;
  /** A drachtio-srf application object; without one the instance serves REST only. */
  srf?: SrfLike;
  /** The media server; without one, FACs answer with a null SDP. */
  media?: MediaServer;
  /** Called when an INVITE is done with, with how it ended (besides the metric). */
  onInviteSettled?: (callId: string, outcome: InviteOutcome) => void;
  /** Health probe of the media part; reported down until it exists. */
  probes?: Partial<Record<'media', HealthProbe>>;
  /** Lease and retry timing of the carrier registrations (defaults: lib/sip/carrierRegistration.ts; tests shorten them). */
  carrierTiming?: Partial<CarrierRegistrationTiming>;
  /** The built browser UI served at /ui/ (default: dist/ui of the package; tests build one elsewhere). */
  uiDir?: string;
}

/** A running (or startable) ccswitch instance. */
export interface App {
  config: Config;
  engine: AgentEngine;
  registrar: Registrar;
  worker: DeadlineWorker;
  /** Crash safety of this instance's calls. */
  guard: CallGuard;
  /** Queue tasks and reservations. */
  tasks: TaskStore;
  /** Conversations in Redis. */
  conversations: ConversationStore;
  /** This instance's live conversations and the routing of operations on any conversation. */
  hub: ConversationHub;
  http: FastifyInstance;
  metrics: Metrics;
  /** OPTIONS pings of the trunks' outbound addresses (only with a drachtio-server). */
  trunkHealth?: TrunkHealth | undefined;
  /** Registration to carriers (one instance at a time keeps each; any instance shows the status). */
  registrations: CarrierRegistrations;
  /** Starts the timers and listens on `config.http`; resolves with the bound port. */
  start(): Promise<{ port: number }>;
  /** Stops taking work, stops timers, closes HTTP. Connections stay with the caller. */
  stop(): Promise<void>;
}

const notYet = (what: string): HealthProbe => () => ({ up: false, detail: `${what} is not connected (not part of this build yet)` });

/** The sender of an instance without a drachtio-server (it never holds a registration lease: not ready). */
const NO_SIP: RegisterSender = { register: (a) => Promise.resolve({ reason: 'this instance has no drachtio-server', cseq: a.cseq, unsent: true }) };

/** Builds an instance; call `start()` to run it. */
export async function createApp(config: Config, deps: AppDeps): Promise<App> {
  const logger = deps.logger.child({ instance: config.instanceId });
  const redis = defineScripts(deps.redis);
  const metrics = deps.metrics ?? createMetrics(false);
  const engine = new AgentEngine({ redis, config });
  const registrar = new Registrar({ redis, config });
  const tasks = new TaskStore({ redis, config });
  const selector = new Selector({ redis });
  const stats = new QueueStatsPublisher({ redis, config });
  const conversations = new ConversationStore({ redis, config });
  const guard = new CallGuard({
    redis,
    config,
    engine,
    logger: logger.child({ component: 'call-guard' }),
    endTask: (cc, id, queue, reason, agent) => tasks.end(cc, id, queue, reason, agent),
    endConversations: (cc, owner) => conversations.endOwnedBy(cc, owner),
  });
  const hub = new ConversationHub({ store: conversations, media: deps.media ?? NO_MEDIA, owner: guard.incarnation, logger: logger.child({ component: 'conversations' }) });
  // Operations on a conversation reach its owner through Redis (DESIGN.md 5.1). The reader
  // blocks its connection, so it gets one of its own, made from the one passed in.
  const blocking = blockingConnection(redis, 1000);
  blocking.on('error', (err: unknown) => logger.debug({ err }, 'command bus connection error'));
  const bus = new CommandBus({ redis, blocking, config, incarnation: guard.incarnation, logger: logger.child({ component: 'commands' }), execute: hub.execute });
  hub.useSender(bus);
  // The event stream's reader blocks its connection too. Its clients use the REST API's tokens.
  const tokens = new TokenTable(config.apiTokens);
  const streamConn = blockingConnection(redis, 1000);
  streamConn.on('error', (err: unknown) => logger.debug({ err }, 'event stream connection error'));
  const events = new EventHub({ config, redis, blocking: streamConn, logger: logger.child({ component: 'events' }), metrics, checkToken: (t) => tokens.lookup(t),
    conversationScope: async (cc, id) => {
      const c = await conversations.get(cc, id);
      return c === undefined || c.state === 'ended' ? undefined : c;
    },
  });
  let draining = false;

  // Trunks: OPTIONS pings of the outbound addresses (calls skip the down ones) and the
  // registration to carriers. Both send SIP, so they run only with a drachtio-server; the
  // registrations' status is in Redis and readable everywhere.
  let sip: SipApp | undefined;
  // Every dialog goes through the tracker, which ends them when the drachtio connection is lost.
  const dialogs = deps.srf === undefined ? undefined : new DialogTracker(deps.srf, logger.child({ component: 'sip' }));
  dialogs?.startKeepalive(config.sip.dialogKeepaliveSeconds * 1000);
  const srf = dialogs?.srf;
  const requester = srf !== undefined && isSipRequester(srf) ? srf : undefined;
  const trunkHealth = requester === undefined ? undefined : createTrunkHealth({ srf: requester, config, logger, metrics });
  const registrations = new CarrierRegistrations({
    redis,
    config,
    logger: logger.child({ component: 'carrier-registration' }),
    instance: config.instanceId,
    sender: requester === undefined ? NO_SIP : srfRegisterSender(requester),
    // Only an instance whose drachtio-server is connected may hold a registration.
    ready: () => sip?.status().up === true,
    ...(deps.carrierTiming === undefined ? {} : { timing: deps.carrierTiming }),
  });
  metrics.trunkRegistrations.read = async () => (await registrations.views()).map((v) => ({ trunk: v.trunk, registered: v.state === 'registered' }));

  // Calls the platform places for agents' operations (seed 002): call-out and transfers.
  const deadlines = new Deadlines({ redis, config });
  if (srf !== undefined) {
    const callDeps = { config, srf, media: deps.media ?? NO_MEDIA, hub, deadlines, trunkHealth };
    registerCallOut({ ...callDeps, engine, registrar, guard, logger: logger.child({ component: 'calls' }) });
    registerXferOut({ ...callDeps, logger: logger.child({ component: 'calls' }) });
    registerConsult({ hub, guard, media: deps.media ?? NO_MEDIA, engine, logger: logger.child({ component: 'calls' }) });
    registerMonitor({ ...callDeps, store: conversations, registrar, logger: logger.child({ component: 'calls' }) });
  } else {
    for (const op of ['callOut', 'xferOut', 'callAgent', 'consult', 'consultComplete', 'consultCancel', 'monitor', 'monitor.stop']) hub.handle(op, () => Promise.reject(new UnavailableError('placing calls (this instance has no drachtio-server)')));
  }

  const worker = new DeadlineWorker({
    redis,
    config,
    logger: logger.child({ component: 'deadlines' }),
    handlers: {
      wrapup: async (cc, [agent = '', queue = ''], token) => {
        const res = await engine.expireWrapUp(cc, agent, queue, token);
        for (const r of res.results) if (r.changed) metrics.transitions.inc({ op: 'wrap_up_expired', to: r.to });
      },
      regexp: async (cc, [agent = ''], token) => {
        const removed = await registrar.sweep(cc, agent, token);
        if (removed > 0) logger.info({ cc, agent, removed }, 'registrations expired');
      },
      guard: guard.onDeadline,
      maxwait: async (cc, [, taskId = '']) => {
        await tasks.flagMaxWait(cc, taskId);
      },
      maxdial: async (cc, [conversation = '', leg = '']) => {
        await hub.limitDue(cc, 'dial', conversation, leg);
      },
      maxtalk: async (cc, [conversation = '', leg = '']) => {
        await hub.limitDue(cc, 'talk', conversation, leg);
      },
      qstats: async (cc, args, token) => {
        await stats.onDeadline(cc, args, token);
      },
    },
    onFired: (kind, outcome) => metrics.deadlines.inc({ kind, outcome }),
  });

  const probes: Record<string, HealthProbe> = {
    redis: redisProbe(redis),
    drachtio: () => sip?.status() ?? { up: false, detail: 'no drachtio-server configured for this instance' },
    media: deps.probes?.media ?? notYet('media server (FreeSWITCH)'),
  };
  if (Object.keys(config.sip.trunks).length > 0)
    probes.trunks = trunksProbe({
      outbound: Object.fromEntries(Object.entries(config.sip.trunks).map(([name, t]) => [name, outboundAddresses(t)])),
      isUp: trunkHealth === undefined ? undefined : (trunk, address) => trunkHealth.isUp(trunk, address),
      registrations: registrations.trunks.length > 0 ? () => registrations.views() : undefined,
    });
  const http = await buildHttp({
    config,
    engine,
    registrar,
    redis,
    logger,
    metrics,
    conversations,
    hub,
    tasks,
    events,
    health: () => checkHealth(probes, config.instanceId, draining),
    trunkHealth,
    registrations,
    uiDir: deps.uiDir,
  });

  return {
    config,
    engine,
    registrar,
    worker,
    http,
    metrics,
    guard,
    tasks,
    conversations,
    hub,
    trunkHealth,
    registrations,
    async start() {
      await stats.seed();
      worker.start();
      guard.start();
      bus.start(Object.keys(config.callcenters));
      await events.start();
      if (srf !== undefined)
        sip = startSip({
          srf,
          redis,
          config,
          logger,
          engine,
          registrar,
          media: deps.media ?? NO_MEDIA,
          guard,
          tasks,
          selector,
          hub,
          conversations,
          trunkHealth,
          draining: () => draining,
          onFac: (action, status) => metrics.facs.inc({ action, status: String(status) }),
          onSettled: (callId, outcome) => {
            metrics.invites.inc({ outcome });
            deps.onInviteSettled?.(callId, outcome);
          },
        });
      if (sip !== undefined) {
        trunkHealth?.start();
        registrations.start();
      }
      await http.listen({ host: config.http.host, port: config.http.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : config.http.port;
      logger.info({ port, host: config.http.host }, 'ccswitch listening');
      if (config.apiTokens.length === 0) logger.warn('no API tokens configured: every REST request will be refused with 401 (set API_TOKENS)');
      return { port };
    },
    async stop() {
      // New calls get 503 from here on; calls in progress may finish within the drain time,
      // REST requests in flight finish. Calls still up after it are ended for their agents
      // by the call guard of another (or the next) instance.
      draining = true;
      if (sip !== undefined && sip.inFlight() > 0) {
        logger.info({ calls: sip.inFlight(), drainSeconds: config.sip.drainSeconds }, 'draining calls before stopping');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), config.sip.drainSeconds * 1000)));
        const how = await Promise.race([sip.drained().then(() => 'drained' as const), timeout]);
        clearTimeout(timer);
        if (how === 'timeout') logger.warn({ calls: sip.inFlight() }, 'drain time over; stopping with calls up');
      }
      // Timers first: a stopping instance must not fire deadlines another instance will take over.
      // The carrier registrations are handed over (leases released) while Redis is still there.
      trunkHealth?.stop();
      await registrations.stop();
      await guard.stop();
      await worker.stop();
      // The two blocking readers end within one block (1 s) each; wait for both at once.
      await Promise.all([bus.stop(), events.stop()]);
      blocking.disconnect();
      streamConn.disconnect();
      await http.close();
      dialogs?.stop();
      sip?.stop();
      logger.info('ccswitch stopped');
    },
  };
}
