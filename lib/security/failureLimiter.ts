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

/** Counts one kind of authentication failure (`sip`, `http`) per source address. */
export class FailureLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly kind: 'sip' | 'http',
    private readonly limit: FailureLimit,
  ) {}

  private key(source: string): string {
    // Sources are IP addresses (from the transport, never a header); keep the key printable.
    return `${this.prefix}:authfail:${this.kind}:${source.replace(/[^0-9A-Fa-f:.]/g, '_').slice(0, 64)}`;
  }

  /** Whether `source` is over its limit now. */
  async blocked(source: string): Promise<boolean> {
    const n = await this.redis.get(this.key(source));
    return n !== null && Number(n) >= this.limit.count;
  }

  /** Records one failure; returns true when this one reached the limit (worth one log line). */
  async failed(source: string): Promise<boolean> {
    const n = Number(await this.redis.ccsAuthFailure(this.key(source), Math.round(this.limit.seconds * 1000)));
    return n === this.limit.count;
  }
}
