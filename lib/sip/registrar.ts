/**
 * The registrar's store (RFC 3261 section 10.3): an agent's contact bindings live in Redis
 * with their expiry, every change is one script (REGISTER_APPLY), and expired bindings are
 * swept by the deadline worker, so a binding never outlives its expiry even if the instance
 * that accepted it is gone. Readers also filter by expiry, so a late sweep is harmless.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import { CcsError } from '../errors';
import { callCenterKeys, registrationMember } from '../store/keys';

/** A contact binding as stored. */
export interface Binding {
  /** Contact URI as the device sent it (the target of calls to the agent). */
  contact: string;
  /** Seconds until it expires. */
  expires: number;
  /** Source address of the REGISTER (`ip:port`). */
  source: string;
  /** Transport the device registered over (`udp`, `tcp`, `tls`, `ws`, `wss`). */
  transport: string;
  /** The drachtio-server (`host:port` of its SIP contact) that holds the device's connection. */
  server: string;
  userAgent: string;
  callId: string;
  cseq: number;
}

/** One REGISTER, already authenticated. */
export interface RegisterRequest {
  agent: string;
  /** `'*'` with expires 0 removes every binding (RFC 3261 10.2.2). */
  contacts: '*' | { uri: string; expires: number }[];
  callId: string;
  cseq: number;
  source: string;
  transport: string;
  server: string;
  userAgent: string;
}

/** RFC 3261 423 Interval Too Brief: the requested expiry is below Min-Expires. */
export class IntervalTooBriefError extends CcsError {
  constructor(readonly minExpires: number) {
    super('invalid_request', `registration interval below the minimum of ${minExpires} s`, { minExpires });
  }
}

/** A REGISTER that the bindings refuse (out of order, too many contacts). */
export class RegistrationRefusedError extends CcsError {
  constructor(
    readonly why: 'out_of_order' | 'too_many',
    message: string,
  ) {
    super('invalid_request', message, { why });
  }
}

const MAX_URI = 512;

/** Applies REGISTERs and answers "where is agent X". */
export class Registrar {
  constructor(private readonly deps: { redis: Redis; config: Config }) {}

  /**
   * Clamps each expiry to the configured range (below the minimum, but not zero, is 423),
   * applies the request and returns every current binding of the agent (for the 200 OK).
   */
  async register(cc: string, req: RegisterRequest): Promise<Binding[]> {
    const { sip } = this.deps.config;
    const k = callCenterKeys(this.deps.config.redis.keyPrefix, cc);
    const args: (string | number)[] = [registrationMember(req.agent), req.callId, req.cseq, sip.maxContacts, req.contacts === '*' ? '1' : '0'];
    if (req.contacts !== '*') {
      for (const c of req.contacts) {
        if (c.uri.length > MAX_URI) throw new RegistrationRefusedError('too_many', `contact longer than ${MAX_URI} characters`);
        if (c.expires !== 0 && c.expires < sip.minExpires) throw new IntervalTooBriefError(sip.minExpires);
        const expires = Math.min(c.expires, sip.maxExpires);
        const binding = { source: req.source, transport: req.transport, server: req.server, userAgent: req.userAgent.slice(0, 256), callId: req.callId, cseq: req.cseq };
        args.push(c.uri, expires, JSON.stringify(binding));
      }
    }
    const reply = await this.deps.redis.ccsRegisterApply(k.registrations(req.agent), k.registrationExpiry(req.agent), k.deadlines, k.deadlineClaims, ...args);
    if (reply[0] === 'out_of_order') throw new RegistrationRefusedError('out_of_order', 'a REGISTER with the same Call-ID and a higher CSeq was already applied');
    if (reply[0] === 'too_many') throw new RegistrationRefusedError('too_many', `more than ${sip.maxContacts} contacts`);
    return parseBindings(reply.slice(1));
  }

  /** The agent's live bindings (expired ones are never returned, swept or not). */
  async bindings(cc: string, agent: string): Promise<Binding[]> {
    const k = callCenterKeys(this.deps.config.redis.keyPrefix, cc);
    const [[e1, time], [e2, all], [e3, hash]] = (await this.deps.redis
      .multi()
      .time()
      .zrange(k.registrationExpiry(agent), 0, -1, 'WITHSCORES')
      .hgetall(k.registrations(agent))
      .exec()) as [[Error | null, [string, string]], [Error | null, string[]], [Error | null, Record<string, string>]];
    const err = e1 ?? e2 ?? e3;
    if (err) throw err;
    const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const flat: string[] = [];
    for (let i = 0; i + 1 < all.length; i += 2) {
      const remaining = Number(all[i + 1]) - now;
      const json = hash[all[i]!];
      if (remaining > 0 && json !== undefined) flat.push(all[i]!, json, String(remaining));
    }
    return parseBindings(flat);
  }

  /** Deadline handler for `regexp|<agent>`: drops expired bindings, re-arms. */
  async sweep(cc: string, agent: string, token: string): Promise<number> {
    const k = callCenterKeys(this.deps.config.redis.keyPrefix, cc);
    return this.deps.redis.ccsRegisterSweep(k.registrations(agent), k.registrationExpiry(agent), k.deadlines, k.deadlineClaims, registrationMember(agent), token);
  }
}

function parseBindings(flat: string[]): Binding[] {
  const out: Binding[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const b = JSON.parse(flat[i + 1]!) as Omit<Binding, 'contact' | 'expires'>;
    out.push({ contact: flat[i]!, expires: Math.max(1, Math.round(Number(flat[i + 2]) / 1000)), ...b });
  }
  return out;
}
