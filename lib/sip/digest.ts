/**
 * SIP digest authentication (RFC 2617 MD5 with qop=auth, as RFC 3261 uses it): parsing the
 * Authorization / Proxy-Authorization header, stateless nonces, the challenge header and the
 * verification verdict. Pure code: no Redis, no drachtio, no clock of its own (the caller passes
 * `nowMs`, e.g. from Redis TIME), so every instance gives the same answer for the same input.
 *
 * What it deliberately leaves to the caller:
 * - Replay detection. A nonce-count check needs shared state (Redis), so after an `ok` verdict
 *   the caller must still check that the returned `nc` is higher than the last one accepted for
 *   the returned `nonce`, and answer a replay with a fresh challenge. It runs only after the hash
 *   matched, so bad guesses cannot burn nonce counters.
 * - Choosing 401 + WWW-Authenticate (REGISTER) or 407 + Proxy-Authenticate (INVITE), and the
 *   REGISTER rule that the To user must equal the authenticated user.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The directives of a `Digest` credentials header, names lowercased, quotes removed. */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  /** The digest-uri exactly as the client sent it; it is hashed as is (see {@link verifyDigest}). */
  uri: string;
  /** The request-digest: 32 hex digits. */
  response: string;
  algorithm?: string;
  qop?: string;
  /** Nonce count: 8 hex digits when qop is present. */
  nc?: string;
  cnonce?: string;
  opaque?: string;
}

/**
 * Longest header we parse. Real credentials are a few hundred characters; the cap bounds the
 * work an unauthenticated peer can make us do per request.
 */
export const MAX_DIGEST_HEADER_LENGTH = 4096;

const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;
const OPTIONAL = ['algorithm', 'qop', 'nc', 'cnonce', 'opaque'] as const;

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** C0 controls other than HTAB, and DEL: never legal inside a quoted-string (RFC 3261 qdtext). */
const isControl = (c: string): boolean => {
  const code = c.charCodeAt(0);
  return (code < 0x20 && code !== 0x09) || code === 0x7f;
};

/**
 * An unquoted value runs up to whitespace, a comma, a quote or a backslash. That is looser than
 * RFC 3261 `token` on purpose: some phones send e.g. an unquoted uri, and accepting it costs
 * nothing because every value is checked (or hashed) afterwards anyway.
 */
const isBareValueChar = (c: string): boolean => !isSpace(c) && c !== ',' && c !== '"' && c !== '\\' && !isControl(c);

/** RFC 3261 token characters, for directive names. */
const isTokenChar = (c: string): boolean => /^[A-Za-z0-9\-.!%*_+`'~]$/.test(c);

/**
 * Parses a `Digest` Authorization or Proxy-Authorization header value.
 *
 * Quoted strings are read character by character, so commas and escaped quotes inside them
 * (`username="a\"b,c"`) do not split the list. Directive names are case-insensitive and are
 * lowercased; unknown directives are ignored (RFC 2617 §3.2.2), empty list elements too.
 *
 * @returns the credentials, or `null` when the scheme is not Digest, the header is longer than
 *   {@link MAX_DIGEST_HEADER_LENGTH}, it is syntactically broken (unterminated quote, junk
 *   between directives, a directive given twice — an ambiguity an attacker could play on), or
 *   one of username, realm, nonce, uri, response is missing.
 */
export function parseDigest(header: string): DigestCredentials | null {
  if (header.length > MAX_DIGEST_HEADER_LENGTH) return null;
  const scheme = /^[ \t]*Digest[ \t]+/i.exec(header);
  if (scheme === null) return null;

  const params = new Map<string, string>();
  const n = header.length;
  let i = scheme[0].length;
  const skipSpace = (): void => {
    while (i < n && isSpace(header[i])) i++;
  };

  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (header[i] === ',') {
      i++;
      continue;
    }

    const nameStart = i;
    while (i < n && isTokenChar(header[i]!)) i++;
    if (i === nameStart) return null;
    const name = header.slice(nameStart, i).toLowerCase();
    skipSpace();
    if (header[i] !== '=') return null;
    i++;
    skipSpace();

    let value = '';
    if (header[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        let c = header[i]!;
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        if (c === '\\') {
          i++;
          if (i >= n) return null;
          c = header[i]!;
        }
        if (isControl(c)) return null;
        value += c;
        i++;
      }
      if (!closed) return null;
    } else {
      const valueStart = i;
      while (i < n && isBareValueChar(header[i]!)) i++;
      if (i === valueStart) return null;
      value = header.slice(valueStart, i);
    }

    if (params.has(name)) return null;
    params.set(name, value);
    skipSpace();
    if (i < n && header[i] !== ',') return null;
  }

  const out: Partial<DigestCredentials> = {};
  for (const key of REQUIRED) {
    const v = params.get(key);
    if (v === undefined) return null;
    out[key] = v;
  }
  for (const key of OPTIONAL) {
    const v = params.get(key);
    if (v !== undefined) out[key] = v;
  }
  return out as DigestCredentials;
}

const TS_BYTES = 8;
const RAND_BYTES = 12;
const MAC_BYTES = 16;
const NONCE_BYTES = TS_BYTES + RAND_BYTES + MAC_BYTES;
/** 36 bytes is a multiple of 3, so base64url is exactly 48 characters with no padding. */
const NONCE_RE = /^[A-Za-z0-9_-]{48}$/;

/**
 * How far in the future a nonce's timestamp may be. Instances stamp nonces with their own clock
 * (or Redis TIME), so a little skew between them is normal; a nonce far in the future can only
 * come from a leaked key or a badly wrong clock, and would otherwise outlive its TTL.
 */
export const NONCE_FUTURE_SKEW_MS = 30_000;

/**
 * Issues and checks stateless nonces: `base64url(ts ‖ rand ‖ mac)` where `ts` is the issue time
 * in ms (8 bytes big-endian), `rand` 12 random bytes and `mac` the first 16 bytes of
 * HMAC-SHA256(key, ts ‖ rand). Any instance holding the same key can verify a nonce another one
 * issued, so nothing is stored per challenge and a client may send its answer to any instance.
 *
 * The nonce is not bound to the realm or method: the realm is checked and hashed into the
 * response anyway, and binding more would only make a legitimate retry on another request fail.
 */
export class NonceIssuer {
  private readonly key: Buffer;

  /**
   * @param key per-deployment secret shared by every instance (e.g. 32 random bytes kept in
   *   Redis or the config); copied, so later changes to the caller's buffer have no effect.
   * @param ttlMs how long a nonce stays good; older ones are `stale`.
   */
  constructor(
    key: Buffer,
    readonly ttlMs: number,
  ) {
    // An empty key would make every MAC forgeable by anyone who reads this file.
    if (key.length < 16) throw new RangeError('nonce key must be at least 16 bytes');
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('nonce ttlMs must be a positive number');
    this.key = Buffer.from(key);
  }

  /** A new nonce stamped with `nowMs` (milliseconds since the epoch). */
  issue(nowMs: number): string {
    if (!Number.isFinite(nowMs) || nowMs < 0) throw new RangeError('nowMs must be a non-negative number');
    const body = Buffer.alloc(TS_BYTES + RAND_BYTES);
    body.writeBigUInt64BE(BigInt(Math.floor(nowMs)), 0);
    randomBytes(RAND_BYTES).copy(body, TS_BYTES);
    return Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /**
   * Checks a nonce at time `nowMs`.
   *
   * @returns `ok`; `stale` when the MAC is good but the nonce is older than the TTL (the client
   *   knew the password, so a `stale=true` challenge lets it retry without asking the user);
   *   `invalid` when the length, encoding or MAC is wrong, or the timestamp lies more than
   *   {@link NONCE_FUTURE_SKEW_MS} in the future.
   * @throws RangeError when `nowMs` is not a finite number (a caller bug, not a client's fault).
   */
  check(nonce: string, nowMs: number): 'ok' | 'stale' | 'invalid' {
    // NaN would make both time comparisons false, i.e. 'ok' forever.
    if (!Number.isFinite(nowMs)) throw new RangeError('nowMs must be a finite number');
    if (!NONCE_RE.test(nonce)) return 'invalid';
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BYTES) return 'invalid';
    const body = raw.subarray(0, TS_BYTES + RAND_BYTES);
    if (!timingSafeEqual(raw.subarray(TS_BYTES + RAND_BYTES), this.mac(body))) return 'invalid';
    // Beyond 2^53 the Number is imprecise, but such a timestamp is far in the future anyway.
    const issuedAt = Number(raw.readBigUInt64BE(0));
    if (issuedAt > nowMs + NONCE_FUTURE_SKEW_MS) return 'invalid';
    return nowMs - issuedAt > this.ttlMs ? 'stale' : 'ok';
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}

/** Escapes a value for a quoted-string (RFC 3261 quoted-pair): backslash and double quote. */
const quote = (s: string): string => `"${s.replace(/[\\"]/g, '\\$&')}"`;

/**
 * The value of a WWW-Authenticate (401) or Proxy-Authenticate (407) header:
 * `Digest realm="…", nonce="…", opaque="…", algorithm=MD5, qop="auth"`, plus `, stale=true`
 * when `stale` is set. qop is always offered because without it the response does not cover a
 * client nonce and nonce counts (and so replays) cannot be tracked. `opaque` is left out when
 * not given; it carries no security here (the nonce is MAC'd), clients only echo it.
 */
export function challenge(opts: { realm: string; nonce: string; opaque?: string; stale?: boolean }): string {
  const parts = [`realm=${quote(opts.realm)}`, `nonce=${quote(opts.nonce)}`];
  if (opts.opaque !== undefined) parts.push(`opaque=${quote(opts.opaque)}`);
  parts.push('algorithm=MD5', 'qop="auth"');
  if (opts.stale === true) parts.push('stale=true');
  return `Digest ${parts.join(', ')}`;
}

/** Inputs of {@link digestResponse}; `nc`, `cnonce` and `qop` go together. */
export interface DigestResponseParams {
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  /** 8 hex digits, hashed exactly as written. */
  nc?: string;
  cnonce?: string;
  /** `auth` or absent; `auth-int` (hashing the body) is not supported. */
  qop?: string;
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

/**
 * The RFC 2617 MD5 request-digest (lowercase hex). HA1 = MD5(username:realm:password),
 * HA2 = MD5(method:uri); with qop=auth the result is MD5(HA1:nonce:nc:cnonce:qop:HA2), without
 * qop MD5(HA1:nonce:HA2). Used by the verifier and by tests acting as the client.
 *
 * @throws RangeError when qop is something other than `auth`, or qop is set without nc and cnonce.
 */
export function digestResponse(p: DigestResponseParams): string {
  const ha1 = md5(`${p.username}:${p.realm}:${p.password}`);
  const ha2 = md5(`${p.method}:${p.uri}`);
  if (p.qop === undefined) return md5(`${ha1}:${p.nonce}:${ha2}`);
  if (p.qop !== 'auth') throw new RangeError(`unsupported qop '${p.qop}'`);
  if (p.nc === undefined || p.cnonce === undefined) throw new RangeError('qop=auth needs nc and cnonce');
  return md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
}

/**
 * What to do with a request after checking its credentials.
 * - `ok`: the password matched. The caller must still run the replay check on `nonce` / `nc`
 *   (see the module comment) before trusting the request.
 * - `challenge`: answer 401/407 with a fresh nonce, `stale=true` when `stale`. The client did not
 *   prove it has a wrong password (bad parameters, unknown or expired nonce), so it may retry.
 * - `forbidden`: answer 403 (DESIGN.md §4 "not authenticated"); the client proved the password
 *   wrong, or the user does not exist.
 */
export type DigestVerdict =
  | { kind: 'ok'; username: string; nonce: string; nc: number }
  | { kind: 'challenge'; stale: boolean; reason: string }
  | { kind: 'forbidden'; reason: string };

/** Everything {@link verifyDigest} needs besides the credentials. */
export interface DigestVerifyContext {
  /** Our realm (the call center's); the credentials must name exactly this one. */
  realm: string;
  /** The SIP method of the request being authenticated, as received (e.g. `INVITE`). */
  method: string;
  /** The agent's password, or undefined when there is no such user. */
  passwordFor: (username: string) => string | undefined;
  nonces: NonceIssuer;
  nowMs: number;
}

const NC_RE = /^[0-9a-fA-F]{8}$/;

/**
 * Verifies parsed credentials. Checks, in this order:
 * 1. realm equals ours, 2. algorithm absent or MD5, 3. qop is `auth`, 4. nc is 8 hex digits and
 *    cnonce present — any failure: `challenge` (stale false);
 * 5. unknown username: `forbidden` ('unknown user'). Checked before the nonce so the answer is
 *    the same 403 whatever nonce is sent; usernames are extension numbers, not secrets;
 * 6. nonce `invalid`: `challenge` (stale false) — a forged or foreign nonce earns no `stale`,
 *    which would tell a client its password was right; nonce `stale`: `challenge` (stale true);
 * 7. the response compared in constant time: mismatch is `forbidden` ('wrong password').
 *
 * The digest `uri` is hashed as sent and not compared with the Request-URI: sipp sends
 * `sip:<remote ip>:<port>` there, and the MAC'd, short-lived nonce plus the Redis nonce-count
 * check already bound what a captured answer can be reused for. `opaque` is not checked either.
 */
export function verifyDigest(creds: DigestCredentials, ctx: DigestVerifyContext): DigestVerdict {
  const retry = (reason: string, stale = false): DigestVerdict => ({ kind: 'challenge', stale, reason });

  if (creds.realm !== ctx.realm) return retry('realm mismatch');
  if (creds.algorithm !== undefined && creds.algorithm.toUpperCase() !== 'MD5') return retry('unsupported algorithm');
  if (creds.qop !== 'auth') return retry('qop auth required');
  if (creds.nc === undefined || !NC_RE.test(creds.nc)) return retry('bad nonce count');
  if (creds.cnonce === undefined || creds.cnonce === '') return retry('missing cnonce');

  const password = ctx.passwordFor(creds.username);
  if (password === undefined) return { kind: 'forbidden', reason: 'unknown user' };

  const nonceState = ctx.nonces.check(creds.nonce, ctx.nowMs);
  if (nonceState === 'invalid') return retry('invalid nonce');
  if (nonceState === 'stale') return retry('stale nonce', true);

  const expected = Buffer.from(
    digestResponse({
      username: creds.username,
      realm: creds.realm,
      password,
      method: ctx.method,
      uri: creds.uri,
      nonce: creds.nonce,
      nc: creds.nc,
      cnonce: creds.cnonce,
      qop: creds.qop,
    }),
  );
  // RFC 2617 says lowercase hex; accept uppercase too, it names the same digest.
  const given = Buffer.from(creds.response.toLowerCase());
  // The expected length is public (always 32), so checking it first leaks nothing.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { kind: 'forbidden', reason: 'wrong password' };
  }
  return { kind: 'ok', username: creds.username, nonce: creds.nonce, nc: Number.parseInt(creds.nc, 16) };
}
