/**
 * The SIP side of an instance: the drachtio-srf connection (capped reconnect backoff,
 * keep-alive pings, an error listener so a dropped socket never crashes the process),
 * the REGISTER and INVITE handlers, and the connection state /healthz reports.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../../lib/agent/engine';
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { NonceIssuer } from '../../lib/sip/digest';
import type { Registrar } from '../../lib/sip/registrar';
import { TrunkTable } from '../../lib/sip/trunks';
import type { MediaServer } from '../../media/port';
import type { ComponentStatus } from '../health';
import type { ConversationHub } from '../conversation/hub';
import type { ConversationStore } from '../../lib/conversation/store';
import { monitorByPhone } from '../calls/monitor';
import { forwardCallHandler } from '../calls/forwardCall';
import type { TrunkUpCheck } from '../calls/routedDial';
import type { CallGuard } from '../../lib/calls/guard';
import { agentCallHandler } from './agentCall';
import { queueCallHandler } from './queueCall';
import { registerCallAgent } from '../calls/callAgent';
import type { Selector } from '../../lib/acd/selector';
import type { TaskStore } from '../../lib/acd/taskStore';
import { SipAuthenticator } from './auth';
import { answerCrashesDrachtio } from './drachtioQuirks';
import { inviteHandler, type InviteOutcome } from './invite';
import { registerHandler } from './register';
import type { SipRequest, SipResponse, SrfLike } from './types';

/** Dependencies of {@link startSip}. */
export interface SipDeps {
  srf: SrfLike;
  redis: Redis;
  config: Config;
  logger: Logger;
  engine: AgentEngine;
  registrar: Registrar;
  media: MediaServer;
  guard: CallGuard;
  tasks: TaskStore;
  selector: Selector;
  /** The instance's conversations (calls are built on them). */
  hub: ConversationHub;
  /** Conversations in Redis (monitoring finds the agent's active one). */
  conversations: ConversationStore;
  /** Which outbound trunk addresses answer their OPTIONS pings (outbound failover skips the others). */
  trunkHealth?: TrunkUpCheck | undefined;
  draining: () => boolean;
  onFac?: (action: string, status: number) => void;
  onSettled?: (callId: string, outcome: InviteOutcome) => void;
}

/** The running SIP side. */
export interface SipApp {
  status(): ComponentStatus;
  /** Requests being handled now (INVITE handlers last as long as their calls). */
  inFlight(): number;
  /** Resolves when no request is being handled. */
  drained(): Promise<void>;
  stop(): void;
}

/**
 * The digest nonce key, shared by every instance through Redis (SET NX: the first instance
 * creates it), so a nonce issued by one instance verifies on any other.
 */
function sharedNonces(redis: Redis, config: Config): () => Promise<NonceIssuer> {
  let issuer: Promise<NonceIssuer> | undefined;
  const key = `${config.redis.keyPrefix}:sip:nonce-key`;
  return () => {
    issuer ??= (async () => {
      await redis.set(key, randomBytes(32).toString('base64'), 'NX');
      const b64 = await redis.get(key);
      if (b64 === null) throw new Error('nonce key vanished');
      return new NonceIssuer(Buffer.from(b64, 'base64'), config.sip.nonceTtlSeconds * 1000);
    })().catch((err: unknown) => {
      issuer = undefined; // try again on the next request
      throw err;
    });
    return issuer;
  };
}

/**
 * Stops drachtio-srf for good. Its `disconnect()` throws when no socket is connected, before
 * it marks itself closing, so while it is between reconnect attempts the retry timer would
 * keep the process alive forever; in that case mark its wire protocol closing and clear the
 * timer (drachtio-srf 5.0.x internals: `_app.client.wp`).
 */
function shutdownSrf(srf: SrfLike): void {
  try {
    srf.disconnect();
  } catch {
    const wp = (srf as unknown as { _app?: { client?: { wp?: { closing: boolean; reconnectVars?: { retryTimer?: NodeJS.Timeout | null } } } } })._app?.client?.wp;
    if (wp !== undefined) {
      wp.closing = true;
      if (wp.reconnectVars?.retryTimer) clearTimeout(wp.reconnectVars.retryTimer);
      if (wp.reconnectVars) wp.reconnectVars.retryTimer = null;
    }
  }
}

/** The part of drachtio-srf's wire protocol (5.0.x `_app.client.wp`) the framing guard uses. */
interface WireProtocolLike {
  on(event: 'connect', fn: (socket: Socket) => void): unknown;
  _onData(socket: Socket, chunk: Buffer): void;
}

/**
 * Keeps a garbled drachtio connection from ending the process. drachtio-server 0.9.4 writes to
 * its app connection with overlapping asynchronous writes (src/client.cpp `Client::send`, no
 * write queue), so a large message it forwards (a ~150 KB request from anyone on the network)
 * can reach us interleaved with the messages sent meanwhile. drachtio-srf then throws from the
 * socket's data handler ('invalid message, missing length specifier', 'invalid msg type'): an
 * uncaught exception, and every later byte on that connection is out of step anyway. Each new
 * socket's data handler is wrapped (drachtio-srf installs its own on the socket before 'connect'
 * and no data arrives before it): a throw drops the connection, so drachtio-srf reconnects with
 * its usual backoff and drachtio-server sees a fresh client. Requests in flight on the dropped
 * connection go unanswered; drachtio-server times them out.
 */
function guardWireFraming(srf: SrfLike, onGarbled: (err: unknown) => void): boolean {
  const wp = (srf as unknown as { _app?: { client?: { wp?: Partial<WireProtocolLike> } } })._app?.client?.wp;
  if (wp === undefined || typeof wp.on !== 'function' || typeof wp._onData !== 'function') return false;
  const guarded = wp as WireProtocolLike;
  guarded.on('connect', (socket) => {
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => {
      try {
        guarded._onData(socket, chunk);
      } catch (err) {
        onGarbled(err);
        socket.destroy();
      }
    });
  });
  return true;
}

/** Wires the handlers and connects to drachtio-server. */
export function startSip(deps: SipDeps): SipApp {
  const { srf, config } = deps;
  const log = deps.logger.child({ component: 'sip' });
  let state: ComponentStatus = { up: false, detail: 'connecting' };
  let hostport = '';
  let stopped = false;

  const auth = new SipAuthenticator({ redis: deps.redis, config, nonces: sharedNonces(deps.redis, config), logger: log });
  const onRegister = registerHandler({ config, auth, registrar: deps.registrar, logger: log, server: () => hostport });
  const agentCall = agentCallHandler({ config, engine: deps.engine, registrar: deps.registrar, media: deps.media, guard: deps.guard, hub: deps.hub, srf });
  const trunks = new TrunkTable(config.sip.trunks);
  const queueCall = queueCallHandler({ config, engine: deps.engine, registrar: deps.registrar, store: deps.tasks, selector: deps.selector, media: deps.media, guard: deps.guard, hub: deps.hub, srf, logger: deps.logger.child({ component: 'calls' }), trunkHealth: deps.trunkHealth });
  const forward = forwardCallHandler({ config, srf, media: deps.media, hub: deps.hub, trunkHealth: deps.trunkHealth });
  const outOfHours = async (cc: string, e: Parameters<TaskStore['outOfHours']>[1]): Promise<void> => {
    await deps.tasks.outOfHours(cc, e);
  };
  // call_agent offers its task with the queue calls' offer (same leases, same fencing).
  registerCallAgent({
    config, srf, media: deps.media, hub: deps.hub, engine: deps.engine, registrar: deps.registrar, guard: deps.guard,
    tasks: deps.tasks, selector: deps.selector, offer: queueCall.offer, logger: deps.logger.child({ component: 'calls' }),
  });
  const monitorDeps = { config, srf, media: deps.media, hub: deps.hub, store: deps.conversations, registrar: deps.registrar, logger: deps.logger.child({ component: 'calls' }) };
  const monitor: NonNullable<Parameters<typeof inviteHandler>[0]['monitor']> = (req, res, m) => monitorByPhone(monitorDeps, req, res, m);
  const onInvite = inviteHandler({ config, auth, trunks, engine: deps.engine, media: deps.media, srf, logger: log, draining: deps.draining, agentCall, queueCall, monitor, forward, outOfHours, ...(deps.onFac ? { onFac: deps.onFac } : {}), ...(deps.onSettled ? { onSettled: deps.onSettled } : {}) });
  const running = new Set<Promise<void>>();
  let onIdle: (() => void)[] = [];
  const guard =
    (name: string, fn: (req: SipRequest, res: SipResponse) => Promise<void>) =>
    (req: SipRequest, res: SipResponse): void => {
      // drachtio-srf's Request has no callId property (only get('Call-ID')). Every handler keys
      // calls, registrations and agent states by it, so it is set once, here.
      if (typeof req.callId !== 'string' || req.callId === '') req.callId = req.get('Call-ID') ?? '';
      const p: Promise<void> = fn(req, res)
        .catch((err: unknown) => {
          log.error({ err, callId: req.callId }, `${name} handler failed`);
          if (res.finalResponseSent !== true) res.send(500, 'Server Internal Error');
        })
        .finally(() => {
          running.delete(p);
          if (running.size === 0) {
            const waiting = onIdle;
            onIdle = [];
            for (const w of waiting) w();
          }
        });
      running.add(p);
    };
  srf.register(guard('REGISTER', onRegister));
  srf.invite((req, res) => {
    if (answerCrashesDrachtio(req)) {
      log.warn({ callId: req.get('Call-ID'), source: `${req.source_address}:${req.source_port}`, contact: req.get('Contact')?.slice(0, 100) }, 'INVITE over UDP with a Contact without a host dropped unanswered: answering it would crash drachtio-server');
      deps.onSettled?.(req.get('Call-ID') ?? '', 'dropped');
      return;
    }
    guard('INVITE', onInvite)(req, res);
  });

  srf.on('connect', (err, hp) => {
    if (err) {
      // A wrong secret would otherwise reconnect forever without a word: say it and stop.
      state = { up: false, detail: `drachtio refused the connection: ${err.message}` };
      log.error({ err: err.message }, 'drachtio-server refused the connection; check DRACHTIO_SECRET');
      if (/authenticate/i.test(err.message)) shutdownSrf(srf);
      return;
    }
    hostport = hp;
    state = { up: true, detail: hp };
    log.info({ hostport: hp }, 'connected to drachtio-server');
  });
  srf.on('error', (err) => {
    state = { up: false, detail: err instanceof Error ? err.message : String(err) };
    log.warn({ err: state.detail }, 'drachtio connection error');
  });
  srf.on('close', () => {
    if (stopped) return;
    state = { up: false, detail: 'connection closed; reconnecting' };
    log.warn('drachtio connection closed; reconnecting');
  });
  srf.on('reconnecting', (info) => log.info({ info }, 'reconnecting to drachtio-server'));
  srf.connect({
    host: config.drachtio.host,
    port: config.drachtio.port,
    secret: config.drachtio.secret,
    reconnect: { retryMaxDelay: 5000 },
    enablePing: true,
    pingInterval: 15000,
  });
  const framingGuarded = guardWireFraming(srf, (err) => {
    state = { up: false, detail: 'drachtio connection garbled; reconnecting' };
    log.error({ err: err instanceof Error ? err.message.slice(0, 200) : String(err) }, 'drachtio connection out of step (drachtio-server interleaved a large message): dropped, reconnecting');
  });
  if (!framingGuarded) log.warn('drachtio-srf internals changed: a garbled drachtio connection would not be caught');

  return {
    status: () => state,
    inFlight: () => running.size,
    drained: () => (running.size === 0 ? Promise.resolve() : new Promise((resolve) => onIdle.push(resolve))),
    stop: () => {
      stopped = true;
      state = { up: false, detail: 'stopped' };
      shutdownSrf(srf);
    },
  };
}
