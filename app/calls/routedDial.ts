/**
 * A call to an outside number over the outbound routes, with failover (issue "trunk
 * routing"): the tries of {@link dialAttempts} one after another — each route's trunk, each of
 * its addresses that is up — until one answers. A try that is refused with a 5xx or 408, or
 * that gets no response at all (not even ringing) within `failoverSeconds`, moves on to the
 * next; any other final response (busy, declined, not found) is the number's answer and ends
 * the call there. Once a try rings, it rings until the call's own ring limit.
 */
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { dialAttempts, type DialAttempt } from '../../lib/sip/trunks';
import { startDial, type Dial, type DialDeps, type DialResult } from './dial';

/** Which outbound trunk addresses answer their OPTIONS pings (app/sip/trunkHealth.ts). */
export interface TrunkUpCheck {
  isUp(trunk: string, address: string): boolean;
}

/** Options of {@link startRoutedDial}. */
export interface RoutedDialOptions {
  attempts: readonly DialAttempt[];
  /** The calling number the call asks for; a trunk that does not allow it presents its default. */
  from: string;
  /** The domain of From and P-Asserted-Identity. */
  domain: string;
  headers?: Record<string, string>;
  /** Ring limit of the whole call (every try together); past it the call is cancelled (408). */
  ringMs?: number | undefined;
  /** How long a try may go without any response before the next one is tried. */
  failoverMs: number;
  onRinging?: () => void;
  log: Logger;
}

/** Whether a try's failure moves on to the next one: a 5xx, or 408 (a timeout, ours or theirs). */
export function failsOver(status: number): boolean {
  return status === 408 || (status >= 500 && status <= 599);
}

/** The calling number a trunk presents: the one asked for if it allows it, else its default. */
function callerIdOn(a: DialAttempt, wanted: string): string {
  if (a.trunk.callerIds.length === 0 || a.trunk.callerIds.includes(wanted)) return wanted;
  return a.trunk.callerIds[0]!;
}

/** Starts the call; `result` settles with the first answer or the failure that ended it. */
export function startRoutedDial(deps: DialDeps, o: RoutedDialOptions): Dial {
  let current: Dial | undefined;
  let cancelled: { status: number; reason: string } | undefined;
  const cancel = (status = 487, reason = 'Request Terminated'): void => {
    cancelled ??= { status, reason };
    current?.cancel(status, reason);
  };
  const started = Date.now();
  // A function, not the variable: cancel() sets it from outside the loop while a try is awaited.
  const stopped = (): { status: number; reason: string } | undefined => cancelled;
  const result = (async (): Promise<DialResult> => {
    if (o.attempts.length === 0) return { ok: false, status: 503, reason: 'No Route (every trunk address is down or none matches)' };
    let last: DialResult = { ok: false, status: 503, reason: 'No Route' };
    for (const [i, a] of o.attempts.entries()) {
      const stop = stopped();
      if (stop !== undefined) return { ok: false, ...stop };
      const left = o.ringMs === undefined ? undefined : o.ringMs - (Date.now() - started);
      if (left !== undefined && left <= 0) return { ok: false, status: 408, reason: 'Ring Limit Reached' };
      const from = callerIdOn(a, o.from);
      const headers: Record<string, string> = { ...o.headers };
      if (a.trunk.pai) headers['P-Asserted-Identity'] = `<sip:${from}@${o.domain}>`;
      let ringing = false;
      const dial = startDial(deps, {
        uris: [a.uri],
        from: `<sip:${from}@${o.domain}>`,
        headers,
        ringMs: left,
        onRinging: () => {
          ringing = true;
          o.onRinging?.();
        },
        log: o.log,
      });
      current = dial;
      // No response at all within failoverSeconds: this address is not taking calls. The try
      // is cancelled and left to settle by itself — a UAC may not send CANCEL before a
      // provisional response (RFC 3261 9.1), so waiting for its end could take Timer B (32 s).
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<'silent'>((resolve) => {
        timer = setTimeout(() => {
          if (!ringing) resolve('silent');
        }, o.failoverMs);
      });
      const outcome = await Promise.race([dial.result, silent]).finally(() => clearTimeout(timer));
      if (outcome === 'silent') {
        dial.cancel(408, 'No Response From Trunk');
        // An answer racing the CANCEL is nobody's call: released when it comes.
        void dial.result.then(async (late) => {
          if (!late.ok) return;
          await late.leg.release().catch(() => undefined);
          await late.ep.destroy().catch(() => undefined);
        }, (err: unknown) => o.log.warn({ err }, 'an abandoned try failed'));
        last = { ok: false, status: 408, reason: 'No Response From Trunk' };
      } else {
        last = outcome;
      }
      if (last.ok) {
        o.log.info({ trunk: a.trunk.name, address: a.address, tries: i + 1 }, 'outside number answered');
        return last;
      }
      const stopNow = stopped();
      if (stopNow !== undefined) return { ok: false, ...stopNow };
      // The call's own ring limit ran out during this try: that is the call's end, not a trunk fault.
      if (o.ringMs !== undefined && Date.now() - started >= o.ringMs) return { ok: false, status: 408, reason: 'Ring Limit Reached' };
      const next = o.attempts[i + 1];
      if (!failsOver(last.status) || next === undefined) {
        o.log.info({ trunk: a.trunk.name, address: a.address, status: last.status, tries: i + 1 }, 'outside number not reached');
        return last;
      }
      o.log.warn({ trunk: a.trunk.name, address: a.address, status: last.status, reason: last.reason, next: `${next.trunk.name} ${next.address}` }, 'trunk failed; trying the next route');
    }
    return last;
  })();
  return { result, cancel };
}

/** What {@link startOutsideDial} needs. */
export interface OutsideDialDeps extends DialDeps {
  config: Config;
  trunkHealth?: TrunkUpCheck | undefined;
}

/**
 * Calls outside number `o.to` of call center `cc` over its outbound routes (the addresses
 * that are up, in route order), presenting `o.from`, with the call center's failover time.
 */
export function startOutsideDial(d: OutsideDialDeps, cc: string, o: { to: string; from: string; ringMs?: number | undefined; headers?: Record<string, string> }, log: Logger): Dial {
  const ccConfig = d.config.callcenters[cc]!;
  const health = d.trunkHealth;
  const attempts = dialAttempts(d.config.sip.trunks, cc, ccConfig.outbound, o.to, health === undefined ? undefined : (t, a) => health.isUp(t, a));
  return startRoutedDial(d, {
    attempts,
    from: o.from,
    domain: d.config.sip.realm ?? 'ccswitch',
    ...(o.headers === undefined ? {} : { headers: o.headers }),
    ringMs: o.ringMs,
    failoverMs: ccConfig.outbound.failoverSeconds * 1000,
    log,
  });
}
