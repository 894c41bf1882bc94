/** Builds validated test configurations through the real loader. */
import { stringify } from 'yaml';
import { loadConfig } from '../../lib/config/load';
import type { Config } from '../../lib/config/schema';

/** Options of {@link testConfig}. */
export interface TestConfigOptions {
  redisUrl: string;
  instanceId?: string;
  /** Extra agents `a1..aN` in queue 8000 only. */
  extraAgents?: number;
  wrapUpSeconds8000?: number;
  pollMs?: number;
  claimLeaseMs?: number;
  callGuardMs?: number;
  queueStatsMs?: number;
  /** Plain strings are admin tokens; objects give a role (DESIGN.md section 12). */
  apiTokens?: (string | Record<string, unknown>)[];
  /** More settings of call center `default` (numbers, schedules, outbound routes…). */
  callcenter?: Record<string, unknown>;
  /** Supervisors of call center `default` (default: s1 over 8000, s2 over 8001). */
  supervisors?: Record<string, unknown>;
  bodyLimitBytes?: number;
  /** More `http` settings (e.g. authFailureLimit). */
  http?: Record<string, unknown>;
  keyPrefix?: string;
  sip?: Record<string, unknown>;
  /** Extra settings per queue number (merged into 8000 / 8001). */
  queues?: Record<string, Record<string, unknown>>;
  drachtio?: { host: string; port: number; secret: string };
  /** The event stream's settings (config `events`). */
  events?: Record<string, unknown>;
  /** Streams' max lengths (config `streams`). */
  streams?: Record<string, unknown>;
}

/** The shape of config/default.yaml (queues 8000 and 8001, agents 1001-1005, supervisors s1 and s2) plus options. */
export function testConfig(o: TestConfigOptions): Config {
  return loadConfig({ text: testConfigYaml(o), source: 'test' });
}

/** {@link testConfig} as the YAML file an operator would write (for the command-line tools). */
export function testConfigYaml(o: TestConfigOptions): string {
  const agents: Record<string, unknown> = {
    '1001': { extension: '1001', password: 'secret-1001', queues: ['8000'] },
    '1002': { extension: '1002', password: 'secret-1002', queues: ['8000'] },
    '1003': { extension: '1003', password: 'secret-1003', queues: ['8000', '8001'] },
    '1004': { extension: '1004', password: 'secret-1004', queues: ['8001'] },
    '1005': { extension: '1005', password: 'secret-1005', queues: ['8001'] },
  };
  for (let i = 1; i <= (o.extraAgents ?? 0); i++) agents[`a${i}`] = { extension: String(20000 + i), password: 'secret-aaaa', queues: ['8000'] };
  const raw = {
    instanceId: o.instanceId ?? 'test-a',
    redis: { url: o.redisUrl, keyPrefix: o.keyPrefix ?? 'ccs' },
    http: { host: '127.0.0.1', port: 0, ...(o.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: o.bodyLimitBytes }), ...(o.http ?? {}) },
    log: { level: 'silent' },
    timers: { pollMs: o.pollMs ?? 25, claimLeaseMs: o.claimLeaseMs ?? 1000, ...(o.callGuardMs === undefined ? {} : { callGuardMs: o.callGuardMs }), ...(o.queueStatsMs === undefined ? {} : { queueStatsMs: o.queueStatsMs }) },
    apiTokens: o.apiTokens ?? ['test-token-0123456789'],
    ...(o.sip === undefined ? {} : { sip: o.sip }),
    ...(o.drachtio === undefined ? {} : { drachtio: o.drachtio }),
    ...(o.events === undefined ? {} : { events: o.events }),
    ...(o.streams === undefined ? {} : { streams: o.streams }),
    callcenters: {
      default: {
        queues: {
          '8000': { name: 'Sales', autoReady: true, wrapUpSeconds: o.wrapUpSeconds8000 ?? 5, ...(o.queues?.['8000'] ?? {}) },
          '8001': { name: 'Support', autoReady: false, wrapUpSeconds: 0, ...(o.queues?.['8001'] ?? {}) },
        },
        agents,
        ...(o.callcenter ?? {}),
        supervisors: o.supervisors ?? {
          s1: { name: 'Sales lead', extension: '1901', password: 'secret-s1', queues: ['8000'] },
          s2: { name: 'Support lead', extension: '1902', password: 'secret-s2', queues: ['8001'] },
        },
      },
      other: { queues: { '9000': { name: 'Other' } }, agents: { '2001': { extension: '2001', password: 'secret-2001', queues: ['9000'] } } },
    },
  };
  return stringify(raw);
}
