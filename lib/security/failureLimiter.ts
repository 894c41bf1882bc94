/**
 * Brute-force limits (issue "faults", item 7): authentication failures counted per source
 * address in Redis, so every instance sees the same count, over a fixed window that starts
 * with the first failure. A source over its limit is refused for the rest of the window
 * (SIP 403, REST 429) whatever it sends, so a guessed password is worth nothing inside it.
 */
import type { Redis } from 'ioredis';

/** A limit: `count` failures in `seconds`. */
export interface FailureLimit {
  count: number;
  seconds: number;
}

/** How long an instance trusts a "not blocked" answer from Redis for a source, ms. */
export const NOT_BLOCKED_CACHE_MS = 250;
/** Most sources remembered at once; past it the memory starts afresh (a flood of new sources). */
const CACHE_MAX = 10_000;

/**
 * Counts one kind of authentication failure (`sip`, `http`) per source address.
 *
 * A "not blocked" answer is remembered for {@link NOT_BLOCKED_CACHE_MS} per source: a desk
 * phone's feature code is two INVITEs (the challenge, then the credentials) a few ms apart,
 * and one Redis GET per request was half of what authenticating it cost (measured in the SIP
 * benchmark). Nothing weakens within an instance: a failure here that reaches the limit drops
 * the memory, so the next request asks Redis and is refused. A source blocked by failures at
 * another instance is served here for at most that long more, and its next failure here
 * (counted in Redis as before) ends it. "Blocked" is never remembered, so a source is served
 * again as soon as its window ends.
 */
export class FailureLimiter {
  private readonly notBlocked = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly kind: 'sip' | 'http',
    private readonly limit: FailureLimit,
    private readonly now: () => number = Date.now,
  ) {}

  private key(source: string): string {
    // Sources are IP addresses (from the transport, never a header); keep the key printable.
    return `${this.prefix}:authfail:${this.kind}:${source.replace(/[^0-9A-Fa-f:.]/g, '_').slice(0, 64)}`;
  }

  /** Whether `source` is over its limit now. */
  async blocked(source: string): Promise<boolean> {
    const until = this.notBlocked.get(source);
    if (until !== undefined && until > this.now()) return false;
    const n = await this.redis.get(this.key(source));
    const blocked = n !== null && Number(n) >= this.limit.count;
    if (blocked) this.notBlocked.delete(source);
    else {
      if (this.notBlocked.size >= CACHE_MAX) this.notBlocked.clear();
      this.notBlocked.set(source, this.now() + NOT_BLOCKED_CACHE_MS);
    }
    return blocked;
  }

  /** Records one failure; returns true when this one reached the limit (worth one log line). */
  async failed(source: string): Promise<boolean> {
    const n = Number(await this.redis.ccsAuthFailure(this.key(source), Math.round(this.limit.seconds * 1000)));
    // At the limit the next request must ask Redis (and be refused), not this instance's memory.
    if (n >= this.limit.count) this.notBlocked.delete(source);
    return n === this.limit.count;
  }
}
