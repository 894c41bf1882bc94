/**
 * Registration of the platform to carriers (`sip.trunks.<name>.register`): for each such
 * trunk exactly one instance at a time sends the REGISTERs, the holder of a Redis lease with
 * a fencing token (lib/store/trunkScripts.ts), and the outcome is kept in Redis so every
 * instance can show it.
 *
 * How a trunk's registration moves between instances:
 * - Every instance without the lease tries to take it every `acquireMs` (when its
 *   drachtio-server is connected: an instance that cannot send SIP must not hold it).
 * - The holder renews it every `renewMs` (the lease lives `leaseMs`), REGISTERs at once on
 *   taking it, refreshes at half the expiry the registrar granted, and retries failures
 *   with a capped exponential backoff.
 * - A holder that stops gracefully releases the lease (the binding at the carrier stays; it
 *   is not unregistered), so the next instance takes over on its next try. A holder that
 *   dies or hangs stops renewing; its lease expires and another instance takes it. A holder
 *   that finds its lease gone (renew refused, or not confirmed for a whole lease time) stops
 *   sending, and the status writes of a late REGISTER are refused by the fencing token.
 *
 * The SIP side is the {@link RegisterSender} interface, so the lease logic runs against
 * real Redis without drachtio; {@link srfRegisterSender} is its drachtio-srf implementation.
 * This module also holds the small drachtio-srf request wrapper that the OPTIONS pings
 * (app/sip/trunkHealth.ts) use, {@link sendOutOfDialog}, because lib/ may not import app/.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import type { Logger } from '../logger';
import { callCenterKeys } from '../store/keys';

// ---------------------------------------------------------------------------------------
// drachtio-srf out-of-dialog requests

/** A response to a request we sent, as drachtio-srf gives it (the fields used). */
export interface SipReplyLike {
  status: number;
  reason?: string;
  /** Where the response came from; empty when the SIP stack made it up itself (see {@link sendOutOfDialog}). */
  source_address?: string;
  get(name: string): string | undefined;
  getParsedHeader(name: string): unknown;
}

/** A request drachtio-server sent for us (its `Msg sent` echo). */
export interface SentRequestLike {
  get(name: string): string | undefined;
  on(event: 'response', fn: (res: SipReplyLike) => void): unknown;
}

/** Options of one request outside a dialog (drachtio-srf `Srf#request`). */
export interface OutOfDialogOptions {
  method: string;
  headers?: Record<string, string>;
  /** Answers a 401/407 challenge once with these credentials (drachtio-srf's DigestClient). */
  auth?: { username: string; password: string };
  /** Sends the request there instead of to the request URI's host (a Route). */
  proxy?: string;
}

/**
 * The callback form of drachtio-srf's `Srf#request` (its bundled typings describe another
 * signature, so it is typed here by what it does).
 */
export interface SipRequester {
  request(uri: string, opts: OutOfDialogOptions, cb: (err: Error | null, req?: SentRequestLike) => void): unknown;
}

/** True when `srf` can send requests outside a dialog (drachtio-srf's Srf can). */
export function isSipRequester(srf: unknown): srf is SipRequester {
  return typeof srf === 'object' && srf !== null && typeof (srf as { request?: unknown }).request === 'function';
}

/** How one request outside a dialog ended. */
export type OutOfDialogOutcome =
  /** The far end answered with a final response. */
  | { kind: 'answer'; status: number; reason: string; res: SipReplyLike; sent: SentRequestLike }
  /** No answer from the far end: no response in time, or the stack's own error response (transport error). */
  | { kind: 'failure'; error: string; status?: number }
  /** Not sent at all: this instance has no connection to drachtio-server (says nothing about the far end). */
  | { kind: 'unsent'; error: string };

/** drachtio-srf's codes for "no connection to a drachtio-server to send on". */
const NOT_CONNECTED = new Set(['EINVALIDSOCKET', 'ESOCKETDESTROYED']);

/**
 * Sends one request outside a dialog and waits for its final response, at most `timeoutMs`.
 *
 * SIP / drachtio quirks handled here:
 * - The callback form of `Srf#request` is used, not its Promise: drachtio-server's "sent"
 *   echo and a fast response can arrive in one read, and drachtio-srf dispatches the
 *   response synchronously right after resolving the Promise, before an `await`
 *   continuation could attach the `response` listener; the response would be lost.
 * - A final response with no source address was made by drachtio-server's SIP stack itself
 *   (sofia answers 503 at once when the far port is closed, ICMP unreachable, and 408 after
 *   its timer F): that is a transport error or a timeout, not an answer.
 * - Provisional responses are ignored; any final response from the far end is an answer.
 */
export function sendOutOfDialog(requester: SipRequester, uri: string, opts: OutOfDialogOptions, timeoutMs: number): Promise<OutOfDialogOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: OutOfDialogOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'failure', error: `no response within ${timeoutMs} ms` }), timeoutMs);
    timer.unref();
    try {
      requester.request(uri, opts, (err, sent) => {
        if (err || sent === undefined) {
          const code = (err as { code?: unknown } | null)?.code;
          const error = err?.message ?? 'request not sent';
          finish(typeof code === 'string' && NOT_CONNECTED.has(code) ? { kind: 'unsent', error } : { kind: 'failure', error: `not sent: ${error}` });
          return;
        }
        sent.on('response', (res) => {
          if (res.status < 200) return;
          const reason = res.reason ?? '';
          if (res.source_address === undefined || res.source_address === '') finish({ kind: 'failure', status: res.status, error: `no answer (the SIP stack's own ${res.status} ${reason})`.trim() });
          else finish({ kind: 'answer', status: res.status, reason, res, sent });
        });
      });
    } catch (err) {
      // drachtio-srf asserts (throws) on some states, e.g. before its first connection.
      finish({ kind: 'unsent', error: err instanceof Error ? err.message : String(err) });
    }
  });
}

// ---------------------------------------------------------------------------------------
// REGISTER

/** One REGISTER to send (RFC 3261 section 10.2). */
export interface RegisterAttempt {
  trunk: string;
  /** Request URI: `sip:<domain>` (then `proxy` is the registrar) or `sip:<registrar>`. */
  requestUri: string;
  proxy?: string | undefined;
  /** The address of record, `sip:<user>@<domain>` (From and To). */
  aor: string;
  /** The Contact's user part; the host is this instance's drachtio-server. */
  contactUser: string;
  /** `;transport=…` of the registrar, repeated on the Contact ('' for UDP). */
  contactParams: string;
  /** Kept for every REGISTER of one holder (RFC 3261 10.2.4), with CSeq rising. */
  callId: string;
  cseq: number;
  fromTag: string;
  expires: number;
  username: string;
  password: string;
  timeoutMs: number;
}

/** How a REGISTER ended. */
export interface RegisterResult {
  /** The final status from the registrar; undefined when there was none (timeout, transport error). */
  status?: number | undefined;
  /** The reason phrase, or what went wrong. */
  reason: string;
  /** 2xx: the seconds the registrar granted our binding. */
  granted?: number | undefined;
  /** 423: the registrar's Min-Expires. */
  minExpires?: number | undefined;
  /** The CSeq the last request of this attempt carried (a digest retry raises it by one). */
  cseq: number;
  /** The request was not sent: no drachtio-server connection. */
  unsent?: boolean | undefined;
}

/** Sends REGISTERs (the SIP side of {@link CarrierRegistrations}). */
export interface RegisterSender {
  register(a: RegisterAttempt): Promise<RegisterResult>;
}

const uriOf = (nameAddr: string): string => (/<([^>]*)>/.exec(nameAddr)?.[1] ?? nameAddr.split(';')[0] ?? '').trim().toLowerCase();

/**
 * The expiry the registrar granted our binding (RFC 3261 10.2.4): the `expires` parameter of
 * our Contact in the 200 (the registrar lists every binding of the AOR), else the Expires
 * header, else what we asked for.
 */
export function grantedExpiry(res: Pick<SipReplyLike, 'get' | 'getParsedHeader'>, ourContact: string | undefined, asked: number): number {
  let contacts: { uri?: string; params?: Record<string, string | undefined> }[] = [];
  try {
    const parsed = res.getParsedHeader('contact');
    if (Array.isArray(parsed)) contacts = parsed as typeof contacts;
  } catch {
    // no or unparsable Contact: fall back to Expires
  }
  const mine = ourContact === undefined ? undefined : uriOf(ourContact);
  const hit = contacts.find((c) => mine !== undefined && typeof c.uri === 'string' && uriOf(c.uri) === mine) ?? (contacts.length === 1 ? contacts[0] : undefined);
  const fromContact = Number(hit?.params?.expires);
  if (Number.isFinite(fromContact) && fromContact >= 0) return fromContact;
  const header = Number(res.get('Expires'));
  if (Number.isFinite(header) && header >= 0) return header;
  return asked;
}

/** A {@link RegisterSender} over drachtio-srf. */
export function srfRegisterSender(srf: SipRequester): RegisterSender {
  return {
    async register(a) {
      // drachtio-server fills a Contact only into INVITE and SUBSCRIBE; in other headers it
      // replaces a host of `localhost` with the address of the transport it sends on.
      // The header names are those drachtio-srf's DigestClient writes when it re-sends the
      // challenged request ('call-id', 'CSeq', 'From'): its SipMessage joins two spellings of
      // one header into one comma-separated value, which would break Call-ID.
      const headers: Record<string, string> = {
        From: `<${a.aor}>;tag=${a.fromTag}`,
        To: `<${a.aor}>`,
        'call-id': a.callId,
        CSeq: `${a.cseq} REGISTER`,
        Contact: `<sip:${a.contactUser}@localhost${a.contactParams}>`,
        Expires: String(a.expires),
      };
      const out = await sendOutOfDialog(srf, a.requestUri, { method: 'REGISTER', headers, auth: { username: a.username, password: a.password }, ...(a.proxy === undefined ? {} : { proxy: a.proxy }) }, a.timeoutMs);
      if (out.kind === 'unsent') return { reason: out.error, cseq: a.cseq, unsent: true };
      if (out.kind === 'failure') return { status: undefined, reason: out.error, cseq: a.cseq };
      const cseq = Number(/^\s*(\d+)/.exec(out.res.get('CSeq') ?? '')?.[1] ?? a.cseq);
      const result: RegisterResult = { status: out.status, reason: out.reason, cseq: Number.isFinite(cseq) ? cseq : a.cseq };
      if (out.status >= 200 && out.status < 300) result.granted = grantedExpiry(out.res, out.sent.get('Contact'), a.expires);
      if (out.status === 423) {
        const min = Number(out.res.get('Min-Expires'));
        if (Number.isFinite(min) && min > 0) result.minExpires = min;
      }
      return result;
    },
  };
}

// ---------------------------------------------------------------------------------------
// The lease and the registration loop

/** A registration's state as shown. */
export type CarrierRegistrationState = 'registered' | 'failed' | 'unregistered';

/** A trunk's carrier registration as any instance sees it (from Redis). */
export interface CarrierRegistrationView {
  trunk: string;
  callcenter: string;
  /** `registered` only while the granted expiry has not passed (a holder that died leaves it to expire). */
  state: CarrierRegistrationState;
  /** The instance holding the lease, or null between holders. */
  holder: string | null;
  /** When the binding at the carrier expires (ms since epoch, Redis clock), if it was ever registered. */
  expiresAt: number | null;
  /** The last REGISTER's final status, if it had one. */
  lastStatus: number | null;
  lastError: string | null;
  /** When the last REGISTER ended (ms since epoch, Redis clock). */
  lastAt: number | null;
}

/** What happened to one trunk's registration on this instance (for logs, metrics and tests). */
export type CarrierRegistrationEvent =
  | { type: 'acquired' | 'released' | 'lost'; trunk: string }
  | { type: 'registered'; trunk: string; granted: number }
  | { type: 'failed'; trunk: string; error: string; retryInMs: number };

/** Timing of {@link CarrierRegistrations} (defaults for production; tests shorten them). */
export interface CarrierRegistrationTiming {
  /** How long a lease lives without renewal. */
  leaseMs: number;
  /** How often the holder renews it (well below leaseMs). */
  renewMs: number;
  /** How often an instance without the lease tries to take it. */
  acquireMs: number;
  /** First retry delay after a failed REGISTER; doubles per failure up to retryMaxMs. */
  retryMinMs: number;
  retryMaxMs: number;
  /** How long one REGISTER (with its digest retry) may take. */
  requestTimeoutMs: number;
  /** Shortest refresh delay, whatever the registrar granted. */
  minRefreshMs: number;
}

/** The defaults: a 15 s lease renewed every 5 s; retries from 2 s up to 5 min. */
export const DEFAULT_TIMING: CarrierRegistrationTiming = { leaseMs: 15000, renewMs: 5000, acquireMs: 5000, retryMinMs: 2000, retryMaxMs: 300000, requestTimeoutMs: 10000, minRefreshMs: 1000 };

/** What {@link CarrierRegistrations} needs. */
export interface CarrierRegistrationDeps {
  redis: Redis;
  config: Config;
  logger: Logger;
  /** This instance (status `holder`). */
  instance: string;
  sender: RegisterSender;
  /** Whether this instance can send SIP now (its drachtio-server is connected); default always. */
  ready?: () => boolean;
  timing?: Partial<CarrierRegistrationTiming>;
}

interface RegisterConfig {
  user: string;
  password: string;
  registrar: string;
  domain?: string | undefined;
  expires: number;
}

/** One trunk's registration on this instance. */
interface Slot {
  trunk: string;
  cc: string;
  reg: RegisterConfig;
  lease: string;
  status: string;
  /** Set while this instance holds the lease. */
  token?: string | undefined;
  /** When a renew last confirmed the lease (local clock, only to measure elapsed time). */
  confirmedAt: number;
  callId: string;
  cseq: number;
  fromTag: string;
  expires: number;
  failures: number;
  inFlight: boolean;
  leaseTimer?: NodeJS.Timeout | undefined;
  registerTimer?: NodeJS.Timeout | undefined;
}

const randomId = (bytes: number): string => randomBytes(bytes).toString('hex');

/** The host of `host[:port][;params]` (an IPv6 host keeps its brackets). */
function hostOf(hostport: string): string {
  return hostport.startsWith('[') ? hostport.slice(0, hostport.indexOf(']') + 1) : (hostport.split(':')[0] ?? hostport);
}

/** The address of record a trunk registers: `sip:<user>@<domain, default the registrar's host>`. */
export function carrierAor(reg: Pick<RegisterConfig, 'user' | 'registrar' | 'domain'>): string {
  return `sip:${reg.user}@${reg.domain ?? hostOf(reg.registrar.split(';')[0] ?? '')}`;
}

/** The request URI, proxy and Contact parameters of a registrar `host[:port][;transport=x]`. */
function target(reg: RegisterConfig): { requestUri: string; proxy?: string; aor: string; contactParams: string } {
  const [hostport = '', ...params] = reg.registrar.split(';');
  const tail = params.map((p) => `;${p}`).join('');
  const transport = params.find((p) => p.toLowerCase().startsWith('transport='));
  const contactParams = transport === undefined || transport.toLowerCase() === 'transport=udp' ? '' : `;${transport}`;
  const aor = carrierAor(reg);
  // With a domain of its own the Request-URI names the domain (RFC 3261 10.2) and the
  // registrar is the next hop; otherwise the registrar is both.
  if (reg.domain !== undefined) return { requestUri: `sip:${reg.domain}`, proxy: `sip:${hostport}${tail}`, aor, contactParams };
  return { requestUri: `sip:${hostport}${tail}`, aor, contactParams };
}

/**
 * Keeps every trunk with `register` registered to its carrier, one instance at a time.
 * `start()` begins trying to take the leases; `stop()` releases those held; `views()` reads
 * every registration's status from Redis (any instance, holder or not).
 */
export class CarrierRegistrations {
  private readonly slots: Slot[] = [];
  private readonly timing: CarrierRegistrationTiming;
  private readonly listeners = new Set<(e: CarrierRegistrationEvent) => void>();
  private running = false;

  constructor(private readonly deps: CarrierRegistrationDeps) {
    this.timing = { ...DEFAULT_TIMING, ...(deps.timing ?? {}) };
    for (const [trunk, t] of Object.entries(deps.config.sip.trunks)) {
      if (t.register === undefined) continue;
      const k = callCenterKeys(deps.config.redis.keyPrefix, t.callcenter);
      this.slots.push({ trunk, cc: t.callcenter, reg: t.register, lease: k.trunkRegLease(trunk), status: k.trunkReg(trunk), confirmedAt: 0, callId: '', cseq: 0, fromTag: '', expires: t.register.expires, failures: 0, inFlight: false });
    }
  }

  /** The trunks this instance keeps registered. */
  get trunks(): string[] {
    return this.slots.map((s) => s.trunk);
  }

  /** Whether this instance holds `trunk`'s lease now. */
  holds(trunk: string): boolean {
    return this.slots.some((s) => s.trunk === trunk && s.token !== undefined);
  }

  /** Calls `fn` with every registration event of this instance; returns the unsubscribe. */
  listen(fn: (e: CarrierRegistrationEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Starts trying to take the leases (at once, then every `acquireMs`). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const s of this.slots) this.leaseTick(s, 0);
  }

  /** Stops every timer and releases the leases held (the carrier bindings stay until they expire). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(
      this.slots.map(async (s) => {
        clearTimeout(s.leaseTimer);
        clearTimeout(s.registerTimer);
        const token = s.token;
        if (token === undefined) return;
        s.token = undefined;
        try {
          await this.deps.redis.ccsTrunkLeaseRelease(s.lease, s.status, token);
          this.emit({ type: 'released', trunk: s.trunk });
          this.deps.logger.info({ trunk: s.trunk }, 'carrier registration handed over (lease released)');
        } catch (err) {
          // Redis is gone: the lease expires by itself and another instance takes over then.
          this.deps.logger.warn({ err, trunk: s.trunk }, 'could not release the carrier registration lease; it will expire');
        }
      }),
    );
  }

  /** Every registering trunk's status (of call center `cc`, if given), from Redis. */
  async views(cc?: string): Promise<CarrierRegistrationView[]> {
    const slots = this.slots.filter((s) => cc === undefined || s.cc === cc);
    if (slots.length === 0) return [];
    const pipe = this.deps.redis.pipeline();
    pipe.time();
    for (const s of slots) pipe.hgetall(s.status);
    const rows = (await pipe.exec()) ?? [];
    for (const [err] of rows) if (err) throw err;
    const [sec, usec] = rows[0]![1] as [string, string];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    return slots.map((s, i) => {
      const h = rows[i + 1]![1] as Record<string, string>;
      const num = (v: string | undefined): number | null => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v));
      const expiresAt = num(h.expiresAt);
      let state: CarrierRegistrationState = h.state === 'registered' || h.state === 'failed' ? h.state : 'unregistered';
      if (state === 'registered' && (expiresAt === null || expiresAt <= now)) state = 'unregistered';
      return { trunk: s.trunk, callcenter: s.cc, state, holder: h.holder === undefined || h.holder === '' ? null : h.holder, expiresAt, lastStatus: num(h.lastStatus), lastError: h.lastError === undefined || h.lastError === '' ? null : h.lastError, lastAt: num(h.lastAt) };
    });
  }

  private emit(e: CarrierRegistrationEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.deps.logger.error({ err }, 'carrier registration listener failed');
      }
    }
  }

  private leaseTick(s: Slot, delay: number): void {
    if (!this.running) return;
    clearTimeout(s.leaseTimer);
    s.leaseTimer = setTimeout(() => {
      void this.onLeaseTick(s)
        .catch((err: unknown) => this.deps.logger.error({ err, trunk: s.trunk }, 'carrier registration lease check failed'))
        .finally(() => this.leaseTick(s, s.token === undefined ? this.timing.acquireMs : this.timing.renewMs));
    }, delay);
    // Local timers: they drive SIP from this process only, so they must not keep it alive.
    s.leaseTimer.unref();
  }

  private async onLeaseTick(s: Slot): Promise<void> {
    const ready = this.deps.ready?.() ?? true;
    if (s.token === undefined) {
      if (!ready) return;
      const token = randomId(16);
      let got = 0;
      try {
        got = await this.deps.redis.ccsTrunkLeaseAcquire(s.lease, s.status, token, this.deps.instance, this.timing.leaseMs);
      } catch (err) {
        this.deps.logger.debug({ err, trunk: s.trunk }, 'carrier registration lease: Redis error');
        return;
      }
      if (got !== 1 || !this.running) {
        if (got === 1) await this.deps.redis.ccsTrunkLeaseRelease(s.lease, s.status, token).catch(() => undefined);
        return;
      }
      // A new holder is a new UA towards the registrar: fresh Call-ID, CSeq and tag.
      Object.assign(s, { token, confirmedAt: Date.now(), callId: `${randomId(12)}@ccswitch`, cseq: 1, fromTag: randomId(6), failures: 0, expires: s.reg.expires });
      this.deps.logger.info({ trunk: s.trunk, instance: this.deps.instance }, 'carrier registration taken over by this instance');
      this.emit({ type: 'acquired', trunk: s.trunk });
      this.registerSoon(s, 0);
      return;
    }
    if (!ready) {
      // This instance cannot send SIP now: hand the registration to one that can.
      const token = s.token;
      this.drop(s);
      await this.deps.redis.ccsTrunkLeaseRelease(s.lease, s.status, token).catch(() => undefined);
      this.deps.logger.warn({ trunk: s.trunk }, 'drachtio-server not connected: carrier registration lease released');
      this.emit({ type: 'released', trunk: s.trunk });
      return;
    }
    const token = s.token;
    try {
      const kept = await this.deps.redis.ccsTrunkLeaseRenew(s.lease, token, this.timing.leaseMs);
      if (s.token !== token) return;
      if (kept === 1) {
        s.confirmedAt = Date.now();
        return;
      }
      this.lost(s, 'lease taken by another instance or expired');
    } catch (err) {
      if (s.token !== token) return;
      // Unconfirmed for a whole lease time: it may have expired and been taken; stop sending.
      if (Date.now() - s.confirmedAt >= this.timing.leaseMs) this.lost(s, `lease not confirmed for ${this.timing.leaseMs} ms (Redis: ${err instanceof Error ? err.message : String(err)})`);
    }
  }

  private drop(s: Slot): void {
    s.token = undefined;
    clearTimeout(s.registerTimer);
    s.registerTimer = undefined;
  }

  private lost(s: Slot, why: string): void {
    this.drop(s);
    this.deps.logger.warn({ trunk: s.trunk, why }, 'carrier registration lease lost; no longer registering');
    this.emit({ type: 'lost', trunk: s.trunk });
  }

  private registerSoon(s: Slot, delay: number): void {
    clearTimeout(s.registerTimer);
    s.registerTimer = setTimeout(() => void this.register(s), delay);
    s.registerTimer.unref();
  }

  private async register(s: Slot): Promise<void> {
    const token = s.token;
    if (token === undefined || s.inFlight || !this.running) return;
    s.inFlight = true;
    try {
      const t = target(s.reg);
      const res = await this.deps.sender.register({
        trunk: s.trunk, requestUri: t.requestUri, proxy: t.proxy, aor: t.aor, contactUser: s.reg.user, contactParams: t.contactParams,
        callId: s.callId, cseq: s.cseq, fromTag: s.fromTag, expires: s.expires, username: s.reg.user, password: s.reg.password, timeoutMs: this.timing.requestTimeoutMs,
      });
      if (s.token !== token) return; // lost or stopped meanwhile: whatever came back is not ours to record
      s.cseq = res.cseq + 1;
      const ok = res.status !== undefined && res.status >= 200 && res.status < 300;
      if (ok) {
        const granted = res.granted ?? s.expires;
        if (!(await this.report(s, token, 'registered', granted * 1000, res.status, ''))) return;
        s.failures = 0;
        this.deps.logger.info({ trunk: s.trunk, granted }, 'registered to carrier');
        this.emit({ type: 'registered', trunk: s.trunk, granted });
        // Refresh at half the granted time: early enough for a retry or two before it lapses.
        this.registerSoon(s, Math.max(this.timing.minRefreshMs, (granted * 1000) / 2));
        return;
      }
      if (res.status === 423 && res.minExpires !== undefined && res.minExpires > s.expires) {
        // RFC 3261 10.2.8: ask again with at least the registrar's Min-Expires.
        s.expires = res.minExpires;
        this.registerSoon(s, 0);
        return;
      }
      // No final response: drachtio-srf may still wait for this Call-ID's challenged retry,
      // so a fresh Call-ID keeps the next challenge from being taken for that one's answer.
      if (res.status === undefined) s.callId = `${randomId(12)}@ccswitch`;
      s.failures++;
      const retryInMs = Math.min(this.timing.retryMaxMs, this.timing.retryMinMs * 2 ** Math.min(s.failures - 1, 20));
      const error = res.status === undefined ? res.reason : `${res.status} ${res.reason}`.trim();
      if (!(await this.report(s, token, 'failed', '', res.status, error))) return;
      if (s.failures === 1 || s.failures % 10 === 0) this.deps.logger.warn({ trunk: s.trunk, error, failures: s.failures, retryInMs }, 'carrier registration failed');
      this.emit({ type: 'failed', trunk: s.trunk, error, retryInMs });
      this.registerSoon(s, retryInMs);
    } catch (err) {
      this.deps.logger.error({ err, trunk: s.trunk }, 'carrier registration attempt failed');
      if (s.token === token) this.registerSoon(s, this.timing.retryMinMs);
    } finally {
      s.inFlight = false;
    }
  }

  /** Writes the outcome if this instance still holds the lease; false (and the lease dropped) otherwise. */
  private async report(s: Slot, token: string, state: CarrierRegistrationState, expiresInMs: number | '', status: number | undefined, error: string): Promise<boolean> {
    const at = await this.deps.redis.ccsTrunkRegReport(s.lease, s.status, token, this.deps.instance, state, expiresInMs === '' ? '' : Math.round(expiresInMs), status ?? '', error.slice(0, 500));
    if (at !== 0) return true;
    if (s.token === token) this.lost(s, 'status write refused: lease no longer ours');
    return false;
  }
}
