/**
 * Bearer-token authentication. Tokens are compared through their SHA-256 digests with
 * `timingSafeEqual`, so neither a token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Checks `Authorization: Bearer <token>` headers against a fixed set of tokens. */
export class BearerAuth {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  /** True if there are no tokens at all (every request will be refused). */
  get empty(): boolean {
    return this.digests.length === 0;
  }

  /** True if the header carries one of the tokens. */
  check(header: string | undefined): boolean {
    if (header === undefined) return false;
    const m = /^Bearer[ ]+([^\s]{1,512})\s*$/i.exec(header);
    if (m === null) return false;
    const d = digest(m[1]!);
    let ok = false;
    // Compare against all tokens, not stopping early, for constant work per request.
    for (const t of this.digests) ok = timingSafeEqual(t, d) || ok;
    return ok;
  }
}
