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

/** What {@link trunksProbe} reads. */
export interface TrunksProbeDeps {
  /** Outbound addresses by trunk, as configured (trunks without any are left out). */
  outbound: Record<string, string[]>;
  /** This instance's OPTIONS pings, if it has a drachtio-server. */
  isUp?: ((trunk: string, address: string) => boolean) | undefined;
  /** The carrier registrations' status from Redis (`failed` ones count). */
  registrations?: (() => Promise<{ trunk: string; state: string; lastError: string | null }[]>) | undefined;
}

/**
 * The `trunks` component: not up (so /healthz says degraded, never down) when a carrier
 * registration failed or every outbound address of a trunk is down; the detail says which.
 */
export function trunksProbe(deps: TrunksProbeDeps): HealthProbe {
  return async () => {
    const problems: string[] = [];
    const isUp = deps.isUp;
    if (isUp !== undefined)
      for (const [trunk, addresses] of Object.entries(deps.outbound))
        if (addresses.length > 0 && addresses.every((a) => !isUp(trunk, a))) problems.push(`${trunk}: every outbound address is down`);
    if (deps.registrations !== undefined) {
      try {
        for (const r of await deps.registrations()) if (r.state === 'failed') problems.push(`${r.trunk}: carrier registration failed${r.lastError === null ? '' : ` (${r.lastError})`}`);
      } catch (err) {
        problems.push(`carrier registrations unknown: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return problems.length > 0 ? { up: false, detail: problems.join('; ') } : { up: true };
  };
}
