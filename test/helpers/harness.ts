/** Engine-level harness for the Redis layer: a spawned redis-server and engines on it. */
import { Redis } from 'ioredis';
import { AgentEngine } from '../../lib/agent/engine';
import type { Config } from '../../lib/config/schema';
import { parseEvent, parseOplog, type AgentStateEvent } from '../../lib/events';
import type { OplogEntry } from '../../lib/oplog';
import { createRedis } from '../../lib/store/redis';
import { startRedis, type RedisServer } from './redisServer';
import { testConfig, type TestConfigOptions } from './config';

/** A redis-server plus helpers to build engines and read back streams. */
export interface Harness {
  server: RedisServer;
  config(o?: Partial<TestConfigOptions>): Config;
  engine(o?: Partial<TestConfigOptions>): { engine: AgentEngine; redis: Redis; config: Config };
  /** A plain connection for assertions. */
  raw: Redis;
  events(cc?: string): Promise<AgentStateEvent[]>;
  oplog(cc?: string): Promise<OplogEntry[]>;
  close(): Promise<void>;
}

/** Starts redis-server; call `close()` in afterAll. */
export async function startHarness(): Promise<Harness> {
  const server = await startRedis();
  const conns: Redis[] = [];
  const raw = new Redis(server.url);
  conns.push(raw);
  const config = (o: Partial<TestConfigOptions> = {}): Config => testConfig({ redisUrl: server.url, ...o });
  return {
    server,
    raw,
    config,
    engine(o = {}) {
      const cfg = config(o);
      const redis = createRedis(server.url);
      conns.push(redis);
      return { engine: new AgentEngine({ redis, config: cfg }), redis, config: cfg };
    },
    async events(cc = 'default') {
      const entries = (await raw.xrange(`ccs:{${cc}}:events`, '-', '+')) as [string, string[]][];
      return entries.map((e) => parseEvent(e) as AgentStateEvent);
    },
    async oplog(cc = 'default') {
      const entries = (await raw.xrange(`ccs:{${cc}}:oplog`, '-', '+')) as [string, string[]][];
      return entries.map(parseOplog);
    },
    async close() {
      for (const c of conns) c.disconnect();
      await server.stop();
    },
  };
}
