/**
 * Hostile SIP input for the fuzz test (issue "faults", item 7): a seeded generator that starts
 * from requests that are valid for ccswitch (feature-code and queue INVITEs, REGISTERs of an
 * agent with and without digest credentials, CANCEL, BYE, OPTIONS, INFO, unknown methods) and
 * mutates them: headers dropped, duplicated, made huge or unparseable; odd Request-URIs and dial
 * strings; broken CSeq, tags, Via, Max-Forwards, SDP, Authorization and X-CCS-Enqueue; lying
 * Content-Length and broken TCP framing; raw byte damage. Same seed, same messages.
 *
 * The generator never holds a valid password, except in {@link signedFuzz}, which signs its
 * mutated requests with the one agent's real credentials (to reach the code behind digest
 * authentication) and says so.
 *
 * Every message carries a token (`fz<seed>n<number>z`) in its Call-ID, Via branch and From tag,
 * so a response, or the request as the app sees it, can be traced back to the message.
 *
 * Limits found in drachtio-server 0.9.4 / sofia-sip that shape the sizes used:
 * - sofia's nta agent takes messages of up to 2 MiB (`sa_maxsize`); a larger one over TCP is
 *   answered 413 Request Entity Too Large and the connection is closed for reading.
 * - a single header line or a body of more than about 8 KiB gets 400 Bad Request from sofia
 *   (8,150 bytes of header value pass, 8,200 do not), so only many small headers make a large
 *   message that reaches the app.
 * - UDP datagrams are at most 65,507 bytes on IPv4, so huge UDP messages stay below that.
 * - a request with an unparseable start line or no usable Via is dropped without an answer;
 *   one with a bad header but a usable Via gets 400 "Bad <header> Header" from sofia; drachtio
 *   itself answers 400 for failed sanity checks, 481 for CANCEL/BYE/UPDATE outside a dialog and
 *   for an INVITE with a To tag it does not know, 503 for methods no app routes (OPTIONS, INFO,
 *   MESSAGE…) and silently drops methods it does not know.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { digestResponse } from '../../lib/sip/digest';
import { parseWire, TcpSip, type WireMessage } from './tcpSip';

/** A small, fast seeded PRNG (mulberry32): the same seed gives the same run. */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Picks by weight from `[weight, value]` pairs. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of items) total += w;
    let x = this.next() * total;
    for (const [w, v] of items) {
      x -= w;
      if (x < 0) return v;
    }
    return items[items.length - 1]![1];
  }

  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
}

export type Transport = 'udp' | 'tcp';

/** A request as structured text, before serialisation. */
interface Draft {
  method: string;
  ruri: string;
  version: string;
  headers: [string, string][];
  body: string;
  /** undefined: the real body length; null: no Content-Length header; a string: sent as is. */
  contentLength?: string | null;
}

/** One message the fuzz sends. */
export interface FuzzMessage {
  /** Sequence number within the run. */
  n: number;
  /** The token traced through responses (`fz…z`); shared by the messages of one pair. */
  token: string;
  /** The method the message was built as (its start line may say otherwise after mutation). */
  method: string;
  /** Which template it started from (`invite-fac`, `register-auth`, `trunk-invite`, …). */
  base: string;
  mutations: string[];
  bytes: Buffer;
}

/** Messages sent back to back over one socket (a single request, or an INVITE and its CANCEL). */
export interface FuzzCase {
  transport: Transport;
  /** Local address sent from. */
  source: string;
  /**
   * TCP only: the messages go over a connection of their own, closed afterwards (they are
   * mutated: sofia may shut the connection down for them); intact ones share one connection
   * per source.
   */
  ownConnection: boolean;
  /** TCP only: write the bytes in several pieces (reassembly by the server). */
  chunked?: boolean;
  messages: FuzzMessage[];
}

/** What the generator needs to know about the system under test. */
export interface FuzzTarget {
  /** drachtio-server's SIP port (UDP and TCP) on 127.0.0.1. */
  sipPort: number;
  /** Sources of plain (digest-challenged) requests, with their UDP socket's port. */
  sources: readonly { ip: string; udpPort: number }[];
  /** Trunk sources (not challenged; reach the dial plan and number map). */
  trunks: readonly { ip: string; udpPort: number }[];
  /** The digest realm and a real nonce (credentials with a wrong password or unknown user). */
  realm: string;
  nonce: string;
}

const AGENTS = ['1001', '1002', '1003', '1004', '1005'] as const;

/** Dial strings valid for the test call center. */
const VALID_DIALS = ['*36', '*368000', '*37', '*37*4', '*378000*4', '*38', '*388000', '*388001', '*39', '*39*258', '*35', '*631001', '*631001*2', '8000', '8001', '1001', '1003', '1901'] as const;

/** Dial strings a hostile or broken phone may send. */
const ODD_DIALS = [
  '*38*', `*38${'9'.repeat(200)}`, '*3', '*', '#', '**', '*38**', '*37*', '*37*9999', '*378000*', '*63', '*6310012', '*631001*9', '*35*1', '*3612a',
  '%00', '*38%00', '%2A38', '%', '%zz', '*३८', '\u{1F600}', '*38\u0000', '\u202e83*', '8000%20', '8000 ', ' 8000', '8000;x=y', '+', '++14155550100', '+14155550100',
  '14155550100', '0014155550100', `1${'0'.repeat(40)}`, 'a'.repeat(33), 'a'.repeat(2000), '..%2F..%2F', '\'; DROP TABLE', '<script>', '${jndi:x}', 'ccs:{default}:agent:1001',
  '__proto__', 'constructor', 'hasOwnProperty', '8000\r\nX-Inj: 1', '-1', '0', '00000000', '8000.0', '1e3', '0x1f40',
] as const;

/** Request-URI shapes around a dial string `d`. */
const RURI_SHAPES: readonly ((d: string, port: number) => string)[] = [
  (d, p) => `sip:${d}@127.0.0.1:${p}`,
  (d, p) => `sips:${d}@127.0.0.1:${p}`,
  (d) => `tel:${d}`,
  (d) => `tel:${d};phone-context=example.com`,
  (_d, p) => `sip:127.0.0.1:${p}`,
  (d) => `sip:${d}@[::1]`,
  (d, p) => `sip:${d}@127.0.0.1:${p};transport=foo`,
  (d, p) => `sip:${d};user=phone@127.0.0.1:${p}`,
  (d, p) => `sip:${d}@127.0.0.1:${p};user=phone;user=ip`,
  (d, p) => `sip:${d}@127.0.0.1:${p}?X-CCS-Enqueue=%3Cenqueue%20queue%3D%228000%22%2F%3E`,
  (d, p) => `<sip:${d}@127.0.0.1:${p}>`,
  () => 'urn:service:sos',
  (d) => d,
  (d) => `sip:${d}@${'h'.repeat(300)}.example`,
  (d) => `sip:${d}@127.0.0.1:99999`,
  (d) => `SIP:${d}@127.0.0.1`,
  (d, p) => `sip:${d}:password@127.0.0.1:${p}`,
  () => '',
];

const SDP = (ip: string): string => ['v=0', `o=- 1 1 IN IP4 ${ip}`, 's=-', `c=IN IP4 ${ip}`, 't=0 0', 'm=audio 40000 RTP/AVP 0 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', ''].join('\r\n');

/** Context of one message while it is built. */
interface Ctx {
  r: Rng;
  t: FuzzTarget;
  token: string;
  transport: Transport;
  ip: string;
  port: number;
  user: string;
  trunk: boolean;
}

const proto = (c: Ctx): string => (c.transport === 'udp' ? 'UDP' : 'TCP');
const via = (c: Ctx, branch = `z9hG4bK-${c.token}`): string => `SIP/2.0/${proto(c)} ${c.ip}:${c.port};branch=${branch};rport`;

/** Wrong but well-formed digest credentials: a wrong password, or a user who does not exist. */
function wrongCredentials(c: Ctx, method: string, uri: string, o: { user?: string; nonce?: string; realm?: string } = {}): string {
  const user = o.user ?? c.user;
  const nonce = o.nonce ?? c.t.nonce;
  const realm = o.realm ?? c.t.realm;
  const cnonce = `c${c.r.hex(8)}`;
  const nc = '00000001';
  const response = digestResponse({ username: user, realm, password: `not-the-password-${c.r.hex(6)}`, method, uri, nonce, nc, cnonce, qop: 'auth' });
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="${cnonce}"`;
}

/** Hostile Authorization / Proxy-Authorization values; none of them carries a right password. */
function hostileAuth(c: Ctx, method: string): [string, string] {
  const uri = `sip:127.0.0.1:${c.t.sipPort}`;
  const r = c.r;
  const forged = Buffer.from(r.hex(72), 'hex').toString('base64url');
  const choices: [string, () => string][] = [
    ['auth-garbage', () => r.pick(['x', 'Digest', 'Digest ', 'Digest ,,,,', 'Digest username=', 'Digest =x', 'Basic dXNlcjpwYXNz', 'Bearer abc', 'digest username="1001"', '"Digest"', '\u00e9\u00e8'])],
    ['auth-unterminated', () => `Digest username="${c.user}, realm="${c.t.realm}`],
    ['auth-huge-param', () => `Digest username="${'9'.repeat(r.pick([1000, 5000, 20000]))}", realm="${c.t.realm}", nonce="${c.t.nonce}", uri="${uri}", response="${r.hex(32)}"`],
    ['auth-many-params', () => `Digest ${Array.from({ length: r.pick([100, 600]) }, (_, i) => `p${i}=v${i}`).join(', ')}`],
    ['auth-dup-param', () => `${wrongCredentials(c, method, uri)}, username="1002"`],
    ['auth-unknown-user', () => wrongCredentials(c, method, uri, { user: r.pick(['9999', '2001', 's1', '', 'admin', '1001 ', '__proto__']) })],
    ['auth-wrong-password', () => wrongCredentials(c, method, uri)],
    ['auth-forged-nonce', () => wrongCredentials(c, method, uri, { nonce: forged })],
    ['auth-junk-nonce', () => wrongCredentials(c, method, uri, { nonce: r.pick(['', 'x', 'a'.repeat(48), '%00', 'AAAA'.repeat(100)]) })],
    ['auth-realm-mismatch', () => wrongCredentials(c, method, uri, { realm: r.pick(['other', '', 'CCSWITCH', `${c.t.realm} `]) })],
    ['auth-nc-bad', () => wrongCredentials(c, method, uri).replace('nc=00000001', `nc=${r.pick(['zz', '', '1', 'ffffffffff', '-0000001'])}`)],
    ['auth-qop-int', () => wrongCredentials(c, method, uri).replace('qop=auth', r.pick(['qop=auth-int', 'qop="auth,auth-int"', 'qop=', 'qop=AUTH']))],
    ['auth-algorithm', () => wrongCredentials(c, method, uri).replace('algorithm=MD5', `algorithm=${r.pick(['SHA-256', 'MD5-sess', 'md5', 'x'.repeat(500)])}`)],
    ['auth-escapes', () => `Digest username="10\\"01", realm="${c.t.realm}\\\\", nonce="${c.t.nonce}", uri="${uri}", response="${r.hex(32)}", qop=auth, nc=00000001, cnonce="\\"`],
    ['auth-control-chars', () => `Digest username="1001\u0001", realm="${c.t.realm}", nonce="${c.t.nonce}", uri="${uri}", response="${r.hex(32)}", qop=auth, nc=00000001, cnonce="a\u007f"`],
    ['auth-response-shape', () => wrongCredentials(c, method, uri).replace(/response="[0-9a-f]+"/, `response="${r.pick(['', 'zz', r.hex(31), r.hex(33), r.hex(32).toUpperCase(), '\u00e9'.repeat(32)])}"`)],
    ['auth-unicode-user', () => wrongCredentials(c, method, uri, { user: r.pick(['１００１', '1001\u200b', 'ü', '\u{1F600}']) })],
    ['auth-missing-required', () => wrongCredentials(c, method, uri).replace(new RegExp(`${r.pick(['username', 'realm', 'nonce', 'uri', 'response'])}="[^"]*", `), '')],
  ];
  const [name, make] = r.pick(choices);
  return [name, make()];
}

/** X-CCS-Enqueue values an IVR (or an attacker behind a trunk) might send. */
function hostileEnqueue(r: Rng): [string, string] {
  const enc = encodeURIComponent;
  const choices: [string, () => string][] = [
    ['enqueue-valid', () => enc('<enqueue queue="8000" priority="5" timeout="30"><agent id="1002"/></enqueue>')],
    ['enqueue-bad-escape', () => r.pick(['%', '%E0%A4%A', '%zz', '%00%00'])],
    ['enqueue-not-xml', () => enc(r.pick(['hello', '{}', '<', '<enqueue', '<enqueue queue=8000/>', '<?xml version="1.0"?>']))],
    ['enqueue-dtd', () => enc('<!DOCTYPE enqueue [<!ENTITY x SYSTEM "file:///etc/passwd">]><enqueue queue="8000">&x;</enqueue>')],
    ['enqueue-entities', () => enc(`<!DOCTYPE a [<!ENTITY a "${'x'.repeat(50)}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><enqueue queue="8000" priority="&b;"/>`)],
    ['enqueue-huge', () => enc(`<enqueue queue="8000">${'<agent id="1001"/>'.repeat(r.pick([70, 600]))}</enqueue>`)],
    ['enqueue-deep', () => enc(`${'<enqueue>'.repeat(500)}${'</enqueue>'.repeat(500)}`)],
    ['enqueue-wrong-values', () => enc(r.pick(['<enqueue queue="9999"/>', '<enqueue queue="8000" priority="x"/>', '<enqueue queue="8000" priority="-1e400"/>', '<enqueue queue="8000"><agent id="nobody"/></enqueue>', '<enqueue queue="8000"><skill name="a" min="999"/></enqueue>', '<enqueue queue="8001"/>', '<enqueue queue="__proto__"/>']))],
    ['enqueue-raw-unicode', () => `<enqueue queue="8000" x="\u00e9\u{1F600}"/>`],
  ];
  const [name, make] = r.pick(choices);
  return [name, make()];
}

// --- base messages ---------------------------------------------------------------------------

function baseInvite(c: Ctx, dial: string, kind: string): Draft {
  return {
    method: 'INVITE',
    ruri: `sip:${dial}@127.0.0.1:${c.t.sipPort}`,
    version: 'SIP/2.0',
    headers: [
      ['Via', via(c)],
      ['Max-Forwards', '70'],
      ['From', `"Fuzz" <sip:${c.user}@127.0.0.1>;tag=f${c.token}`],
      ['To', `<sip:${dial}@127.0.0.1>`],
      ['Call-ID', `${c.token}@fuzz`],
      ['CSeq', `${1 + c.r.int(5)} INVITE`],
      ['Contact', `<sip:${c.user}@${c.ip}:${c.port}${c.transport === 'tcp' ? ';transport=tcp' : ''}>`],
      ['User-Agent', `ccswitch-fuzz/${kind}`],
      ['Content-Type', 'application/sdp'],
    ],
    body: SDP(c.ip),
  };
}

function baseRegister(c: Ctx): Draft {
  return {
    method: 'REGISTER',
    ruri: `sip:127.0.0.1:${c.t.sipPort}`,
    version: 'SIP/2.0',
    headers: [
      ['Via', via(c)],
      ['Max-Forwards', '70'],
      ['From', `<sip:${c.user}@127.0.0.1>;tag=f${c.token}`],
      ['To', `<sip:${c.user}@127.0.0.1>`],
      ['Call-ID', `${c.token}@fuzz`],
      ['CSeq', `${1 + c.r.int(100)} REGISTER`],
      ['Contact', `<sip:${c.user}@${c.ip}:${c.port}>`],
      ['Expires', '300'],
      ['User-Agent', 'ccswitch-fuzz/register'],
    ],
    body: '',
  };
}

/** A request outside any dialog ccswitch knows (CANCEL, BYE, OPTIONS, INFO, unknown methods). */
function baseOther(c: Ctx, method: string): Draft {
  const inDialog = method === 'BYE' || method === 'INFO' || method === 'UPDATE' || method === 'NOTIFY';
  const d: Draft = {
    method,
    ruri: `sip:${c.r.pick(['1001', '8000', '*38'])}@127.0.0.1:${c.t.sipPort}`,
    version: 'SIP/2.0',
    headers: [
      ['Via', via(c)],
      ['Max-Forwards', '70'],
      ['From', `<sip:${c.user}@127.0.0.1>;tag=f${c.token}`],
      ['To', `<sip:8000@127.0.0.1>${inDialog ? `;tag=t${c.r.hex(6)}` : ''}`],
      ['Call-ID', `${c.token}@fuzz`],
      ['CSeq', `${1 + c.r.int(9)} ${method}`],
      ['Contact', `<sip:${c.user}@${c.ip}:${c.port}>`],
    ],
    body: '',
  };
  if (method === 'INFO') {
    d.headers.push(['Content-Type', 'application/dtmf-relay']);
    d.body = 'Signal=5\r\nDuration=160\r\n';
  }
  if (method === 'SUBSCRIBE' || method === 'NOTIFY' || method === 'PUBLISH') d.headers.push(['Event', c.r.pick(['presence', 'message-summary', 'dialog', ''])]);
  return d;
}

// --- mutations -------------------------------------------------------------------------------

/** A mutation changes the draft and returns its label. */
interface Mutation {
  name: string;
  weight: number;
  apply(d: Draft, c: Ctx): string;
}

const find = (d: Draft, name: string): number => d.headers.findIndex(([n]) => n.toLowerCase() === name.toLowerCase());
const setHeader = (d: Draft, name: string, value: string): void => {
  const i = find(d, name);
  if (i < 0) d.headers.push([name, value]);
  else d.headers[i] = [name, value];
};
const valueOf = (d: Draft, name: string): string => d.headers[find(d, name)]?.[1] ?? '';

/** Largest value a header may get: UDP datagrams stay under 65,507 bytes. */
const hugeSizes = (c: Ctx): number[] => (c.transport === 'udp' ? [1000, 8000, 8300, 30000, 60000] : [1000, 8000, 8300, 70000, 400000, 1_500_000]);

const MUTATIONS: readonly Mutation[] = [
  {
    name: 'drop-header',
    weight: 10,
    apply(d, c) {
      const name = c.r.pick(['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'Contact', 'Content-Type', 'Expires', d.headers[c.r.int(d.headers.length)]?.[0] ?? 'Via']);
      const i = find(d, name);
      if (i >= 0) d.headers.splice(i, 1);
      return `drop-${name.toLowerCase()}`;
    },
  },
  {
    name: 'dup-header',
    weight: 8,
    apply(d, c) {
      const which = c.r.pick(['Call-ID', 'CSeq', 'From', 'To', 'Via', 'Max-Forwards', 'Contact', 'Expires', 'Content-Type']);
      const i = find(d, which);
      const v = i >= 0 ? d.headers[i]![1] : 'x';
      const other: Record<string, string> = {
        'Call-ID': `${c.token}-other@fuzz`,
        CSeq: `${c.r.int(1000)} ${c.r.pick(['INVITE', 'REGISTER', 'BYE'])}`,
        From: `<sip:1002@127.0.0.1>;tag=g${c.token}`,
        To: `<sip:1003@127.0.0.1>;tag=${c.r.hex(6)}`,
        Via: `SIP/2.0/${proto(c)} 10.9.9.9:5060;branch=z9hG4bK-${c.r.hex(8)}`,
        'Max-Forwards': '0',
        Contact: '<sip:evil@10.9.9.9>',
        Expires: '0',
        'Content-Type': 'text/plain',
      };
      const same = c.r.chance(0.4);
      // A second Via goes below the first: responses still come back to the sender.
      d.headers.splice(i < 0 ? d.headers.length : i + 1, 0, [which, same ? v : other[which]!]);
      return `dup-${which.toLowerCase()}${same ? '-same' : ''}`;
    },
  },
  {
    name: 'huge-header',
    weight: 7,
    apply(d, c) {
      const size = c.r.pick(hugeSizes(c));
      const which = c.r.pick(['Subject', 'X-Long', 'User-Agent', 'From', 'To', 'Call-ID', 'Via', 'Contact', 'Expires']);
      const fill = c.r.pick(['a', '9', '%', ' a', ';x=y', ',']).repeat(Math.ceil(size / 2)).slice(0, size);
      if (which === 'From') setHeader(d, 'From', `"${fill.replace(/"/g, '')}" ${valueOf(d, 'From').replace(/^"[^"]*"\s*/, '')}`);
      else if (which === 'To') setHeader(d, 'To', `${valueOf(d, 'To')};x=${fill.replace(/[;,\s]/g, 'b')}`);
      else if (which === 'Call-ID') setHeader(d, 'Call-ID', `${c.token}@${fill.replace(/[\s;,%]/g, 'c')}`);
      else if (which === 'Via') setHeader(d, 'Via', `${valueOf(d, 'Via')};x=${fill.replace(/[\s;,%]/g, 'v')}`);
      else if (which === 'Contact') setHeader(d, 'Contact', `<sip:${fill.replace(/[\s;,%]/g, 'u')}@${c.ip}:${c.port}>`);
      else setHeader(d, which, fill);
      return `huge-${which.toLowerCase()}-${size}`;
    },
  },
  {
    name: 'many-headers',
    weight: 3,
    apply(d, c) {
      // Not more: drachtio-server garbles its app connection with a much larger forwarded
      // message (see the test 'a 150 KB request…'), which is tested on its own.
      const n = c.r.pick([100, 1000]);
      for (let i = 0; i < n; i++) d.headers.push([`X-H${i}`, `v${i}`]);
      return `many-headers-${n}`;
    },
  },
  {
    name: 'bad-header-line',
    weight: 6,
    apply(d, c) {
      const line = c.r.pick<[string, string]>([
        ['NoColonHere', ''],
        ['', 'empty name'],
        ['X Space', 'v'],
        ['X-Folded', 'a\r\n\tfolded continuation'],
        ['X-Folded-Empty', '\r\n \r\n x'],
        ['X-Unicode', '\u00e9\u4e2d\u{1F600}\u202e'],
        ['X-Latin1', '\u00ff\u00fe'],
        ['Via', 'garbage'],
        ['CSeq', ''],
        ['Content-Length', ''],
        ['\u00e9', 'x'],
        ['X-Colons', '::::'],
      ]);
      const at = c.r.int(d.headers.length + 1);
      d.headers.splice(at, 0, line);
      return `bad-line-${line[0] === '' ? 'noname' : line[0].replace(/[^A-Za-z-]/g, '?').toLowerCase()}`;
    },
  },
  {
    name: 'cseq',
    weight: 7,
    apply(d, c) {
      const m = d.method;
      const v = c.r.pick(['', 'abc ' + m, `-1 ${m}`, `4294967296 ${m}`, `99999999999999999999 ${m}`, '1', `${m} 1`, `1 ${m === 'BYE' ? 'INVITE' : 'BYE'}`, `1 ${m.toLowerCase()}`, `1  ${m}`, `0 ${m}`, `1 ${m} extra`, `2147483648 ${m}`, `1.5 ${m}`, `0x10 ${m}`, `1 FOO`]);
      setHeader(d, 'CSeq', v);
      return `cseq:${v.slice(0, 24)}`;
    },
  },
  {
    name: 'tags',
    weight: 6,
    apply(d, c) {
      const from = valueOf(d, 'From');
      const to = valueOf(d, 'To');
      switch (c.r.int(6)) {
        case 0:
          setHeader(d, 'From', from.replace(/;tag=[^;]*/, ''));
          return 'from-no-tag';
        case 1:
          setHeader(d, 'To', `${to.replace(/;tag=[^;]*/, '')};tag=${c.r.hex(8)}`);
          return 'to-tag';
        case 2:
          setHeader(d, 'From', `${from};tag=second`);
          return 'from-two-tags';
        case 3:
          setHeader(d, 'From', from.replace(/;tag=[^;]*/, ';tag='));
          return 'from-empty-tag';
        case 4:
          setHeader(d, 'From', `${from}${'x'.repeat(c.r.pick([300, 5000]))}`);
          return 'from-huge-tag';
        default:
          setHeader(d, 'To', `${to};tag=a;tag=b`);
          return 'to-two-tags';
      }
    },
  },
  {
    name: 'via',
    weight: 7,
    apply(d, c) {
      // The sent-by host:port stays the sender's (or rport stays): responses must find their way back.
      const sentBy = `${c.ip}:${c.port}`;
      const v = c.r.pick([
        `SIP/2.0/${proto(c)} ${sentBy};rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=abc;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token}${'b'.repeat(c.r.pick([200, 5000]))};rport`,
        `SIP/3.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};rport`,
        `SIP/2.0/FOO ${sentBy};branch=z9hG4bK-${c.token};rport`,
        `SIP/2.0/${proto(c)} ;branch=z9hG4bK-${c.token};rport`,
        `SIP/2.0/${proto(c)} ${c.ip} x:${c.port};branch=z9hG4bK-${c.token};rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};received=1.2.3.4;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};rport=abc`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};branch=z9hG4bK-x;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};maddr=224.0.0.1;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token};ttl=999;rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch="z9hG4bK-${c.token}";rport`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token}, SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-${c.r.hex(6)}`,
        `SIP/2.0/${proto(c)} ${sentBy};branch=z9hG4bK-${c.token}\u00e9;rport`,
        `SIP/2.0/${proto(c)} ${sentBy}`,
      ]);
      setHeader(d, 'Via', v);
      return `via:${v.replace(c.token, 'T').replace(sentBy, 'H').slice(0, 40)}`;
    },
  },
  {
    name: 'max-forwards',
    weight: 4,
    apply(d, c) {
      const v = c.r.pick(['0', '-1', 'abc', '256', '99999999999', '', '1', '70 70']);
      setHeader(d, 'Max-Forwards', v);
      return `max-forwards:${v}`;
    },
  },
  {
    name: 'ruri',
    weight: 10,
    apply(d, c) {
      const dial = c.r.chance(0.7) ? c.r.pick(ODD_DIALS) : c.r.pick(VALID_DIALS);
      d.ruri = c.r.pick(RURI_SHAPES)(dial, c.t.sipPort);
      if (c.r.chance(0.5)) setHeader(d, 'To', `<${d.ruri.replace(/^<|>$/g, '')}>`);
      return `ruri:${JSON.stringify(d.ruri.slice(0, 40))}`;
    },
  },
  {
    name: 'start-line',
    weight: 3,
    apply(d, c) {
      switch (c.r.int(5)) {
        case 0:
          d.version = c.r.pick(['SIP/1.0', 'SIP/2.1', 'sip/2.0', 'HTTP/1.1', 'SIP/2.0 ', '']);
          return `version:${d.version}`;
        case 1:
          d.method = d.method.toLowerCase();
          return 'method-lowercase';
        case 2:
          d.method = c.r.pick(['INVITE\u0000', 'INV ITE', 'INVITEX', 'I'.repeat(300), '']);
          return 'method-broken';
        case 3:
          d.ruri = `${d.ruri} extra`;
          return 'ruri-space';
        default:
          d.ruri = d.ruri.replace('sip:', 'sip:%00');
          return 'ruri-nul';
      }
    },
  },
  {
    name: 'contact',
    weight: 6,
    apply(d, c) {
      const v = c.r.pick([
        '*',
        '<>',
        'garbage',
        '<sip:@>',
        Array.from({ length: 100 }, (_, i) => `<sip:${c.user}@${c.ip}:${10000 + i}>`).join(', '),
        `<sip:${c.user}@${c.ip}:${c.port}>;expires=-5`,
        `<sip:${c.user}@${c.ip}:${c.port}>;expires=abc`,
        `<sip:${c.user}@${c.ip}:${c.port}>;expires=99999999999`,
        `"\u260e \u00e9" <sip:${c.user}@${c.ip}:${c.port}>`,
        `<tel:+14155550100>`,
        `<sips:${c.user}@${c.ip}:${c.port}>`,
        `<sip:${c.user}@${c.ip}:${c.port}>;q=9.9`,
        `<sip:${c.user}@${c.ip}:${c.port}>, *`,
        `<sip:${c.user}@${c.ip}:${c.port};transport=ws>;+sip.instance="<urn:uuid:${c.r.hex(8)}>"`,
        `<http://example.com/>`,
        `sip:${c.user}@${c.ip}:${c.port};expires=0`,
      ]);
      setHeader(d, 'Contact', v);
      return `contact:${v.slice(0, 30)}`;
    },
  },
  {
    name: 'expires',
    weight: 3,
    apply(d, c) {
      const v = c.r.pick(['-1', 'abc', '0', '99999999999', '4294967296', '1', '', '1e3', '0x10', 'Infinity', 'NaN']);
      setHeader(d, 'Expires', v);
      return `expires:${v}`;
    },
  },
  {
    name: 'auth',
    weight: 9,
    apply(d, c) {
      const [name, value] = hostileAuth(c, d.method);
      const header = c.r.chance(0.85) ? (d.method === 'REGISTER' ? 'Authorization' : 'Proxy-Authorization') : c.r.pick(['Authorization', 'Proxy-Authorization']);
      d.headers.push([header, value]);
      if (c.r.chance(0.15)) d.headers.push([header, hostileAuth(c, d.method)[1]]);
      return name;
    },
  },
  {
    name: 'sdp',
    weight: 7,
    apply(d, c) {
      const choice = c.r.int(10);
      const label = ['sdp-garbage', 'sdp-empty', 'sdp-no-m', 'sdp-many-m', 'sdp-binary', 'sdp-bad-port', 'sdp-lf', 'sdp-wrong-type', 'sdp-no-type', 'sdp-huge'][choice]!;
      switch (choice) {
        case 0:
          d.body = 'this is not sdp';
          break;
        case 1:
          d.body = '';
          break;
        case 2:
          d.body = 'v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n';
          break;
        case 3:
          d.body = SDP(c.ip) + 'm=video 40002 RTP/AVP 96\r\n'.repeat(c.r.pick([50, 1000]));
          break;
        case 4:
          d.body = String.fromCharCode(...Array.from({ length: 300 }, () => c.r.int(256)));
          break;
        case 5:
          d.body = SDP(c.ip).replace('m=audio 40000 RTP/AVP 0 101', `m=audio 99999999999 RTP/AVP ${'9'.repeat(500)}`);
          break;
        case 6:
          d.body = SDP(c.ip).replace(/\r\n/g, '\n');
          break;
        case 7:
          setHeader(d, 'Content-Type', c.r.pick(['application/json', 'text/plain', 'multipart/mixed', 'application/sdp; charset=\u00e9', '']));
          break;
        case 8:
          d.headers.splice(find(d, 'Content-Type') >= 0 ? find(d, 'Content-Type') : 0, find(d, 'Content-Type') >= 0 ? 1 : 0);
          break;
        default:
          d.body = SDP(c.ip) + `a=x:${'y'.repeat(c.transport === 'udp' ? 50000 : 500000)}\r\n`;
          break;
      }
      if (d.body !== '' && find(d, 'Content-Type') < 0 && choice !== 8) d.headers.push(['Content-Type', 'application/sdp']);
      return label;
    },
  },
  {
    name: 'content-length',
    weight: 5,
    apply(d, c) {
      const len = Buffer.byteLength(d.body);
      const v = c.r.pick([String(len + 10), String(Math.max(0, len - 5)), '-1', 'abc', '', '99999999', '0', `${len} ${len}`, null]);
      if (c.r.chance(0.15)) d.headers.push(['Content-Length', String(len + 1)]);
      d.contentLength = v;
      return `content-length:${v === null ? 'none' : v}`;
    },
  },
  {
    name: 'enqueue',
    weight: 4,
    apply(d, c) {
      if (d.method !== 'INVITE') return 'enqueue-skipped';
      const [name, value] = hostileEnqueue(c.r);
      d.headers.push(['X-CCS-Enqueue', value]);
      if (c.r.chance(0.1)) d.headers.push(['X-CCS-Enqueue', value]);
      return name;
    },
  },
  {
    name: 'identity-headers',
    weight: 3,
    apply(d, c) {
      const h = c.r.pick<[string, string]>([
        ['P-Asserted-Identity', '<sip:1001@127.0.0.1>'],
        ['P-Asserted-Identity', 'garbage <<<'],
        ['P-Asserted-Identity', `"${'n'.repeat(2000)}" <sip:${'9'.repeat(300)}@x>`],
        ['Remote-Party-ID', '<sip:1001@127.0.0.1>;party=calling'],
        ['X-CCS-Agent', '1001'],
        ['Route', `<sip:127.0.0.1:${c.t.sipPort};lr>`],
        ['Record-Route', '<sip:10.0.0.1;lr>, garbage'],
        ['Require', '100rel, timer, foo'],
        ['Supported', 'x'.repeat(3000)],
        ['Session-Expires', '-1'],
        ['Replaces', `${c.token};to-tag=a;from-tag=b`],
        ['Referred-By', '<sip:s1@127.0.0.1>'],
        ['Authorization', 'Bearer test-token-0123456789'],
      ]);
      d.headers.push(h);
      return `header-${h[0].toLowerCase()}`;
    },
  },
];

/** Byte damage after serialisation (always breaks framing for TCP). */
const BYTE_DAMAGE: readonly [string, (b: Buffer, r: Rng) => Buffer][] = [
  ['lf-only', (b) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1')],
  ['cr-only', (b) => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\r'), 'latin1')],
  ['truncated', (b, r) => b.subarray(0, Math.max(1, r.int(b.length)))],
  ['nul', (b, r) => Buffer.concat([b.subarray(0, r.int(b.length)), Buffer.from([0]), b.subarray(r.int(b.length))])],
  [
    'bit-flips',
    (b, r) => {
      const out = Buffer.from(b);
      for (let i = 0; i < 1 + r.int(4); i++) {
        const at = r.int(out.length);
        out[at] = out[at]! ^ (1 << r.int(8));
      }
      return out;
    },
  ],
  ['leading-crlf', (b) => Buffer.concat([Buffer.from('\r\n\r\n'), b])],
  ['leading-space', (b) => Buffer.concat([Buffer.from(' '), b])],
  ['trailing-garbage', (b) => Buffer.concat([b, Buffer.from('GARBAGE \u0000\u00ff after the body\r\n\r\n', 'latin1')])],
  ['no-blank-line', (b) => Buffer.from(b.toString('latin1').replace(/\r\n\r\n/, '\r\n'), 'latin1')],
];

function serialise(d: Draft): Buffer {
  const body = Buffer.from(d.body, 'latin1');
  const lines = [`${d.method} ${d.ruri} ${d.version}`.replace(/ $/, ''), ...d.headers.map(([n, v]) => (n === '' ? `: ${v}` : v === '' && n === 'NoColonHere' ? n : `${n}: ${v}`))];
  if (d.contentLength !== null) lines.push(`Content-Length: ${d.contentLength ?? body.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'), body]);
}

/**
 * Single packets that crash drachtio-server 0.9.4 itself (segmentation fault, found by this
 * fuzz; ccswitch never sees them): a REGISTER whose first Contact has no URI scheme
 * (`Contact: garbage`: src/controller.cpp `processMessageStatelessly` compares its
 * `url_scheme` with "*" without a NULL check), and a request with a To tag and a Route whose
 * URI has no host (`Route: <tel:1;lr>`: `strcmp` on its `url_host`). They are left out so one
 * packet does not end the run; the test's report says so.
 */
export function crashesDrachtio(bytes: Buffer): boolean {
  const text = bytes.toString('latin1');
  const head = text.split('\r\n\r\n')[0]!;
  const lines = head.split(/\r?\n/);
  const method = /^\s*(\S+)/.exec(lines[0] ?? '')?.[1] ?? '';
  const values = (names: string[]): string[] =>
    lines.slice(1).flatMap((l) => {
      const m = /^([^:\s]+)\s*:(.*)$/.exec(l);
      return m !== null && names.includes(m[1]!.toLowerCase()) ? [m[2]!.trim()] : [];
    });
  const uriOf = (v: string): string => (/<([^>]*)>?/.exec(v)?.[1] ?? v).trim();
  const contact = values(['contact', 'm'])[0];
  if (/register/i.test(method) && contact !== undefined && contact !== '*' && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uriOf(contact.split(',')[0]!))) return true;
  return values(['route']).some((v) => !/^sips?:([^@;>]*@)?[^;:>\s]+/i.test(uriOf(v)));
}

/** Options of {@link generateFuzz}. */
export interface FuzzOptions {
  seed: number;
  count: number;
  target: FuzzTarget;
}

/**
 * The cases of one run: about `count` messages (a case may hold two), over UDP and TCP, from
 * every source in turn at random, each a valid template mutated 0-3 times.
 */
export function generateFuzz(o: FuzzOptions): FuzzCase[] {
  const r = new Rng(o.seed);
  const cases: FuzzCase[] = [];
  let n = 0;
  const tokenOf = (i: number): string => `fz${o.seed}n${i}z`;
  while (n < o.count) {
    const transport: Transport = r.chance(0.55) ? 'udp' : 'tcp';
    const kind = r.weighted<string>([
      [22, 'invite-fac'],
      [10, 'trunk-invite'],
      [12, 'register'],
      [12, 'register-auth'],
      [5, 'invite-cancel'],
      [3, 'invite-bye'],
      [8, 'cancel'],
      [8, 'bye'],
      [6, 'options'],
      [6, 'info'],
      [8, 'unknown'],
    ]);
    const src = kind === 'trunk-invite' ? r.pick(o.target.trunks) : r.pick(o.target.sources);
    const c: Ctx = { r, t: o.target, token: tokenOf(n), transport, ip: src.ip, port: src.udpPort, user: r.chance(0.8) ? '1001' : r.pick(AGENTS), trunk: kind === 'trunk-invite' };
    let d: Draft;
    let method: string;
    switch (kind) {
      case 'invite-fac':
      case 'invite-cancel':
      case 'invite-bye':
        d = baseInvite(c, r.pick(VALID_DIALS), kind);
        method = 'INVITE';
        break;
      case 'trunk-invite':
        d = baseInvite(c, r.chance(0.5) ? r.pick(VALID_DIALS) : r.pick(['+14155550100', '14155550100', '+14155559999', '+14155550150', '5550000', ...ODD_DIALS]), kind);
        setHeader(d, 'From', `"Caller" <sip:+1555${r.hex(6).replace(/[a-f]/g, '7')}@carrier.example>;tag=f${c.token}`);
        method = 'INVITE';
        break;
      case 'register':
      case 'register-auth':
        d = baseRegister(c);
        if (kind === 'register-auth') d.headers.push(['Authorization', wrongCredentials(c, 'REGISTER', `sip:127.0.0.1:${o.target.sipPort}`)]);
        method = 'REGISTER';
        break;
      case 'unknown':
        method = r.pick(['FOO', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'PUBLISH', 'UPDATE', 'REFER', 'X'.repeat(40), 'INVITE-ISH', 'PRACK']);
        d = baseOther(c, method);
        break;
      default:
        method = kind.toUpperCase();
        d = baseOther(c, method);
    }
    const mutations: string[] = [];
    const rounds = r.weighted([
      [8, 0],
      [50, 1],
      [28, 2],
      [14, 3],
    ]);
    // Pairs keep their first message intact enough to pair with.
    for (let i = 0; i < rounds; i++) {
      const m = r.weighted(MUTATIONS.map((x) => [x.weight, x] as const));
      mutations.push(m.apply(d, c));
    }
    let bytes = serialise(d);
    if (r.chance(0.07)) {
      const [name, damage] = r.pick(BYTE_DAMAGE);
      bytes = damage(bytes, r);
      mutations.push(name);
    }
    const messages: FuzzMessage[] = [{ n, token: c.token, method, base: kind, mutations, bytes }];
    n++;
    if (kind === 'invite-cancel' || kind === 'invite-bye') {
      // The same transaction's CANCEL, or a BYE on the dialog-to-be, right behind the INVITE.
      const second = kind === 'invite-cancel' ? 'CANCEL' : 'BYE';
      const follow: Draft = {
        method: second,
        ruri: d.ruri,
        version: 'SIP/2.0',
        headers: [
          ['Via', second === 'CANCEL' ? valueOf(d, 'Via') || via(c) : via(c, `z9hG4bK-${c.token}-bye`)],
          ['Max-Forwards', '70'],
          ['From', valueOf(d, 'From')],
          ['To', second === 'BYE' ? `${valueOf(d, 'To')};tag=guess` : valueOf(d, 'To')],
          ['Call-ID', valueOf(d, 'Call-ID') || `${c.token}@fuzz`],
          ['CSeq', `${/^\d+/.exec(valueOf(d, 'CSeq'))?.[0] ?? '1'} ${second}`],
        ],
        body: '',
      };
      const fm: string[] = [];
      if (r.chance(0.3)) {
        const m = r.pick(MUTATIONS.filter((x) => ['cseq', 'tags', 'via', 'max-forwards', 'drop-header'].includes(x.name)));
        fm.push(m.apply(follow, c));
      }
      messages.push({ n, token: c.token, method: second, base: `${kind}:${second.toLowerCase()}`, mutations: fm, bytes: serialise(follow) });
      n++;
    }
    if (messages.some((m) => crashesDrachtio(m.bytes))) {
      n -= messages.length;
      continue;
    }
    const tooBigForUdp = messages.some((m) => m.bytes.length > 65000);
    // Over TCP every mutated message gets a connection of its own: sofia shuts a connection
    // down for one bad request (no Via, broken framing), and drachtio then drops the answers
    // of every other request received on it.
    cases.push({ transport: tooBigForUdp ? 'tcp' : transport, source: src.ip, ownConnection: messages.some((m) => m.mutations.length > 0), messages });
  }
  // TCP framing cases: each on a connection of its own.
  const framingCases = Math.max(8, Math.round(o.count / 100));
  for (let i = 0; i < framingCases; i++) {
    const src = r.pick(o.target.sources);
    const c: Ctx = { r, t: o.target, token: tokenOf(n), transport: 'tcp', ip: src.ip, port: src.udpPort, user: '1001', trunk: false };
    const d = r.chance(0.5) ? baseInvite(c, r.pick(VALID_DIALS), 'framing') : baseRegister(c);
    const kind = i % 6;
    let bytes = serialise(d);
    let label: string;
    const chunked = kind === 4;
    if (kind === 0) {
      d.contentLength = String(Buffer.byteLength(d.body) + 500);
      bytes = serialise(d);
      label = 'tcp-content-length-over';
    } else if (kind === 1) {
      d.contentLength = '0';
      bytes = serialise(d);
      label = 'tcp-content-length-under';
    } else if (kind === 2) {
      d.contentLength = '3000000';
      bytes = serialise(d);
      label = 'tcp-content-length-3MB';
    } else if (kind === 3) {
      d.contentLength = null;
      bytes = serialise(d);
      label = 'tcp-no-content-length';
    } else if (kind === 4) {
      label = 'tcp-chunked';
    } else {
      bytes = Buffer.concat([Buffer.from(`NOT SIP AT ALL ${c.token}\r\n\r\n`), bytes]);
      label = 'tcp-garbage-first';
    }
    cases.push({ transport: 'tcp', source: src.ip, ownConnection: true, chunked, messages: [{ n, token: c.token, method: d.method, base: 'tcp-framing', mutations: [label], bytes }] });
    n++;
  }
  // Pipelined: two intact requests in one write on a connection of their own.
  for (let i = 0; i < 4; i++) {
    const src = r.pick(o.target.sources);
    const msgs: FuzzMessage[] = [];
    for (let k = 0; k < 2; k++) {
      const c: Ctx = { r, t: o.target, token: tokenOf(n), transport: 'tcp', ip: src.ip, port: src.udpPort, user: '1001', trunk: false };
      const d = k === 0 ? baseRegister(c) : baseInvite(c, '*38', 'pipelined');
      msgs.push({ n, token: c.token, method: d.method, base: 'tcp-pipelined', mutations: [], bytes: serialise(d) });
      n++;
    }
    cases.push({ transport: 'tcp', source: src.ip, ownConnection: true, messages: msgs });
  }
  return cases;
}

/** The `fz…z` tokens in a text (a response or a request as the app saw it). */
export function tokensIn(text: string): string[] {
  return [...new Set(text.match(/fz\d+n\d+z/g) ?? [])];
}

/**
 * Cases for the run signed with an agent's real credentials (the code behind authentication):
 * REGISTERs and feature-code INVITEs of `user` from one source, mutated in what they carry
 * (Contact, Expires, To, CSeq, SDP, dial string) but not in how they route back (Via, Contact of
 * INVITEs, Call-ID stay intact so the app's BYE finds the sender). `sign(method, uri)` returns
 * an Authorization value for the next nonce count.
 */
export function signedFuzz(o: { seed: number; count: number; target: FuzzTarget; user: string; source: { ip: string; udpPort: number }; firstN: number; sign: (method: string, uri: string) => string }): FuzzCase[] {
  const r = new Rng(o.seed ^ 0x5eed);
  const cases: FuzzCase[] = [];
  const allowed = new Set(['ruri', 'cseq', 'sdp', 'contact', 'expires', 'tags', 'huge-header', 'many-headers', 'dup-header', 'identity-headers', 'max-forwards', 'bad-header-line']);
  for (let i = 0; i < o.count; i++) {
    const n = o.firstN + i;
    const transport: Transport = 'udp';
    const c: Ctx = { r, t: o.target, token: `fz${o.seed}n${n}z`, transport, ip: o.source.ip, port: o.source.udpPort, user: o.user, trunk: false };
    const register = r.chance(0.5);
    const d = register ? baseRegister(c) : baseInvite(c, r.chance(0.5) ? r.pick(VALID_DIALS) : r.pick(ODD_DIALS), 'signed');
    const mutations: string[] = [];
    const muts = MUTATIONS.filter((m) => allowed.has(m.name) && (register || m.name !== 'contact') && m.name !== 'dup-header');
    for (let k = 0; k < 1 + r.int(2); k++) {
      const m = r.weighted(muts.map((x) => [x.weight, x] as const));
      mutations.push(m.apply(d, c));
    }
    // The transaction must stay traceable and answerable: keep Via and Call-ID as built.
    setHeader(d, 'Via', via(c));
    setHeader(d, 'Call-ID', `${c.token}@fuzz`);
    if (!register) setHeader(d, 'Contact', `<sip:${c.user}@${c.ip}:${c.port}>`);
    const digestUri = `sip:127.0.0.1:${o.target.sipPort}`;
    if (crashesDrachtio(serialise(d))) continue;
    d.headers.push([register ? 'Authorization' : 'Proxy-Authorization', o.sign(d.method, digestUri)]);
    cases.push({ transport, source: c.ip, ownConnection: false, messages: [{ n, token: c.token, method: d.method, base: register ? 'signed-register' : 'signed-invite', mutations, bytes: serialise(d) }] });
  }
  return cases;
}

// --- sending and tracking --------------------------------------------------------------------

/** What happened to one message on the wire. */
export interface WireOutcome {
  msg: FuzzMessage;
  transport: Transport;
  source: string;
  /** Every status received for it, in order (retransmissions included), and its reason phrase. */
  statuses: number[];
  reasons: string[];
  /** False when its bytes could not be written (a TCP connection the server had closed). */
  written: boolean;
  /** TCP: when the server closed the connection the message went over (ms since the epoch), if it did. */
  serverClosedAt?: number;
}

/** Options of {@link FuzzWire.run}. */
export interface RunOptions {
  /** Cases in flight at once. */
  concurrency: number;
  /** How long a case holds its slot without all its final responses (it may still get them later). */
  slotMs: number;
  /** Sends cases one after the other, each after the previous one's final responses (nonce counts must rise). */
  sequential?: boolean;
}

/**
 * The fuzz's sockets: one UDP socket per source address and TCP connections from the same
 * addresses to drachtio-server; responses are traced to messages by their token, final
 * responses to INVITEs are ACKed, and requests from the server (the app's BYE) are answered 200.
 */
export class FuzzWire {
  private readonly outcomes = new Map<number, WireOutcome>();
  private readonly byToken = new Map<string, FuzzMessage[]>();
  private readonly tcp = new Map<string, Promise<TcpSip>>();
  private readonly own = new Set<TcpSip>();
  private readonly waiters = new Set<() => void>();
  private closing = false;
  /** Server requests answered (BYE, OPTIONS…), for the report. */
  serverRequests = 0;

  private constructor(
    private readonly sipPort: number,
    private readonly udp: Map<string, Socket>,
  ) {
    for (const sock of udp.values()) sock.on('message', (b: Buffer) => this.incoming(b.toString('utf8'), (bytes) => sock.send(bytes, sipPort, '127.0.0.1')));
  }

  /** Binds a UDP socket on each of `ips`. */
  static async open(sipPort: number, ips: readonly string[]): Promise<FuzzWire> {
    const udp = new Map<string, Socket>();
    for (const ip of ips) {
      const sock = createSocket('udp4');
      // Large huge-header responses come back whole; a drop here would look like the server's.
      sock.bind(0, ip);
      await once(sock, 'listening');
      sock.setRecvBufferSize(4 * 1024 * 1024);
      sock.setSendBufferSize(4 * 1024 * 1024);
      udp.set(ip, sock);
    }
    return new FuzzWire(sipPort, udp);
  }

  /** The UDP port bound on `ip`. */
  udpPort(ip: string): number {
    return this.udp.get(ip)!.address().port;
  }

  /** Outcomes of every message sent so far, by message number. */
  results(): WireOutcome[] {
    return [...this.outcomes.values()];
  }

  /** Resolves once `done()` holds (checked after each message received), or after `ms`. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return true;
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(done());
      }, ms);
      this.waiters.add(check);
    });
  }

  private finalOf(m: FuzzMessage): boolean {
    return (this.outcomes.get(m.n)?.statuses ?? []).some((s) => s >= 200);
  }

  /** Sends every case, `concurrency` at a time; resolves when the last one has been given up or answered. */
  async run(cases: readonly FuzzCase[], o: RunOptions): Promise<void> {
    for (const c of cases) for (const m of c.messages) this.byToken.set(m.token, [...(this.byToken.get(m.token) ?? []), m]);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length) {
        const c = cases[next++]!;
        await this.send(c, o.slotMs);
      }
    };
    await Promise.all(Array.from({ length: o.sequential === true ? 1 : o.concurrency }, () => worker()));
  }

  private async send(c: FuzzCase, slotMs: number): Promise<void> {
    for (const m of c.messages) this.outcomes.set(m.n, { msg: m, transport: c.transport, source: c.source, statuses: [], reasons: [], written: true });
    const all = (): boolean => c.messages.every((m) => this.finalOf(m));
    if (c.transport === 'udp') {
      const sock = this.udp.get(c.source)!;
      for (const m of c.messages) sock.send(m.bytes, this.sipPort, '127.0.0.1');
      await this.until(all, slotMs);
      return;
    }
    const conn = c.ownConnection ? await this.openTcp(c.source) : await this.sharedTcp(c.source);
    if (c.ownConnection) this.own.add(conn);
    let closingByUs = false;
    void conn.whenClosed().then(() => {
      if (closingByUs || this.closing) return;
      for (const m of c.messages) this.outcomes.get(m.n)!.serverClosedAt ??= Date.now();
    });
    for (const m of c.messages) {
      if (c.chunked === true) {
        // Pieces in separate writes (each its own segment on loopback with Nagle off).
        for (let at = 0; at < m.bytes.length; at += Math.ceil(m.bytes.length / 4)) {
          this.outcomes.get(m.n)!.written &&= conn.write(m.bytes.subarray(at, at + Math.ceil(m.bytes.length / 4)));
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } else {
        this.outcomes.get(m.n)!.written = conn.write(m.bytes);
      }
    }
    await this.until(all, slotMs);
    if (c.ownConnection) {
      closingByUs = true;
      await conn.close();
      this.own.delete(conn);
    }
  }

  private openTcp(ip: string): Promise<TcpSip> {
    let reply: (b: Buffer) => void = () => undefined;
    const p = TcpSip.open(this.sipPort, ip, (m) => this.incoming(m, reply));
    return p.then((conn) => {
      reply = (b) => void conn.write(b);
      return conn;
    });
  }

  /** The source's long-lived connection (a new one if the server closed the last). */
  private async sharedTcp(ip: string): Promise<TcpSip> {
    const existing = this.tcp.get(ip);
    if (existing !== undefined) {
      const conn = await existing;
      if (!conn.isClosed) return conn;
    }
    const p = this.openTcp(ip);
    this.tcp.set(ip, p);
    return p;
  }

  private incoming(text: string, reply: (bytes: Buffer) => void): void {
    const m = parseWire(text);
    if (m === undefined) return;
    if (m.status === undefined) {
      this.answerServerRequest(m, reply);
      return;
    }
    const cseqMethod = m.method.toUpperCase();
    for (const token of tokensIn(m.headers.get('call-id')?.join(' ') + ' ' + m.headers.get('via')?.[0] + ' ' + m.headers.get('from')?.join(' '))) {
      const candidates = this.byToken.get(token) ?? [];
      const msg = candidates.length === 1 ? candidates[0] : (candidates.find((x) => x.method === cseqMethod) ?? candidates[0]);
      if (msg === undefined) continue;
      const out = this.outcomes.get(msg.n);
      out?.statuses.push(m.status);
      out?.reasons.push(m.start.slice(12));
      break;
    }
    if (cseqMethod === 'INVITE' && m.status >= 200) reply(ackFor(m, this.sipPort));
    for (const w of [...this.waiters]) w();
  }

  private answerServerRequest(m: WireMessage, reply: (bytes: Buffer) => void): void {
    if (m.method === 'ACK') return;
    this.serverRequests++;
    const copy = (name: string, header: string): string[] => (m.headers.get(name) ?? []).map((v) => `${header}: ${v}`);
    const lines = ['SIP/2.0 200 OK', ...copy('via', 'Via'), ...copy('from', 'From'), ...copy('to', 'To'), ...copy('call-id', 'Call-ID'), ...copy('cseq', 'CSeq'), 'Content-Length: 0'];
    reply(Buffer.from(lines.join('\r\n') + '\r\n\r\n'));
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const conn of this.own) await conn.close();
    for (const p of this.tcp.values()) await (await p).close();
    for (const sock of this.udp.values()) sock.close();
  }
}

/** The ACK of a final response to an INVITE: in its transaction for non-2xx, a new one for 2xx (RFC 3261 17.1.1.3, 13.2.2.4). */
function ackFor(res: WireMessage, sipPort: number): Buffer {
  const first = (n: string): string => res.headers.get(n)?.[0] ?? '';
  const num = /^\s*(\d+)/.exec(first('cseq'))?.[1] ?? '1';
  const ok = (res.status ?? 0) < 300;
  const topVia = first('via');
  const sentBy = /^SIP\/2\.0\/\S+\s+([^;\s]+)/i.exec(topVia)?.[1] ?? '127.0.0.1';
  const target = ok ? (/<([^>]+)>/.exec(first('contact'))?.[1] ?? `sip:127.0.0.1:${sipPort}`) : `sip:127.0.0.1:${sipPort}`;
  const via = ok ? `${/^SIP\/2\.0\/\S+/i.exec(topVia)?.[0] ?? 'SIP/2.0/UDP'} ${sentBy};branch=z9hG4bK-ack${Math.random().toString(36).slice(2)};rport` : topVia;
  const lines = [`ACK ${target} SIP/2.0`, `Via: ${via}`, 'Max-Forwards: 70', `From: ${first('from')}`, `To: ${first('to')}`, `Call-ID: ${first('call-id')}`, `CSeq: ${num} ACK`, 'Content-Length: 0'];
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n');
}
