/**
 * Health of the parts ccswitch depends on. Redis is required (no Redis, no service);
 * drachtio and the media server are reported but do not make the process unhealthy, so a
 * REST-only deployment runs and says what is missing.
 */
import type { Redis } from 'ioredis';

/** One component's health. */
export interface ComponentStatus {
  up: boolean;
  detail?: string;
}

/** Reports a component's health; must not throw. */
export type HealthProbe = () => Promise<ComponentStatus> | ComponentStatus;

/** The /healthz document. */
export interface HealthReport {
  status: 'ok' | 'degraded' | 'down';
  instance: string;
  draining: boolean;
  components: Record<string, ComponentStatus>;
}

async function withTimeout(p: Promise<ComponentStatus>, ms: number): Promise<ComponentStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ComponentStatus>((resolve) => {
    timer = setTimeout(() => resolve({ up: false, detail: `no answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A probe that PINGs Redis. */
export function redisProbe(redis: Redis): HealthProbe {
  return async () => {
    try {
      const pong = await redis.ping();
      return pong === 'PONG' ? { up: true } : { up: false, detail: `unexpected reply ${String(pong)}` };
    } catch (err) {
      return { up: false, detail: err instanceof Error ? err.message : String(err) };
    }
  };
}

/** Runs the probes in parallel; Redis down → down, anything else down → degraded. */
export async function checkHealth(probes: Record<string, HealthProbe>, instance: string, draining: boolean, timeoutMs = 1000): Promise<HealthReport> {
  const names = Object.keys(probes);
  const results = await Promise.all(names.map((n) => withTimeout(Promise.resolve().then(() => probes[n]!()), timeoutMs)));
  const components = Object.fromEntries(names.map((n, i) => [n, results[i]!]));
  const status = components.redis?.up === false ? 'down' : Object.values(components).every((c) => c.up) && !draining ? 'ok' : 'degraded';
  return { status, instance, draining, components };
}
