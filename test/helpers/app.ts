/** Starts a full ccswitch instance (createApp) on a spawned Redis, listening on a free port. */
import { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import type { MediaServer } from '../../media/port';
import { testConfig, type TestConfigOptions } from './config';

/** A running instance and a small fetch wrapper. */
export interface RunningApp {
  app: App;
  redis: Redis;
  base: string;
  token: string;
  /** fetch with the bearer token (unless `auth: false` or a custom header is given). */
  call(method: string, path: string, init?: { body?: string; headers?: Record<string, string>; json?: unknown; auth?: boolean }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** Starts an instance; `close()` stops it and its connection. */
export async function startApp(o: TestConfigOptions & { media?: MediaServer; uiDir?: string }): Promise<RunningApp> {
  const { media, uiDir, ...options } = o;
  const config = testConfig(options);
  const redis = createRedis(o.redisUrl);
  redis.on('error', () => undefined);
  const app = await createApp(config, { redis, logger: createLogger('silent'), ...(media === undefined ? {} : { media }), ...(uiDir === undefined ? {} : { uiDir }) });
  const { port } = await app.start();
  const base = `http://127.0.0.1:${port}`;
  const token = config.apiTokens[0]?.token ?? '';
  return {
    app,
    redis,
    base,
    token,
    async call(method, path, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      if (init.auth !== false && headers.authorization === undefined) headers.authorization = `Bearer ${token}`;
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (e.g. /metrics)
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await app.stop();
      redis.disconnect();
    },
  };
}
