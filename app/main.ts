/**
 * Process entry: the only file that reads the environment and opens connections.
 * `CCSWITCH_CONFIG` names the YAML file (default config/default.yaml).
 */
import { readFileSync } from 'node:fs';
import { loadConfig, type EnvOverrides } from '../lib/config/load';
import { ConfigError } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { createRedis } from '../lib/store/redis';
import Srf from 'drachtio-srf';
import { createApp } from './createApp';
import type { SrfLike } from './sip/types';
import { createMetrics } from './metrics';
import { createFsmrfMediaServer } from '../media/fsmrf';

async function main(): Promise<void> {
  const env = process.env as EnvOverrides & { CCSWITCH_CONFIG?: string };
  const path = env.CCSWITCH_CONFIG ?? 'config/default.yaml';
  const bootLog = createLogger((env.LOG_LEVEL as 'info' | undefined) ?? 'info');
  let config;
  try {
    config = loadConfig({ text: readFileSync(path, 'utf8'), source: path, env });
  } catch (err) {
    if (err instanceof ConfigError) bootLog.fatal({ problems: err.problems, file: path }, err.message);
    else bootLog.fatal({ err, file: path }, 'cannot read the configuration');
    process.exitCode = 1;
    return;
  }
  const logger = createLogger(config.log.level as 'info');
  const redis = createRedis(config.redis.url, { commandTimeout: config.redis.commandTimeoutMs });
  let lastRedisError = '';
  redis.on('error', (err: Error) => {
    // ioredis retries by itself; log each distinct failure once instead of every attempt.
    if (err.message !== lastRedisError) logger.warn({ err: err.message, url: config.redis.url.replace(/\/\/[^@]*@/, '//***@') }, 'redis connection problem');
    lastRedisError = err.message;
  });
  redis.on('ready', () => {
    if (lastRedisError !== '') logger.info('redis connection restored');
    lastRedisError = '';
  });

  // drachtio-srf's typings do not match its runtime API (see app/sip/types.ts).
  const srf = new Srf() as unknown as SrfLike;
  // FreeSWITCH through drachtio-fsmrf; until its event socket is up, FACs answer with a
  // null SDP and /healthz reports the media server down.
  const media = createFsmrfMediaServer({ srf, freeswitch: config.freeswitch, logger });
  const app = await createApp(config, { redis, logger, metrics: createMetrics(true), srf, media, probes: { media: () => media.health() } });
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app
      .stop()
      .then(() => media.stop())
      .then(() => redis.quit())
      .catch((err: unknown) => logger.error({ err }, 'error while shutting down'))
      .finally(() => {
        process.exitCode = process.exitCode ?? 0;
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await app.start();
}

main().catch((err: unknown) => {
  createLogger('fatal').fatal({ err }, 'ccswitch failed to start');
  // Exit now: the reconnect timers of Redis, drachtio and FreeSWITCH would keep a process
  // that serves nothing alive forever, and no restart policy would ever see it fail.
  process.exit(1);
});
