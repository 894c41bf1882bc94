import { createHash } from 'node:crypto';
import {
  challenge,
  digestResponse,
  MAX_DIGEST_HEADER_LENGTH,
  NonceIssuer,
  parseDigest,
  verifyDigest,
  type DigestCredentials,
  type DigestVerifyContext,
} from '../../lib/sip/digest';

const KEY = Buffer.alloc(32, 7);
const TTL = 300_000;
const T0 = 1_760_000_000_000;
const REALM = 'cc1.example.com';
const PASSWORDS: Record<string, string> = { '1001': 's3cret', '1002': 'other' };

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** A client answering a challenge the way SIP.js does (qop=auth, nc=1, its own cnonce). */
function answer(nonce: string, over: Partial<DigestCredentials & { password: string; method: string }> = {}): DigestCredentials {
  const base = { username: '1001', realm: REALM, uri: 'sip:*38@cc1.example.com', nc: '00000001', cnonce: 'abcdef123456', qop: 'auth', ...over };
  const response = digestResponse({
    username: base.username,
    realm: base.realm,
    password: over.password ?? PASSWORDS['1001']!,
    method: over.method ?? 'INVITE',
    uri: base.uri,
    nonce,
    nc: base.nc,
    cnonce: base.cnonce,
    qop: base.qop,
  });
  return { username: base.username, realm: base.realm, nonce, uri: base.uri, response, algorithm: 'MD5', qop: base.qop, nc: base.nc, cnonce: base.cnonce, ...(over.response === undefined ? {} : { response: over.response }) };
}

function ctx(over: Partial<DigestVerifyContext> = {}): DigestVerifyContext {
  return { realm: REALM, method: 'INVITE', passwordFor: (u) => PASSWORDS[u], nonces: new NonceIssuer(KEY, TTL), nowMs: T0 + 1_000, ...over };
}

describe('digestResponse', () => {
  it('reproduces the RFC 2617 section 3.5 example', () => {
    expect(
      digestResponse({
        username: 'Mufasa',
        realm: 'testrealm@host.com',
        password: 'Circle Of Life',
        method: 'GET',
        uri: '/dir/index.html',
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        nc: '00000001',
        cnonce: '0a4f113b',
        qop: 'auth',
      }),
    ).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('without qop hashes MD5(HA1:nonce:HA2) (RFC 2069 compatibility)', () => {
    const ha1 = md5('Mufasa:testrealm@host.com:Circle Of Life');
    const ha2 = md5('GET:/dir/index.html');
    expect(
      digestResponse({ username: 'Mufasa', realm: 'testrealm@host.com', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', nonce: 'n1' }),
    ).toBe(md5(`${ha1}:n1:${ha2}`));
  });

  it('refuses auth-int and qop=auth without nc/cnonce instead of hashing something wrong', () => {
    const p = { username: 'u', realm: 'r', password: 'p', method: 'INVITE', uri: 'sip:x', nonce: 'n' };
    expect(() => digestResponse({ ...p, qop: 'auth-int', nc: '00000001', cnonce: 'c' })).toThrow(RangeError);
    expect(() => digestResponse({ ...p, qop: 'auth', cnonce: 'c' })).toThrow(RangeError);
  });
});

describe('parseDigest', () => {
  it('parses a SIP.js 0.21 Authorization header (unquoted algorithm, qop, nc)', () => {
    const h =
      'Digest algorithm=MD5, username="1001", realm="cc1.example.com", nonce="abc", uri="sip:*38@cc1.example.com", ' +
      'response="0123456789abcdef0123456789abcdef", opaque="op", qop=auth, cnonce="k3h4j5k6l7m8", nc=00000001';
    expect(parseDigest(h)).toEqual({
      algorithm: 'MD5',
      username: '1001',
      realm: 'cc1.example.com',
      nonce: 'abc',
      uri: 'sip:*38@cc1.example.com',
      response: '0123456789abcdef0123456789abcdef',
      opaque: 'op',
      qop: 'auth',
      cnonce: 'k3h4j5k6l7m8',
      nc: '00000001',
    });
  });

  it('parses a sipp 3.6 header (no spaces after commas, uri is sip:<ip>:<port>)', () => {
    const h =
      'Digest username="1001",realm="cc1.example.com",cnonce="6b8b4567",nc=00000002,qop=auth,uri="sip:127.0.0.1:5060",' +
      'nonce="n-1",response="ffffffffffffffffffffffffffffffff",algorithm=MD5,opaque="o"';
    expect(parseDigest(h)).toEqual({
      username: '1001',
      realm: 'cc1.example.com',
      cnonce: '6b8b4567',
      nc: '00000002',
      qop: 'auth',
      uri: 'sip:127.0.0.1:5060',
      nonce: 'n-1',
      response: 'ffffffffffffffffffffffffffffffff',
      algorithm: 'MD5',
      opaque: 'o',
    });
  });

  it('keeps commas and escaped quotes inside quoted values', () => {
    const h = String.raw`Digest username="a\"b,c=d", realm="r, with comma", nonce="n", uri="sip:x", response="r", cnonce="back\\slash"`;
    const c = parseDigest(h);
    expect(c?.username).toBe('a"b,c=d');
    expect(c?.realm).toBe('r, with comma');
    expect(c?.cnonce).toBe('back\\slash');
    expect(c?.nonce).toBe('n');
  });

  it('lowercases directive names, accepts a lowercase scheme and ignores unknown directives', () => {
    const c = parseDigest('digest USERNAME="u", Realm="r", NONCE="n", Uri="sip:x", Response="r", QOP=auth, NC=00000001, CNonce="c", foo=bar');
    expect(c).toEqual({ username: 'u', realm: 'r', nonce: 'n', uri: 'sip:x', response: 'r', qop: 'auth', nc: '00000001', cnonce: 'c' });
  });

  it('returns null for other schemes and for garbage', () => {
    const ok = 'username="u", realm="r", nonce="n", uri="sip:x", response="r"';
    expect(parseDigest(`Digest ${ok}`)).not.toBeNull();
    expect(parseDigest(`Basic ${ok}`)).toBeNull();
    expect(parseDigest(`Digestusername="u"`)).toBeNull();
    expect(parseDigest('')).toBeNull();
    expect(parseDigest('Digest')).toBeNull();
    expect(parseDigest('Digest    ')).toBeNull();
    expect(parseDigest('!!! not a header !!!')).toBeNull();
  });

  it('returns null for malformed parameter lists', () => {
    const rest = 'realm="r", nonce="n", uri="sip:x", response="r"';
    expect(parseDigest(`Digest username="u, ${rest}`)).toBeNull(); // unterminated quote
    expect(parseDigest(`Digest username="u" junk, ${rest}`)).toBeNull(); // junk after a value
    expect(parseDigest(`Digest username="u" opaque="o", ${rest}`)).toBeNull(); // missing comma
    expect(parseDigest(`Digest username=, ${rest}`)).toBeNull(); // empty bare value
    expect(parseDigest(`Digest ="u", ${rest}`)).toBeNull(); // no name
    expect(parseDigest(`Digest username "u", ${rest}`)).toBeNull(); // no '='
    expect(parseDigest(`Digest username="u", username="v", ${rest}`)).toBeNull(); // duplicate
    expect(parseDigest(`Digest username="u\x00", ${rest}`)).toBeNull(); // control character
    expect(parseDigest(`Digest username="u\\`)).toBeNull(); // dangling escape
  });

  it('returns null when a required directive is missing', () => {
    const all: Record<string, string> = { username: '"u"', realm: '"r"', nonce: '"n"', uri: '"sip:x"', response: '"r"' };
    for (const missing of Object.keys(all)) {
      const h = `Digest ${Object.entries(all)
        .filter(([k]) => k !== missing)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`;
      expect([missing, parseDigest(h)]).toEqual([missing, null]);
    }
  });

  it('refuses headers longer than the cap', () => {
    const head = 'Digest username="u", realm="r", nonce="n", uri="sip:x", response="r", opaque="';
    const fill = (total: number): string => `${head}${'x'.repeat(total - head.length - 1)}"`;
    expect(fill(MAX_DIGEST_HEADER_LENGTH)).toHaveLength(MAX_DIGEST_HEADER_LENGTH);
    expect(parseDigest(fill(MAX_DIGEST_HEADER_LENGTH))).not.toBeNull();
    expect(parseDigest(fill(MAX_DIGEST_HEADER_LENGTH + 1))).toBeNull();
  });
});

describe('NonceIssuer', () => {
  const issuer = new NonceIssuer(KEY, TTL);

  it('issues distinct 48-character base64url nonces that check ok', () => {
    const a = issuer.issue(T0);
    const b = issuer.issue(T0);
    expect(a).toMatch(/^[A-Za-z0-9_-]{48}$/);
    expect(a).not.toBe(b);
    expect(issuer.check(a, T0)).toBe('ok');
  });

  it('encodes the issue time as 8 big-endian bytes at the start', () => {
    const raw = Buffer.from(issuer.issue(T0), 'base64url');
    expect(raw).toHaveLength(36);
    expect(raw.readBigUInt64BE(0)).toBe(BigInt(T0));
  });

  it('is verifiable by another instance with the same key, not by one with another key', () => {
    const n = issuer.issue(T0);
    expect(new NonceIssuer(Buffer.from(KEY), TTL).check(n, T0)).toBe('ok');
    expect(new NonceIssuer(Buffer.alloc(32, 8), TTL).check(n, T0)).toBe('invalid');
  });

  it('is ok up to the TTL and stale after it', () => {
    const n = issuer.issue(T0);
    expect(issuer.check(n, T0 + TTL)).toBe('ok');
    expect(issuer.check(n, T0 + TTL + 1)).toBe('stale');
  });

  it('tolerates a little clock skew into the future but not more', () => {
    const n = issuer.issue(T0);
    expect(issuer.check(n, T0 - 30_000)).toBe('ok');
    expect(issuer.check(n, T0 - 30_001)).toBe('invalid');
  });

  it('rejects tampered, truncated and non-base64url nonces as invalid', () => {
    const n = issuer.issue(T0);
    for (const i of [0, 10, 30, 47]) {
      const flipped = n.slice(0, i) + (n[i] === 'A' ? 'B' : 'A') + n.slice(i + 1);
      expect([i, issuer.check(flipped, T0)]).toEqual([i, 'invalid']);
    }
    expect(issuer.check(n.slice(0, 44), T0)).toBe('invalid');
    expect(issuer.check(`${n}AAAA`, T0)).toBe('invalid');
    expect(issuer.check(`${n.slice(0, 47)}=`, T0)).toBe('invalid');
    expect(issuer.check(`${n.slice(0, 47)}+`, T0)).toBe('invalid');
    expect(issuer.check('', T0)).toBe('invalid');
  });

  it('rejects a re-stamped timestamp (the MAC covers it)', () => {
    const raw = Buffer.from(issuer.issue(T0 - 2 * TTL), 'base64url');
    raw.writeBigUInt64BE(BigInt(T0), 0);
    expect(issuer.check(raw.toString('base64url'), T0)).toBe('invalid');
  });

  it('throws on a NaN clock instead of treating every nonce as fresh', () => {
    expect(() => issuer.check(issuer.issue(T0), Number.NaN)).toThrow(RangeError);
  });

  it('refuses a short key and a non-positive TTL', () => {
    expect(() => new NonceIssuer(Buffer.alloc(0), TTL)).toThrow(RangeError);
    expect(() => new NonceIssuer(KEY, 0)).toThrow(RangeError);
  });
});

describe('challenge', () => {
  it('formats the header the way SIP.js and sipp expect', () => {
    expect(challenge({ realm: REALM, nonce: 'N', opaque: 'O' })).toBe(`Digest realm="${REALM}", nonce="N", opaque="O", algorithm=MD5, qop="auth"`);
  });

  it('adds stale=true only when asked', () => {
    expect(challenge({ realm: REALM, nonce: 'N', stale: true })).toBe(`Digest realm="${REALM}", nonce="N", algorithm=MD5, qop="auth", stale=true`);
    expect(challenge({ realm: REALM, nonce: 'N', stale: false })).not.toContain('stale');
    expect(challenge({ realm: REALM, nonce: 'N' })).not.toContain('stale');
  });

  it('escapes quotes and backslashes in the realm', () => {
    expect(challenge({ realm: 'a"b\\c', nonce: 'N' })).toContain(String.raw`realm="a\"b\\c"`);
  });
});

describe('verifyDigest', () => {
  it('accepts a correct answer to a fresh nonce and returns user, nonce and nc', () => {
    const c = ctx();
    const nonce = c.nonces.issue(T0);
    expect(verifyDigest(answer(nonce, { nc: '0000000a' }), c)).toEqual({ kind: 'ok', username: '1001', nonce, nc: 10 });
  });

  it('round-trips a parsed sipp-style header whose uri is not the Request-URI', () => {
    const c = ctx({ method: 'INVITE' });
    const nonce = c.nonces.issue(T0);
    const uri = 'sip:127.0.0.1:5060';
    const response = digestResponse({ username: '1002', realm: REALM, password: 'other', method: 'INVITE', uri, nonce, nc: '00000002', cnonce: '6b8b4567', qop: 'auth' });
    const h = `Digest username="1002",realm="${REALM}",cnonce="6b8b4567",nc=00000002,qop=auth,uri="${uri}",nonce="${nonce}",response="${response}",algorithm=MD5,opaque="o"`;
    const creds = parseDigest(h);
    expect(creds).not.toBeNull();
    expect(verifyDigest(creds!, c)).toEqual({ kind: 'ok', username: '1002', nonce, nc: 2 });
  });

  it('accepts an uppercase-hex response', () => {
    const c = ctx();
    const a = answer(c.nonces.issue(T0));
    expect(verifyDigest({ ...a, response: a.response.toUpperCase() }, c).kind).toBe('ok');
  });

  it('answers a wrong password with forbidden', () => {
    const c = ctx();
    expect(verifyDigest(answer(c.nonces.issue(T0), { password: 'guess' }), c)).toEqual({ kind: 'forbidden', reason: 'wrong password' });
  });

  it('answers a response hashed for another method with forbidden', () => {
    const c = ctx({ method: 'REGISTER' });
    expect(verifyDigest(answer(c.nonces.issue(T0), { method: 'INVITE' }), c)).toMatchObject({ kind: 'forbidden', reason: 'wrong password' });
  });

  it('answers a malformed response (wrong length) with forbidden, not a throw', () => {
    const c = ctx();
    expect(verifyDigest(answer(c.nonces.issue(T0), { response: 'abc' }), c)).toMatchObject({ kind: 'forbidden' });
  });

  it('answers an unknown user with forbidden', () => {
    const c = ctx();
    expect(verifyDigest(answer(c.nonces.issue(T0), { username: '9999' }), c)).toEqual({ kind: 'forbidden', reason: 'unknown user' });
  });

  it('re-challenges (not stale) a tampered nonce even with a matching hash', () => {
    const c = ctx();
    const n = c.nonces.issue(T0);
    const tampered = n.slice(0, 20) + (n[20] === 'x' ? 'y' : 'x') + n.slice(21);
    // The client hashed the tampered nonce correctly: only the MAC can catch it.
    expect(verifyDigest(answer(tampered), c)).toMatchObject({ kind: 'challenge', stale: false });
  });

  it('re-challenges (not stale) a nonce issued under another key', () => {
    const c = ctx();
    const foreign = new NonceIssuer(Buffer.alloc(32, 9), TTL).issue(T0);
    expect(verifyDigest(answer(foreign), c)).toMatchObject({ kind: 'challenge', stale: false });
  });

  it('re-challenges with stale=true an expired nonce whose hash is right', () => {
    const c = ctx({ nowMs: T0 + TTL + 1 });
    expect(verifyDigest(answer(c.nonces.issue(T0)), c)).toMatchObject({ kind: 'challenge', stale: true });
  });

  it.each<[string, Partial<DigestCredentials>]>([
    ['another realm', { realm: 'cc2.example.com' }],
    ['algorithm SHA-256', { algorithm: 'SHA-256' }],
    ['no qop', { qop: undefined }],
    ['qop auth-int', { qop: 'auth-int' }],
    ['nc too short', { nc: '1' }],
    ['nc not hex', { nc: '0000000g' }],
    ['no nc', { nc: undefined }],
    ['no cnonce', { cnonce: undefined }],
    ['empty cnonce', { cnonce: '' }],
  ])('re-challenges (not stale) credentials with %s', (_name, change) => {
    const c = ctx();
    const creds = { ...answer(c.nonces.issue(T0)), ...change };
    expect(verifyDigest(creds, c)).toMatchObject({ kind: 'challenge', stale: false });
  });

  it('accepts a missing or lowercase algorithm (MD5 is the default)', () => {
    const c = ctx();
    const a = answer(c.nonces.issue(T0));
    expect(verifyDigest({ ...a, algorithm: undefined }, c).kind).toBe('ok');
    expect(verifyDigest({ ...a, algorithm: 'md5' }, c).kind).toBe('ok');
  });

  it('checks the realm before the user, so a foreign realm is re-challenged, not forbidden', () => {
    const c = ctx();
    expect(verifyDigest(answer(c.nonces.issue(T0), { realm: 'other', username: '9999' }), c)).toMatchObject({ kind: 'challenge' });
  });

  it('checks nonce age before the password, so an expired genuine nonce is re-challenged stale whatever the hash', () => {
    // The client then retries once with a fresh nonce and gets its real 403 there.
    const c = ctx({ nowMs: T0 + TTL + 1 });
    expect(verifyDigest(answer(c.nonces.issue(T0), { password: 'guess' }), c)).toMatchObject({ kind: 'challenge', stale: true });
  });
});
