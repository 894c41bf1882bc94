/**
 * OPTIONS pings of the trunks' outbound addresses (`sip.trunks.<name>.outbound`): every
 * `pingSeconds` each address gets an OPTIONS; `downAfter` pings in a row without an answer
 * mark it down (outbound routing skips it, lib/sip/trunks.ts `dialAttempts`), the next
 * answer brings it back up. Any final response is an answer: a carrier that says 404 or 405
 * to OPTIONS is alive. A trunk with `pingSeconds: 0` is never pinged and always up.
 *
 * The state is per instance (each instance pings over its own drachtio-server, and what it
 * can reach is what its calls can reach), in memory, so `isUp` is a cheap synchronous read.
 */
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { sendOutOfDialog, type SipRequester } from '../../lib/sip/carrierRegistration';
import { outboundAddresses } from '../../lib/sip/trunks';
import type { Metrics } from '../metrics';

/** One outbound address as this instance sees it. */
export interface TrunkHealthView {
  trunk: string;
  /** As configured: `host[:port][;transport=…]`. */
  address: string;
  up: boolean;
  /** Whether it is pinged at all (`pingSeconds` > 0). */
  pinged: boolean;
  /** Pings in a row without an answer. */
  failures: number;
  /** When the last ping ended (ms since epoch), null before the first. */
  lastPingAt: number | null;
  /** The status of the last answer, null when the last ping got none. */
  lastStatus: number | null;
  /** Why the last ping failed, null when it was answered. */
  lastError: string | null;
  /** Round trip of the last answered ping (ms). */
  rttMs: number | null;
}

/** The running pings. */
export interface TrunkHealth {
  /** Whether calls may use `address` of `trunk` now (unknown trunks and addresses are up). */
  isUp(trunk: string, address: string): boolean;
  /** Every outbound address of every trunk. */
  view(): TrunkHealthView[];
  /** Calls `fn` after every ping of any address; returns the unsubscribe. */
  onPing(fn: (v: TrunkHealthView) => void): () => void;
  /** Starts the pings (idempotent); the first ones go out at once. */
  start(): void;
  /** Stops the pings. */
  stop(): void;
}

/** What the pings need. */
export interface TrunkHealthDeps {
  srf: SipRequester;
  config: Config;
  logger: Logger;
  metrics?: Metrics | undefined;
}

interface Entry extends TrunkHealthView {
  uri: string;
  timeoutMs: number;
  downAfter: number;
  inFlight: boolean;
}

/** The request URI of a ping to `address`: `sip:<host[:port]>[;params]`. */
export function pingUri(address: string): string {
  return `sip:${address}`;
}

const key = (trunk: string, address: string): string => `${trunk}\u0000${address}`;

/** Builds the pings without starting them (createApp hands `isUp` to the call handlers first). */
export function createTrunkHealth(deps: TrunkHealthDeps): TrunkHealth {
  const log = deps.logger.child({ component: 'trunk-health' });
  const entries = new Map<string, Entry>();
  const byTrunk = new Map<string, { every: number; entries: Entry[] }>();
  for (const [trunk, t] of Object.entries(deps.config.sip.trunks)) {
    const every = t.pingSeconds * 1000;
    const list: Entry[] = [];
    for (const address of outboundAddresses(t)) {
      const e: Entry = {
        trunk, address, up: true, pinged: every > 0, failures: 0, lastPingAt: null, lastStatus: null, lastError: null, rttMs: null,
        uri: pingUri(address), timeoutMs: Math.min(every, 5000), downAfter: t.downAfter, inFlight: false,
      };
      entries.set(key(trunk, address), e);
      list.push(e);
      deps.metrics?.trunkAddressUp.set({ trunk, address }, 1);
    }
    if (every > 0 && list.length > 0) byTrunk.set(trunk, { every, entries: list });
  }
  const listeners = new Set<(v: TrunkHealthView) => void>();
  const timers: NodeJS.Timeout[] = [];
  let running = false;

  const viewOf = (e: Entry): TrunkHealthView => ({ trunk: e.trunk, address: e.address, up: e.up, pinged: e.pinged, failures: e.failures, lastPingAt: e.lastPingAt, lastStatus: e.lastStatus, lastError: e.lastError, rttMs: e.rttMs });

  const ping = async (e: Entry): Promise<void> => {
    // A ping still waiting for its answer is not doubled: the timeout ends it first.
    if (e.inFlight) return;
    e.inFlight = true;
    const started = Date.now();
    try {
      const out = await sendOutOfDialog(deps.srf, e.uri, { method: 'OPTIONS', headers: { 'Max-Forwards': '70' } }, e.timeoutMs);
      if (!running) return;
      // Not sent (no drachtio-server connection): says nothing about the far end.
      if (out.kind === 'unsent') {
        log.debug({ trunk: e.trunk, address: e.address, err: out.error }, 'OPTIONS ping not sent');
        return;
      }
      e.lastPingAt = Date.now();
      if (out.kind === 'answer') {
        e.failures = 0;
        e.lastStatus = out.status;
        e.lastError = null;
        e.rttMs = e.lastPingAt - started;
        if (!e.up) {
          e.up = true;
          deps.metrics?.trunkAddressUp.set({ trunk: e.trunk, address: e.address }, 1);
          log.info({ trunk: e.trunk, address: e.address, status: out.status }, 'trunk address answers OPTIONS again: up');
        }
      } else {
        e.failures++;
        e.lastStatus = null;
        e.lastError = out.error;
        e.rttMs = null;
        deps.metrics?.trunkPingFailures.inc({ trunk: e.trunk, address: e.address });
        if (e.up && e.failures >= e.downAfter) {
          e.up = false;
          deps.metrics?.trunkAddressUp.set({ trunk: e.trunk, address: e.address }, 0);
          log.warn({ trunk: e.trunk, address: e.address, failures: e.failures, err: out.error }, 'trunk address does not answer OPTIONS: down');
        }
      }
      const v = viewOf(e);
      for (const l of listeners) l(v);
    } finally {
      e.inFlight = false;
    }
  };

  return {
    isUp: (trunk, address) => entries.get(key(trunk, address))?.up ?? true,
    view: () => [...entries.values()].map(viewOf),
    onPing(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    start() {
      if (running) return;
      running = true;
      for (const { every, entries: list } of byTrunk.values()) {
        const round = (): void => {
          for (const e of list) void ping(e).catch((err: unknown) => log.error({ err, trunk: e.trunk, address: e.address }, 'OPTIONS ping failed'));
        };
        round();
        // Local intervals: they drive SIP from this process only and must not keep it alive.
        const t = setInterval(round, every);
        t.unref();
        timers.push(t);
      }
    },
    stop() {
      running = false;
      for (const t of timers.splice(0)) clearInterval(t);
    },
  };
}

/** {@link createTrunkHealth}, started. */
export function startTrunkHealth(deps: TrunkHealthDeps): TrunkHealth {
  const h = createTrunkHealth(deps);
  h.start();
  return h;
}
