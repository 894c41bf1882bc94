/**
 * Digest authentication of SIP requests from agents' devices (DESIGN.md section 4): the
 * agent is the authenticated digest user, never a header the caller can forge. REGISTER is
 * challenged with 401/WWW-Authenticate, INVITE with 407/Proxy-Authenticate.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { challenge, parseDigest, verifyDigest, type NonceIssuer } from '../../lib/sip/digest';
import { callCenterKeys } from '../../lib/store/keys';
import { FailureLimiter } from '../../lib/security/failureLimiter';
import type { SipRequest } from './types';

/** Outcome of authenticating one request. */
export type AuthOutcome =
  | { ok: true; cc: string; agent: string; role: 'agent' | 'supervisor' }
  | { ok: false; status: number; reason: string; headers?: Record<string, string> };

/** Authenticates requests against the agents' and supervisors' SIP passwords. */
export class SipAuthenticator {
  /** Digest username → call centers that have such an agent. */
  private readonly users = new Map<string, string[]>();

  private readonly failures: FailureLimiter;

  constructor(
    private readonly deps: { redis: Redis; config: Config; nonces: () => Promise<NonceIssuer>; logger: Logger; now?: () => number },
  ) {
    this.failures = new FailureLimiter(deps.redis, deps.config.redis.keyPrefix, 'sip', deps.config.sip.authFailureLimit);
    // Agents and supervisors share one name space per call center (the config refuses a clash).
    for (const cc of Object.values(deps.config.callcenters))
      for (const id of [...Object.keys(cc.agents), ...Object.keys(cc.supervisors)]) this.users.set(id, [...(this.users.get(id) ?? []), cc.id]);
  }

  /** The realm challenges name. */
  get realm(): string {
    return this.deps.config.sip.realm ?? 'ccswitch';
  }

  private challengeOf(nonces: NonceIssuer, kind: 'register' | 'invite', stale: boolean): AuthOutcome {
    const header = challenge({ realm: this.realm, nonce: nonces.issue(this.now()), stale });
    return kind === 'register'
      ? { ok: false, status: 401, reason: 'Unauthorized', headers: { 'WWW-Authenticate': header } }
      : { ok: false, status: 407, reason: 'Proxy Authentication Required', headers: { 'Proxy-Authenticate': header } };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Authenticates `req`; a missing, stale or replayed credential gets a fresh challenge. */
  async authenticate(req: SipRequest, kind: 'register' | 'invite'): Promise<AuthOutcome> {
    // A source over its digest-failure limit is refused whatever it sends (brute force).
    if (await this.failures.blocked(req.source_address)) return { ok: false, status: 403, reason: 'Too Many Failures' };
    const nonces = await this.deps.nonces();
    const header = req.get(kind === 'register' ? 'Authorization' : 'Proxy-Authorization');
    if (header === undefined || header === '') return this.challengeOf(nonces, kind, false);
    const creds = parseDigest(header);
    if (creds === null) return this.challengeOf(nonces, kind, false);
    const ccs = this.users.get(creds.username) ?? [];
    if (ccs.length > 1) return { ok: false, status: 403, reason: 'Ambiguous User' };
    const cc = ccs[0];
    const verdict = verifyDigest(creds, {
      realm: this.realm,
      method: req.method,
      passwordFor: (u) => {
        const center = cc === undefined ? undefined : this.deps.config.callcenters[cc];
        return center === undefined ? undefined : Object.hasOwn(center.agents, u) ? center.agents[u]!.password : Object.hasOwn(center.supervisors, u) ? center.supervisors[u]!.password : undefined;
      },
      nonces,
      nowMs: this.now(),
    });
    if (verdict.kind === 'challenge') return this.challengeOf(nonces, kind, verdict.stale);
    if (verdict.kind === 'forbidden' || cc === undefined) {
      if (await this.failures.failed(req.source_address)) {
        const { count, seconds } = this.deps.config.sip.authFailureLimit;
        this.deps.logger.warn({ source: req.source_address, user: creds.username, count, seconds }, 'digest failures over the limit: the source is refused for the rest of the window');
      }
      return { ok: false, status: 403, reason: verdict.kind === 'forbidden' && verdict.reason === 'unknown user' ? 'Unknown User' : 'Forbidden' };
    }
    // Replay guard after the hash matched, so wrong guesses cannot burn nonce counts.
    const guard = callCenterKeys(this.deps.config.redis.keyPrefix, cc).nonce(createHash('sha1').update(verdict.nonce).digest('hex'));
    const fresh = await this.deps.redis.ccsNonceUse(guard, verdict.nc, this.deps.config.sip.nonceTtlSeconds * 2000);
    if (fresh !== 1) {
      this.deps.logger.warn({ agent: verdict.username, callId: req.callId, source: req.source_address }, 'replayed digest credentials refused');
      return this.challengeOf(nonces, kind, false);
    }
    return { ok: true, cc, agent: verdict.username, role: Object.hasOwn(this.deps.config.callcenters[cc]!.agents, verdict.username) ? 'agent' : 'supervisor' };
  }
}
