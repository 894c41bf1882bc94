/**
 * One ccswitch instance wired to a real drachtio-server and its own Redis, with the
 * static-SDP media fake: the set-up every test/sip suite with SIP.js phones needs.
 */
import { EventEmitter, once } from 'node:events';
import Srf from 'drachtio-srf';
import { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import type { InviteOutcome } from '../../app/sip/invite';
import type { SrfLike } from '../../app/sip/types';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { FakeMediaServer } from '../../media/fake';
import { testConfig, type TestConfigOptions } from './config';
import { startDrachtio, type DrachtioServer } from './drachtio';
import { startPhone, type Phone } from './phone';
import { startRedis, type RedisServer } from './redisServer';

/** A running stack. */
export interface SipStack {
  app: App;
  raw: Redis;
  redisServer: RedisServer;
  drachtio: DrachtioServer;
  media: FakeMediaServer;
  /** A registered SIP.js phone for `user` (password `secret-<user>`), stopped by `reset()`/`close()`. */
  phone(user: string): Promise<Phone>;
  /** Stops the phones and empties the call center's keys (between tests). */
  reset(): Promise<void>;
  /** Stops everything; `appStopped` when a test has already stopped the instance. */
  close(o?: { appStopped?: boolean }): Promise<void>;
}

/** Starts Redis, drachtio-server and an instance connected to it. */
export async function startSipStack(
  o: Omit<TestConfigOptions, 'redisUrl' | 'drachtio'> & { onInviteSettled?: (callId: string, outcome: InviteOutcome) => void },
): Promise<SipStack> {
  const redisServer = await startRedis();
  const drachtio = await startDrachtio();
  const { onInviteSettled, ...configOptions } = o;
  const config = testConfig({ ...configOptions, redisUrl: redisServer.url, drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret } });
  const redis = createRedis(redisServer.url);
  const raw = new Redis(redisServer.url);
  const media = new FakeMediaServer();
  const srf = new Srf() as unknown as SrfLike & EventEmitter;
  const connected = once(srf, 'connect');
  const app = await createApp(config, { redis, logger: createLogger('silent'), srf, media, ...(onInviteSettled ? { onInviteSettled } : {}) });
  await app.start();
  const [err] = (await connected) as [Error | null];
  if (err) throw err;
  const phones: Phone[] = [];
  return {
    app,
    raw,
    redisServer,
    drachtio,
    media,
    async phone(user) {
      const p = await startPhone({ user, password: `secret-${user}`, wsPort: drachtio.wsPort });
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
      redis.disconnect();
      raw.disconnect();
      await drachtio.stop();
      await redisServer.stop();
    },
  };
}
