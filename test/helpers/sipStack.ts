/**
 * One ccswitch instance wired to a real drachtio-server and its own Redis: the set-up every
 * test/sip suite with SIP.js phones needs. Media is the static-SDP fake by default; with
 * `media: 'freeswitch'` (the test/media layer) a real FreeSWITCH is started with
 * config/freeswitch/ and the drachtio-fsmrf adapter is wired to it as app/main.ts does.
 */
import { EventEmitter, once } from 'node:events';
import Srf from 'drachtio-srf';
import { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import type { InviteOutcome } from '../../app/sip/invite';
import type { SrfLike } from '../../app/sip/types';
import { writeFileSync } from 'node:fs';
import pino from 'pino';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { FakeMediaServer } from '../../media/fake';
import { createFsmrfMediaServer, type FsmrfMediaServer } from '../../media/fsmrf';
import type { MediaServer } from '../../media/port';
import { testConfig, type TestConfigOptions } from './config';
import { startDrachtio, type DrachtioServer } from './drachtio';
import { startFreeSwitch, type FreeSwitchServer } from './freeswitch';
import { startPhone, type Phone } from './phone';
import { startRedis, type RedisServer } from './redisServer';

/** A running stack. */
export interface SipStack<M extends MediaServer = FakeMediaServer> {
  app: App;
  /** The instance's HTTP base URL (REST, /ui/). */
  base: string;
  raw: Redis;
  redisServer: RedisServer;
  drachtio: DrachtioServer;
  media: M;
  /**
   * A registered SIP.js phone for `user` (password `secret-<user>`), stopped by
   * `reset()`/`close()`; with `rtp`, its SDP names that RTP address (a listenRtp port).
   */
  phone(user: string, o?: { rtp?: { ip: string; port: number; telephoneEvent?: number | undefined }; onRemoteSdp?: (sdp: string) => void }): Promise<Phone>;
  /**
   * Resolves with the outcome of the next INVITE whose handler finishes from now on (its call
   * released, its endpoints destroyed); digest challenges (407) do not count.
   */
  nextSettled(): Promise<InviteOutcome>;
  /** Stops the phones and empties the call center's keys (between tests). */
  reset(): Promise<void>;
  /** Stops everything; `appStopped` when a test has already stopped the instance. */
  close(o?: { appStopped?: boolean }): Promise<void>;
}

/** A stack whose media server is a real FreeSWITCH. */
export interface FreeSwitchSipStack extends SipStack<FsmrfMediaServer> {
  freeswitch: FreeSwitchServer;
}

/** Options of {@link startSipStack}: the test configuration plus how media is provided. */
export type SipStackOptions = Omit<TestConfigOptions, 'redisUrl' | 'drachtio'> & {
  onInviteSettled?: (callId: string, outcome: InviteOutcome) => void;
  /** `fake` (default): static SDP, records conversations; `freeswitch`: a real FreeSWITCH. */
  media?: 'fake' | 'freeswitch';
  /** The built browser UI to serve at /ui/ (test/ui; see test/helpers/browser.ts builtUi). */
  uiDir?: string;
  /** `sip.softphone.wsUrl` points at this drachtio's WebSocket (the browser softphone). */
  softphone?: boolean;
};

/** Starts Redis, drachtio-server (and FreeSWITCH if asked) and an instance connected to them. */
export function startSipStack(o: SipStackOptions & { media?: 'fake' }): Promise<SipStack>;
export function startSipStack(o: SipStackOptions & { media: 'freeswitch' }): Promise<FreeSwitchSipStack>;
export async function startSipStack(o: SipStackOptions): Promise<SipStack<MediaServer> & { freeswitch?: FreeSwitchServer }> {
  const { onInviteSettled, media: mediaKind = 'fake', uiDir, softphone, ...configOptions } = o;
  const [redisServer, drachtio, freeswitch] = await Promise.all([startRedis(), startDrachtio(), mediaKind === 'freeswitch' ? startFreeSwitch() : undefined]);
  const sip = softphone === true ? { ...configOptions.sip, softphone: { wsUrl: `ws://127.0.0.1:${drachtio.wsPort}` } } : configOptions.sip;
  const config = {
    ...testConfig({ ...configOptions, ...(sip === undefined ? {} : { sip }), redisUrl: redisServer.url, drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret } }),
    ...(freeswitch ? { freeswitch: freeswitch.esl } : {}),
  };
  // CCS_TEST_LOG=<file> writes the app's debug log there, to see what a failing SIP test did.
  const logFile = process.env.CCS_TEST_LOG;
  const logger = logFile === undefined || logFile === '' ? createLogger('silent') : createLogger('debug', {}, pino.destination({ dest: logFile, sync: false }));
  const redis = createRedis(redisServer.url);
  const raw = new Redis(redisServer.url);
  const srf = new Srf() as unknown as SrfLike & EventEmitter;
  // As app/main.ts: the adapter connects in the background and is the media health probe.
  const fsmrf = freeswitch ? createFsmrfMediaServer({ srf, freeswitch: config.freeswitch, logger }) : undefined;
  const media: MediaServer = fsmrf ?? new FakeMediaServer();
  const connected = once(srf, 'connect');
  const settled = new EventEmitter();
  const app = await createApp(config, {
    redis,
    logger,
    srf,
    media,
    ...(fsmrf ? { probes: { media: () => fsmrf.health() } } : {}),
    ...(uiDir === undefined ? {} : { uiDir }),
    onInviteSettled: (callId, outcome) => {
      onInviteSettled?.(callId, outcome);
      settled.emit('settled', outcome);
    },
  });
  const { port: httpPort } = await app.start();
  const [err] = (await connected) as [Error | null];
  if (err) throw err;
  // Calls to queues are refused with 503 until the media server is up.
  await fsmrf?.whenAvailable(30000);
  const phones: Phone[] = [];
  return {
    app,
    base: `http://127.0.0.1:${httpPort}`,
    raw,
    redisServer,
    drachtio,
    media,
    ...(freeswitch ? { freeswitch } : {}),
    nextSettled: () =>
      new Promise((resolve) => {
        const on = (outcome: InviteOutcome): void => {
          if (outcome === 'challenged') return;
          settled.off('settled', on);
          resolve(outcome);
        };
        settled.on('settled', on);
      }),
    async phone(user, po = {}) {
      const p = await startPhone({ user, password: `secret-${user}`, wsPort: drachtio.wsPort, ...(po.rtp ? { rtp: po.rtp } : {}), ...(po.onRemoteSdp ? { onRemoteSdp: po.onRemoteSdp } : {}) });
      phones.push(p);
      await p.register();
      return p;
    },
    async reset() {
      for (const p of phones.splice(0)) await p.stop();
      const keys = await raw.keys('ccs:{default}:*');
      if (keys.length > 0) await raw.del(...keys);
    },
    async close(c = {}) {
      for (const p of phones.splice(0)) await p.stop();
      if (c.appStopped !== true) await app.stop();
      await fsmrf?.stop();
      redis.disconnect();
      raw.disconnect();
      await freeswitch?.stop();
      if (logFile !== undefined && logFile !== '') writeFileSync(`${logFile}.drachtio`, drachtio.log());
      await drachtio.stop();
      await redisServer.stop();
    },
  };
}
