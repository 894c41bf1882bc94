/**
 * Hostile SIP input through a real drachtio-server (issue "faults", item 7): a seeded fuzz
 * (test/helpers/sipFuzz.ts) sends mutated INVITE, REGISTER, CANCEL, BYE, OPTIONS, INFO and
 * unknown requests over UDP and TCP straight to drachtio's SIP port, from 64 loopback sources
 * and two trunk addresses. None of it carries a right password.
 *
 * What must hold: the ccswitch process survives (no uncaught exception or unhandled
 * rejection), nothing in Redis changes, and every request that reaches the app (drachtio
 * parsed it and handed it over: counted by a middleware in front of the app's handlers) gets
 * a final response on the socket it came from, and every INVITE handler finishes. Requests
 * drachtio-server answers or drops itself are counted and printed, not asserted.
 *
 * Then a source over the digest-failure limit (the default 16 per 2 s) keeps getting final
 * 403s, a run signed with agent 1005's real password reaches the code behind authentication
 * and changes nobody but 1005, and afterwards a real phone registers and dials a feature code,
 * /healthz answers and the audit is empty.
 *
 * FUZZ_SEED (default 7) picks the run; FUZZ_SCALE multiplies its 2,000 messages.
 */
import { EventEmitter, once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import Srf from 'drachtio-srf';
import { Redis } from 'ioredis';
import { createApp, type App } from '../../app/createApp';
import { answerCrashesDrachtio } from '../../app/sip/drachtioQuirks';
import type { SipRequest, SipResponse, SrfLike } from '../../app/sip/types';
import { createLogger } from '../../lib/logger';
import { digestResponse } from '../../lib/sip/digest';
import { callCenterKeys } from '../../lib/store/keys';
import { createRedis } from '../../lib/store/redis';
import { NO_MEDIA } from '../../media/none';
import { testConfig } from '../helpers/config';
import { startDrachtio, type DrachtioServer } from '../helpers/drachtio';
import { describeLayer } from '../helpers/layers';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { startTcpProxy, type TcpProxy } from '../helpers/tcpProxy';
import { FuzzWire, generateFuzz, signedFuzz, tokensIn, type FuzzCase, type FuzzMessage, type FuzzTarget, type WireOutcome } from '../helpers/sipFuzz';
import { runSipp, type SippResult } from '../helpers/sipp';
import { registerRequest, UdpSip } from '../helpers/udpSip';
import { parseOplog } from '../../lib/events';

const SEED = Number(process.env.FUZZ_SEED ?? 7);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const COUNT = Math.round(2000 * SCALE);
/** Fuzz sources: 127.0.0.10-73 (under the default digest-failure limit each), trunks 127.0.0.2/3. */
const SOURCES = Array.from({ length: 64 }, (_, i) => `127.0.0.${10 + i}`);
const TRUNKS = ['127.0.0.2', '127.0.0.3'];
const LIMITED = '127.0.0.9';
const SIGNED = '127.0.0.5';
const TOKEN = 'test-token-0123456789';

/** What the app's middleware saw of one message (by token and method). */
interface Seen {
  method: string;
  /** drachtio-server's transaction id (its log names it when it cannot send the answer). */
  txn: string;
  /** Final statuses the app sent, and when it sent the first. */
  finals: number[];
  finalAt?: number;
  /** An INVITE the app leaves unanswered on purpose: answering it would crash drachtio-server (app/sip/drachtioQuirks.ts). */
  crasher: boolean;
}

describeLayer('sip', 'hostile SIP input over UDP and TCP (fuzz)', () => {
  let redisServer: RedisServer;
  let drachtio: DrachtioServer;
  let adminProxy: TcpProxy;
  let app: App;
  let redis: Redis;
  let raw: Redis;
  let httpPort: number;
  let wire: FuzzWire;
  let target: FuzzTarget;
  let before: Map<string, string>;
  const crashes: string[] = [];
  const appErrors: string[] = [];
  const seen = new Map<string, Seen[]>();
  const inviteSeen = new Set<string>();
  const inviteSettled = new Set<string>();
  const onUncaught = (err: unknown): void => void crashes.push(`uncaughtException: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  const onRejection = (err: unknown): void => void crashes.push(`unhandledRejection: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  let consoleError: jest.SpyInstance;

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onRejection);
    // drachtio-srf reports a message it cannot parse on console.error and drops it unanswered.
    consoleError = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    [redisServer, drachtio] = await Promise.all([startRedis(), startDrachtio()]);
    const config = testConfig({
      redisUrl: redisServer.url,
      // Through a proxy the test controls, to garble the connection on purpose (last test but one).
      drachtio: { host: '127.0.0.1', port: (adminProxy = await startTcpProxy(drachtio.adminPort, 'tcp')).port, secret: drachtio.secret },
      sip: {
        trunks: {
          carrier: { addresses: ['127.0.0.2/32'], callcenter: 'default' },
          national: { addresses: ['127.0.0.3/32'], callcenter: 'default', inboundNumberFrom: 'to', numberFormat: { countryCode: '1', nationalPrefix: '1' } },
        },
      },
      callcenter: { numbers: { '+14155550100': { queue: '8000' }, '+1415555*': { queue: '8001', priority: 2 } } },
    });
    redis = createRedis(redisServer.url);
    raw = new Redis(redisServer.url);
    const srf = new Srf() as unknown as SrfLike & EventEmitter & { use(fn: (req: SipRequest & { raw: string; stackTxnId: string }, res: SipResponse, next: () => void) => void): void };
    // In front of the app's handlers: which fuzz messages reached the app, and what it answered.
    srf.use((req, res, next) => {
      for (const token of tokensIn(req.raw)) {
        const s: Seen = { method: req.method, txn: req.stackTxnId, finals: [], crasher: answerCrashesDrachtio(req) };
        seen.set(token, [...(seen.get(token) ?? []), s]);
        const send = res.send.bind(res);
        res.send = (status, ...rest) => {
          if (status >= 200) {
            s.finals.push(status);
            s.finalAt ??= Date.now();
          }
          send(status, ...rest);
        };
        if (req.method === 'INVITE') inviteSeen.add(req.get('Call-ID') ?? '');
      }
      next();
    });
    const connected = once(srf, 'connect');
    // The app's error lines (a handler that failed, a 500) are kept for the report.
    const errorSink = new Writable({
      write(chunk: Buffer, _enc, done) {
        appErrors.push(chunk.toString());
        done();
      },
    });
    app = await createApp(config, { redis, logger: createLogger('error', {}, errorSink), srf, media: NO_MEDIA, onInviteSettled: (callId) => inviteSettled.add(callId) });
    ({ port: httpPort } = await app.start());
    const [err] = (await connected) as [Error | null];
    if (err) throw err;
    wire = await FuzzWire.open(drachtio.sipPort, [...SOURCES, ...TRUNKS, LIMITED, SIGNED]);
    // A real nonce (from a challenge) makes wrong-password and unknown-user credentials reach the digest check.
    const probe = await UdpSip.open();
    try {
      const challenge = await probe.request(drachtio.sipPort, registerRequest({ user: '1001', localPort: probe.port, serverPort: drachtio.sipPort, callId: `nonce-${randomBytes(4).toString('hex')}`, cseq: 1, branch: 'n1' }));
      target = {
        sipPort: drachtio.sipPort,
        sources: SOURCES.map((ip) => ({ ip, udpPort: wire.udpPort(ip) })),
        trunks: TRUNKS.map((ip) => ({ ip, udpPort: wire.udpPort(ip) })),
        realm: /realm="([^"]+)"/.exec(challenge.headers)![1]!,
        nonce: /nonce="([^"]+)"/.exec(challenge.headers)![1]!,
      };
    } finally {
      probe.close();
    }
    // Each queue's stats timer publishes once within timers.queueStatsMs of the start, then only
    // when its figures change: wait for those first publications, which would otherwise land in
    // the middle of the fuzz (measured: a loaded machine got there before the timer did).
    const firsts = Object.values(config.callcenters).flatMap((cc) => Object.keys(cc.queues).map((q) => callCenterKeys(config.redis.keyPrefix, cc.id).queueStatsLast(q)));
    while ((await raw.exists(...firsts)) < firsts.length) await new Promise((resolve) => setTimeout(resolve, 50));
    before = await snapshot();
  }, 60000);

  afterAll(async () => {
    if (process.env.FUZZ_DRACHTIO_LOG !== undefined) writeFileSync(process.env.FUZZ_DRACHTIO_LOG, drachtio.log());
    await wire?.close();
    await app?.stop();
    redis?.disconnect();
    raw?.disconnect();
    await adminProxy?.close();
    await drachtio?.stop();
    await redisServer?.stop();
    consoleError?.mockRestore();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
  });

  /**
   * Every key of the Redis with its content, except the per-source digest-failure counters (the
   * fuzz is meant to raise them) and the process's own liveness bookkeeping.
   */
  async function snapshot(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const key of (await raw.keys('*')).sort()) {
      // The per-source failure counters are the fuzz's to raise; the deadline token counts the
      // timers' claims, the queue-stats timers (qstats|<queue>) re-arm themselves and sample
      // each queue's per-minute history (a new minute's field) as they do.
      if (key.startsWith('ccs:authfail:') || key.endsWith(':deadlines:token') || /:queue:[^:]+:history$/.test(key)) continue;
      const type = await raw.type(key);
      let value: unknown;
      if (type === 'string') value = await raw.get(key);
      else if (type === 'hash') value = await raw.hgetall(key);
      else if (type === 'set') value = (await raw.smembers(key)).sort();
      else if (type === 'zset') value = key.endsWith(':deadlines') ? (await raw.zrange(key, 0, -1)).filter((m) => !m.startsWith('qstats|')).sort() : await raw.zrange(key, 0, -1, 'WITHSCORES');
      else if (type === 'list') value = await raw.lrange(key, 0, -1);
      else if (type === 'stream') value = await raw.xrange(key, '-', '+');
      out.set(key, `${type} ${JSON.stringify(value)}`);
    }
    return out;
  }

  const diff = (a: Map<string, string>, b: Map<string, string>): string[] => {
    const keys = new Set([...a.keys(), ...b.keys()]);
    return [...keys].filter((k) => a.get(k) !== b.get(k)).map((k) => `${k}: ${a.get(k)?.slice(0, 200) ?? '(none)'} -> ${b.get(k)?.slice(0, 200) ?? '(none)'}`);
  };

  /** What the app saw of message `m` (its token, and the method for the two messages of a pair). */
  const appSaw = (m: FuzzMessage, pair: boolean): Seen | undefined => {
    const s = seen.get(m.token) ?? [];
    return pair ? s.find((x) => x.method === m.method) : s[0];
  };

  interface Verdict {
    o: WireOutcome;
    app: Seen | undefined;
    final: boolean;
    provisionalOnly: boolean;
    /**
     * Why a request the app answered got no final response on the wire, when drachtio-server
     * says so: sofia had shut the TCP connection down (for broken framing, or a request without
     * a usable Via) and drachtio logs that it cannot send on it.
     */
    lostBy?: 'drachtio: connection shut down';
    /** drachtio-srf could not parse what drachtio-server handed over and dropped it (console.error). */
    srfDropped: boolean;
    /** Its Via names a `maddr`: its responses go to that (multicast) address (RFC 3261 18.2.2), never back to the fuzz socket. */
    toMaddr: boolean;
  }

  /** Tokens of messages drachtio-srf reported as unparseable. */
  const srfUnparseable = (): Set<string> => new Set(consoleError.mock.calls.flatMap((args: unknown[]) => (/unable to parse incoming message/.test(String(args[1])) ? tokensIn(String(args[1])) : [])));

  /** Transactions drachtio-server could not answer: it logs each one's id. */
  const unanswerable = (): Set<string> => new Set([...drachtio.log().matchAll(/unable to find irq or iip for transaction id (\S+)/g)].map((m) => m[1]!));

  const verdicts = (cases: readonly FuzzCase[], lostTxns: Set<string>): Verdict[] => {
    const results = new Map(wire.results().map((o) => [o.msg.n, o]));
    const unparseable = srfUnparseable();
    return cases.flatMap((c) =>
      c.messages.map((m): Verdict => {
        const o = results.get(m.n)!;
        const final = o.statuses.some((s) => s >= 200);
        const app = appSaw(m, c.messages.length > 1);
        const lost = app !== undefined && !final && o.transport === 'tcp' && lostTxns.has(app.txn);
        return { o, app, final, provisionalOnly: !final && o.statuses.length > 0, ...(lost ? { lostBy: 'drachtio: connection shut down' as const } : {}), srfDropped: app === undefined && unparseable.has(m.token), toMaddr: /;maddr=/i.test(m.bytes.subarray(0, 2048).toString('latin1')) };
      }),
    );
  };

  const describeMsg = (v: Verdict): string =>
    `#${v.o.msg.n} ${v.o.transport} ${v.o.source} ${v.o.msg.base} [${v.o.msg.mutations.join(', ')}] wire=${JSON.stringify(v.o.statuses)} app=${JSON.stringify(v.app?.finals ?? null)}${v.o.serverClosedAt === undefined ? '' : ` (server closed the connection ${v.o.serverClosedAt - (v.app?.finalAt ?? 0)} ms after the app's answer)`}`;

  /** Waits (bounded) for late final responses of requests the app has seen, then judges. */
  async function judge(cases: readonly FuzzCase[], label: string, startedAt: number): Promise<Verdict[]> {
    const sentAt = Date.now();
    const lostBefore = unanswerable();
    const pending = (): Verdict[] => verdicts(cases, lostBefore).filter((v) => v.app !== undefined && !v.app.crasher && !v.final && v.lostBy === undefined && !v.toMaddr);
    // Stragglers: a final the app sent just before the run ended is still on its way.
    await wire.until(() => pending().length === 0, 5000);
    const all = verdicts(cases, unanswerable());
    const reached = all.filter((v) => v.app !== undefined);
    const byDrachtio = all.filter((v) => v.app === undefined && v.final);
    const dropped = all.filter((v) => v.app === undefined && !v.final);
    const count = (vs: Verdict[], key: (v: Verdict) => string): string =>
      Object.entries(vs.reduce<Record<string, number>>((acc, v) => ({ ...acc, [key(v)]: (acc[key(v)] ?? 0) + 1 }), {}))
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
    const statusOf = (v: Verdict): string => String(v.o.statuses.find((s) => s >= 200) ?? 'none');
    process.stdout.write(
      [
        `fuzz ${label}: seed ${SEED}, ${all.length} requests sent in ${((sentAt - startedAt) / 1000).toFixed(1)} s, judged in ${((Date.now() - sentAt) / 1000).toFixed(1)} s (udp ${all.filter((v) => v.o.transport === 'udp').length}, tcp ${all.filter((v) => v.o.transport === 'tcp').length})`,
        `  reached the app: ${reached.length}; final response on the wire ${reached.filter((v) => v.final).length} (${count(reached, statusOf)})`,
        `  answer lost because drachtio had shut the TCP connection down: ${reached.filter((v) => v.lostBy !== undefined).length}`,
        `  answered to the Via's maddr (not observable here): ${all.filter((v) => v.toMaddr).length}`,
        `  left unanswered on purpose (a UDP INVITE whose Contact has no host: answering it crashes drachtio-server): ${reached.filter((v) => v.app?.crasher === true).length}`,
        `  answered by drachtio-server itself: ${byDrachtio.length} (${count(byDrachtio, statusOf)})`,
        `  dropped unanswered by drachtio-server: ${dropped.filter((v) => !v.srfDropped).length}, by drachtio-srf's parser: ${dropped.filter((v) => v.srfDropped).length} (by base: ${count(dropped, (v) => v.o.msg.base)})`,
        `  only provisional: ${all.filter((v) => v.provisionalOnly).length} (of them explained by drachtio: ${all.filter((v) => v.provisionalOnly && (v.lostBy !== undefined || v.srfDropped)).length})`,
        '',
      ].join('\n'),
    );
    return all;
  }

  const expectNoBrokenPromises = (all: Verdict[]): void => {
    // Every request the app saw was answered on the wire, unless drachtio says it could not send it.
    expect(all.filter((v) => v.app !== undefined && !v.app.crasher && !v.final && v.lostBy === undefined && !v.toMaddr).map(describeMsg)).toEqual([]);
    expect(all.filter((v) => v.provisionalOnly && v.app?.crasher !== true && v.lostBy === undefined && !v.srfDropped && !v.toMaddr).map(describeMsg)).toEqual([]);
    // What the app leaves unanswered on purpose it leaves wholly unanswered (and drachtio-server lives on: the later requests are answered).
    expect(all.filter((v) => v.app?.crasher === true && v.app.finals.length > 0).map(describeMsg)).toEqual([]);
    // No request the app saw made a handler fail (500 is a final response, but a bug).
    expect(all.filter((v) => v.app?.finals.some((s) => s === 500) === true).map(describeMsg)).toEqual([]);
  };

  /** console.error is drachtio-srf's report of a message it could not parse, and nothing else. */
  const expectOnlyParseReports = (): void => {
    expect(consoleError.mock.calls.filter((args: unknown[]) => !/unable to parse incoming message/.test(String(args[1]))).map((args: unknown[]) => String(args[0]))).toEqual([]);
  };

  it(`${COUNT} mutated requests from 64 sources over UDP and TCP: each one the app sees gets a final response, no handler is left running, and nothing in Redis changes`, async () => {
    const startedAt = Date.now();
    const cases = generateFuzz({ seed: SEED, count: COUNT, target });
    await wire.run(cases, { concurrency: 48, slotMs: 1500 });
    const all = await judge(cases, 'unauthenticated', startedAt);
    expect(all.length).toBeGreaterThanOrEqual(COUNT);
    expect(all.filter((v) => v.o.transport === 'udp').length).toBeGreaterThan(COUNT / 3);
    expect(all.filter((v) => v.o.transport === 'tcp').length).toBeGreaterThan(COUNT / 3);
    expectNoBrokenPromises(all);
    // Every INVITE the app took ended its handler (answered, refused or cancelled).
    await wire.until(() => [...inviteSeen].every((id) => inviteSettled.has(id)), 5000);
    expect([...inviteSeen].filter((id) => !inviteSettled.has(id))).toEqual([]);
    expect(crashes).toEqual([]);
    expectOnlyParseReports();
    expect(appErrors).toEqual([]);
    expect(diff(before, await snapshot())).toEqual([]);
  }, 90000 * Math.max(1, SCALE));

  it('a source over the default digest-failure limit (16 per 2 s) keeps getting final 403s over UDP and TCP, and changes nothing', async () => {
    const cases: FuzzCase[] = [];
    const r = (n: number): string => `fz${SEED}n${900000 + n}z`;
    for (let i = 0; i < 40; i++) {
      const token = r(i);
      const transport = i % 2 === 0 ? 'udp' : 'tcp';
      const register = i % 4 < 2;
      const method = register ? 'REGISTER' : 'INVITE';
      const uri = `sip:127.0.0.1:${target.sipPort}`;
      const cnonce = randomBytes(4).toString('hex');
      const response = digestResponse({ username: '9999', realm: target.realm, password: 'guess', method, uri, nonce: target.nonce, nc: '00000001', cnonce, qop: 'auth' });
      const auth = `Digest username="9999", realm="${target.realm}", nonce="${target.nonce}", uri="${uri}", response="${response}", qop=auth, nc=00000001, cnonce="${cnonce}"`;
      const port = wire.udpPort(LIMITED);
      const lines = [
        `${method} ${register ? uri : `sip:*38@127.0.0.1:${target.sipPort}`} SIP/2.0`,
        `Via: SIP/2.0/${transport.toUpperCase()} ${LIMITED}:${port};branch=z9hG4bK-${token};rport`,
        'Max-Forwards: 70',
        `From: <sip:9999@127.0.0.1>;tag=f${token}`,
        `To: <sip:${register ? '9999' : '*38'}@127.0.0.1>`,
        `Call-ID: ${token}@fuzz`,
        `CSeq: 1 ${method}`,
        `Contact: <sip:9999@${LIMITED}:${port}>`,
        `${register ? 'Authorization' : 'Proxy-Authorization'}: ${auth}`,
        'Content-Length: 0',
      ];
      cases.push({ transport, source: LIMITED, ownConnection: false, messages: [{ n: 900000 + i, token, method, base: 'limited', mutations: [], bytes: Buffer.from(lines.join('\r\n') + '\r\n\r\n') }] });
    }
    const snap = await snapshot();
    const startedAt = Date.now();
    await wire.run(cases, { concurrency: 1, slotMs: 3000, sequential: true });
    const all = await judge(cases, 'over the failure limit', startedAt);
    expectNoBrokenPromises(all);
    expect(all.filter((v) => v.app === undefined).map(describeMsg)).toEqual([]);
    expect(new Set(all.map((v) => v.o.statuses.find((s) => s >= 200)))).toEqual(new Set([403]));
    const reasons = all.map((v) => v.o.reasons[v.o.statuses.findIndex((s) => s >= 200)]);
    expect(reasons.filter((x) => x === 'Too Many Failures').length).toBeGreaterThan(0);
    expect(reasons.filter((x) => x === 'Unknown User').length).toBeGreaterThan(0);
    expect(diff(snap, await snapshot())).toEqual([]);
  }, 30000);

  it("mutated requests signed with agent 1005's real password get final responses and change nobody's state or bindings but 1005's", async () => {
    const statesOf = async (): Promise<unknown> =>
      Object.fromEntries(await Promise.all(['1001', '1002', '1003', '1004'].map(async (a) => [a, { states: await app.engine.states('default', a), bindings: await app.registrar.bindings('default', a) }])));
    const others = await statesOf();
    const oplogBefore = await raw.xlen('ccs:{default}:oplog');
    // One nonce from a challenge, then rising nonce counts (the replay guard wants them rising).
    const probe = await UdpSip.open();
    let nonce: string;
    try {
      const challenge = await probe.request(drachtio.sipPort, registerRequest({ user: '1005', localPort: probe.port, serverPort: drachtio.sipPort, callId: `nonce-${randomBytes(4).toString('hex')}`, cseq: 1, branch: 's1' }));
      nonce = /nonce="([^"]+)"/.exec(challenge.headers)![1]!;
    } finally {
      probe.close();
    }
    let nc = 0;
    const sign = (method: string, uri: string): string => {
      nc++;
      const ncHex = nc.toString(16).padStart(8, '0');
      const cnonce = createHash('sha1').update(String(nc)).digest('hex').slice(0, 8);
      const response = digestResponse({ username: '1005', realm: target.realm, password: 'secret-1005', method, uri, nonce, nc: ncHex, cnonce, qop: 'auth' });
      return `Digest username="1005", realm="${target.realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=${ncHex}, cnonce="${cnonce}"`;
    };
    const cases = signedFuzz({ seed: SEED, count: Math.max(60, Math.round(COUNT / 12)), target, user: '1005', source: { ip: SIGNED, udpPort: wire.udpPort(SIGNED) }, firstN: 800000, sign });
    const startedAt = Date.now();
    await wire.run(cases, { concurrency: 1, slotMs: 1000, sequential: true });
    const all = await judge(cases, 'signed by agent 1005', startedAt);
    expectNoBrokenPromises(all);
    await wire.until(() => [...inviteSeen].every((id) => inviteSettled.has(id)), 10000);
    expect([...inviteSeen].filter((id) => !inviteSettled.has(id))).toEqual([]);
    expect(await statesOf()).toEqual(others);
    const entries = await raw.xrange('ccs:{default}:oplog', '-', '+');
    expect(new Set((entries.slice(oplogBefore) as [string, string[]][]).map((e) => parseOplog(e).agent))).toEqual(new Set(entries.length > oplogBefore ? ['1005'] : []));
    expect(crashes).toEqual([]);
    expectOnlyParseReports();
    expect(appErrors).toEqual([]);
  }, 60000 * Math.max(1, SCALE));

  it('a UDP INVITE whose Contact has no host (tel:, *) is left unanswered, because answering it in any way crashes drachtio-server; drachtio-server lives on', async () => {
    const probe = await UdpSip.open();
    try {
      for (const contact of ['<tel:+14155550100>', '*', '"Fuzz" <cid:abc@x>']) {
        const token = randomBytes(4).toString('hex');
        const invite = [
          `INVITE sip:*38@127.0.0.1:${drachtio.sipPort} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${probe.port};branch=z9hG4bK-${token};rport`,
          'Max-Forwards: 70',
          `From: <sip:1001@127.0.0.1>;tag=f${token}`,
          'To: <sip:*38@127.0.0.1>',
          `Call-ID: crash-${token}@fuzz`,
          'CSeq: 1 INVITE',
          `Contact: ${contact}`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        await expect(probe.request(drachtio.sipPort, invite, 1500)).rejects.toThrow(/no final response/);
        // drachtio-server still answers: a REGISTER is challenged.
        const after = await probe.request(drachtio.sipPort, registerRequest({ user: '1001', localPort: probe.port, serverPort: drachtio.sipPort, callId: `alive-${token}`, cseq: 1, branch: `a${token}` }));
        expect(after.status).toBe(401);
      }
    } finally {
      probe.close();
    }
    expect(drachtio.log()).not.toMatch(/SIGSEGV|Segmentation fault/);
    expect(crashes).toEqual([]);
  });

  it("a garbled drachtio connection (bytes out of step with drachtio's framing) makes ccswitch drop it instead of crashing; it reconnects and answers again", async () => {
    // drachtio-server 0.9.4 writes to its app connection with overlapping asynchronous writes
    // (src/client.cpp), so a large request can reach the app interleaved with other messages;
    // the proxy injects such a stream deterministically instead of waiting for the race.
    const garbled = (): boolean => appErrors.some((l) => l.includes('drachtio connection out of step'));
    const before = adminProxy.accepted;
    adminProxy.inject(Buffer.from('12#not|a|message\r\nxyz 99#garbage'));
    await wire.until(() => garbled() && adminProxy.accepted > before, 15000);
    expect(garbled()).toBe(true);
    expect(adminProxy.accepted).toBeGreaterThan(before);
    // ccswitch has reconnected by itself: a new REGISTER is challenged again (bounded: each try waits 1 s for its answer).
    const probe = await UdpSip.open();
    try {
      const deadline = Date.now() + 20000;
      let status = 0;
      for (let i = 0; status !== 401 && Date.now() < deadline; i++) {
        status = await probe
          .request(drachtio.sipPort, registerRequest({ user: '1001', localPort: probe.port, serverPort: drachtio.sipPort, callId: `after-${i}-${randomBytes(4).toString('hex')}`, cseq: 1, branch: `r${i}` }), 1000)
          .then((r) => r.status)
          .catch(() => 0);
      }
      expect(status).toBe(401);
    } finally {
      probe.close();
    }
    expect(crashes).toEqual([]);
  }, 60000);

  it('afterwards a real phone registers with digest, a feature code works, /healthz answers and the audit finds nothing', async () => {
    const sippTarget = `127.0.0.1:${drachtio.sipPort}`;
    const expectOk = (r: SippResult, what: string): void => {
      if (r.code !== 0) throw new Error(`${what}: sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
    };
    expectOk(await runSipp({ scenario: 'register.xml', target: sippTarget, service: 'x', user: '1001', password: 'secret-1001', status: 200 }), 'REGISTER');
    expect(await app.registrar.bindings('default', '1001')).toHaveLength(1);
    expectOk(await runSipp({ scenario: 'fac-ok.xml', target: sippTarget, service: '*38', user: '1002', password: 'secret-1002', replace: { __REASON__: 'logged in: ready in 1 queue' } }), '*38');
    expect((await app.engine.states('default', '1002')).map((v) => v.state)).toEqual(['ready']);
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    const h = (await health.json()) as { components: Record<string, { up: boolean }> };
    expect(h.components.redis?.up).toBe(true);
    expect(h.components.drachtio?.up).toBe(true);
    const audit = await fetch(`http://127.0.0.1:${httpPort}/callcenter/default/audit`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(audit.status).toBe(200);
    expect(await audit.json()).toEqual({ findings: [] });
    expect(crashes).toEqual([]);
  }, 30000);
});
