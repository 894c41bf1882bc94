/**
 * Hostile HTTP input (issue "faults", item 8): property-based tests over every REST route of a
 * real instance on a real Redis. The routes are enumerated from the OpenAPI document (and the
 * router is checked against it), so a new route is fuzzed without anyone listing it here.
 *
 * For each route, fast-check sends requests built from the route's own schemas and then made
 * hostile: wrong JSON types, huge strings, control and non-BMP characters, prototype keys,
 * deep nesting, arrays for objects, out-of-range and NaN-like numbers, empty and invalid JSON,
 * other content types, odd path segments (encoded slashes and dots, invalid percent-encoding,
 * long and unknown ids), repeated and array query parameters, and tokens of every role.
 *
 * Properties:
 * 1. the status is one the OpenAPI document lists for that route, never a 5xx other than
 *    those listed (503), and every error is JSON `{error: <string>, message: <string>}`;
 * 2. a refused request (4xx/5xx) and any GET leave the call center's Redis state exactly as
 *    it was (every key's DUMP, the event stream without its periodic `queue.stats` entries);
 * 3. a scoped token outside its scope is refused with 403 `forbidden` (or the 4xx of input
 *    refused before the scope check) and changes nothing.
 *
 * Runs are reproducible: seed `FUZZ_SEED` (default 424242), runs per property multiplied by
 * `FUZZ_SCALE` (default 1; `FUZZ_SCALE=20` for a long run).
 */
import http from 'node:http';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { Leg } from '../../app/sip/leg';
import { LegKind, LegState } from '../../lib/conversation/model';
import { FakeMediaServer } from '../../media/fake';
import { startApp, type RunningApp } from '../helpers/app';
import { standInDialog } from '../helpers/dialog';
import { startRedis, type RedisServer } from '../helpers/redisServer';
import { API_TOKENS, TOKENS, type Holder } from '../helpers/tokens';

const SEED = Number(process.env.FUZZ_SEED ?? 424242);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (base: number): number => Math.max(1, Math.round(base * SCALE));
/** Small, so that oversize bodies are cheap to send. */
const BODY_LIMIT = 8192;

let server: RedisServer;
let a: RunningApp;
let raw: Redis;
const media = new FakeMediaServer();

beforeAll(async () => {
  server = await startRedis();
  raw = new Redis(server.url);
  a = await startApp({
    redisUrl: server.url,
    media,
    apiTokens: API_TOKENS,
    bodyLimitBytes: BODY_LIMIT,
    // Wrong tokens are part of the input: the brute-force limit must not block the run.
    http: { authFailureLimit: { count: 100000, seconds: 1 } },
  });
  await seed();
});
afterAll(async () => {
  connection.destroy();
  await a.app.hub.endAll('test over');
  await a.close();
  raw.disconnect();
  await server.stop();
});

// --- The call center every request starts from. ---------------------------------------------

/** Placeholder of the live conversation's id (random per seeding) in generated requests. */
const LIVE = '@live';
let liveId = '';
/** Set when a request may have changed state: the next one starts from a fresh seed. */
let dirty = false;

/**
 * Agents logged in (1001-1003 Ready in 8000, 1004 Not Ready in 8001), a live conversation on
 * this instance (caller + agent 1001, fake media), two of a dead instance (agents 1002 and
 * 1004 in queue 8000; agent 1004 in queue 8001), one recorded as this instance's but not held by it (agent 1003), and a
 * queued task of the dead instance offered to agent 1002 (registered) under a long lease.
 */
async function seed(): Promise<void> {
  await a.app.hub.endAll('reseed');
  await raw.flushall();
  const { engine, conversations, tasks, hub } = a.app;
  for (const ag of ['1001', '1002', '1003', '1004']) await engine.login('default', ag);
  await engine.notReady('default', '1004', { reason: 4 });
  await engine.login('other', '2001');
  const conv = await hub.open({ cc: 'default', queue: '8000', task: 'task-live' });
  await conv.add({ kind: LegKind.Caller, ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
  await conv.add({ kind: LegKind.Agent, agent: '1001', ep: await media.createEndpoint(), sip: new Leg(standInDialog()), mode: 1 });
  liveId = conv.id;
  await conversations.create('default', { id: 'conv-ghost', owner: 'ghost-instance', queue: '8000' });
  await conversations.join('default', 'conv-ghost', { leg: 'leg-ghost-1002', kind: LegKind.Agent, agent: '1002', mode: 1, state: LegState.Up });
  await conversations.join('default', 'conv-ghost', { leg: 'leg-ghost-1004', kind: LegKind.Agent, agent: '1004', mode: 1, state: LegState.Up });
  await conversations.create('default', { id: 'conv-8001', owner: 'ghost-instance', queue: '8001' });
  await conversations.join('default', 'conv-8001', { leg: 'leg-8001-1004', kind: LegKind.Agent, agent: '1004', mode: 1, state: LegState.Up });
  await conversations.create('default', { id: 'conv-local', owner: hub.owner });
  await conversations.join('default', 'conv-local', { leg: 'leg-local-1003', kind: LegKind.Agent, agent: '1003', mode: 1, state: LegState.Up });
  await a.app.registrar.register('default', {
    agent: '1002', contacts: [{ uri: 'sip:1002@127.0.0.1:5099', expires: 3600 }], callId: 'reg-1002', cseq: 1, source: '127.0.0.1:5099', transport: 'udp', server: 'test', userAgent: 'test',
  });
  await tasks.enqueue('default', { id: 't-ghost', queue: '8000', priority: 0, callId: 'cid-ghost', caller: '+4930123', owner: 'ghost-instance', maxWaitMs: 3_600_000 });
  const r = await tasks.reserve('default', 't-ghost', '8000', ['1002'], 1, 3_600_000);
  if (!Array.isArray(r) || r.length !== 1) throw new Error(`seed: could not reserve t-ghost for 1002: ${JSON.stringify(r)}`);
  dirty = false;
}

/** Keys that change by themselves or are caches, not call-center state (`:history`: the stats timer's per-minute samples). */
const VOLATILE = [/:presence:/, /:stats:last$/, /:history$/, /:events$/, /:events:seq$/, /^ccs:authfail:/, /:idem:/, /:deadlines:claims$/, /:deadlines:token$/];

/** Every key of the call centers (DUMP) and the event stream without its periodic `queue.stats`. */
async function snapshot(): Promise<Map<string, string>> {
  const keys = (await raw.keys('*')).filter((k) => !VOLATILE.some((re) => re.test(k))).sort();
  const out = new Map<string, string>();
  if (keys.length > 0) {
    const p = raw.pipeline();
    for (const k of keys) p.dumpBuffer(k);
    const dumps = (await p.exec()) ?? [];
    keys.forEach((k, i) => out.set(k, (dumps[i]?.[1] as Buffer | null)?.toString('hex') ?? 'gone'));
  }
  for (const cc of ['default', 'other']) {
    const events = (await raw.xrange(`ccs:{${cc}}:events`, '-', '+')) as [string, string[]][];
    out.set(`events of ${cc}`, JSON.stringify(events.filter(([, f]) => f[1] !== 'queue.stats')));
  }
  return out;
}

function differences(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k)).map((k) => `${k}: ${before.has(k) ? (after.has(k) ? 'changed' : 'deleted') : 'created'}`);
}

// --- The routes, from the OpenAPI document and the router. ---------------------------------

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  anyOf?: JsonSchema[];
}
interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: JsonSchema;
}
interface DocRoute {
  method: 'GET' | 'POST';
  /** OpenAPI form: `/callcenter/{cc}/agent/{agent}`. */
  path: string;
  statuses: Set<number>;
  params: Param[];
  body: JsonSchema | undefined;
}

interface OpenApiDoc {
  paths: Record<string, Record<string, { parameters?: Param[]; responses?: Record<string, unknown>; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>>;
}

function docRoutes(): DocRoute[] {
  const doc = a.app.http.swagger() as unknown as OpenApiDoc;
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase() as 'GET' | 'POST',
      path,
      statuses: new Set(Object.keys(op.responses ?? {}).map(Number)),
      params: op.parameters ?? [],
      body: op.requestBody?.content?.['application/json']?.schema,
    })),
  );
}

/** `METHOD /path` of every route the router serves (`printRoutes`), the documentation UI aside. */
function routerRoutes(): string[] {
  const lines = a.app.http.printRoutes({ commonPrefix: false }).split('\n').filter((l) => l.trim() !== '');
  const stack: string[] = [];
  const out: string[] = [];
  for (const line of lines) {
    const m = /^((?:[│ ] {3})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (m === null) throw new Error(`cannot read route line ${JSON.stringify(line)}`);
    const depth = m[1]!.length / 4;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (method === '' || method === 'HEAD' || path.startsWith('/docs')) continue;
      // Path parameters as OpenAPI writes them; a trailing wildcard (the UI's files) is `{*}`.
      out.push(`${method} ${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\/?\*$/, '/{*}')}`);
    }
  }
  return out.sort();
}

// --- Hostile values. -------------------------------------------------------------------------

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];
const protoKey = fc.constantFrom(...PROTO_KEYS);
const nanLike = fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '-0', '0x1F', '1_000', ' 1', '1 ', '+1', '1.0', '1.5', '', 'null', 'undefined', 'true', '[]', '{}', '9007199254740993', '99999999999999999999999', '٣', '１２');
const oddNumber = fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER, -1, 0, -0, 0.5, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 1e21, 5e-324);
const controlString = fc.string({ unit: fc.integer({ min: 0, max: 31 }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 });
const unicodeString = fc.string({ unit: 'binary', maxLength: 24 });
const hugeString = fc.tuple(fc.integer({ min: 65, max: 3 * BODY_LIMIT }), fc.constantFrom('x', '9', 'é', '😀', '\u0000', '<')).map(([n, c]) => c.repeat(n));

/** Objects with own keys only (Object.fromEntries never calls the `__proto__` setter). */
const objectOf = (entries: [string, unknown][]): Record<string, unknown> => Object.fromEntries(entries);

/** Any JSON value in a wrong place: wrong types, odd numbers, odd strings, nesting. */
const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 2, arbitrary: fc.boolean() },
    { weight: 3, arbitrary: oddNumber },
    { weight: 2, arbitrary: fc.double() },
    { weight: 2, arbitrary: fc.integer() },
    { weight: 3, arbitrary: nanLike },
    { weight: 2, arbitrary: controlString },
    { weight: 3, arbitrary: unicodeString },
    { weight: 1, arbitrary: hugeString },
    { weight: 3, arbitrary: protoKey },
    { weight: 2, arbitrary: fc.array(tie('v'), { maxLength: 3 }) },
    { weight: 2, arbitrary: fc.array(fc.tuple(fc.oneof(protoKey, fc.string({ maxLength: 6 })), tie('v')), { maxLength: 3 }).map(objectOf) },
  ),
})).v;

// --- Values a route's fields are meant to hold (so that requests also get past validation). ---

const AGENTS = ['1001', '1001', '1002', '1002', '1003', '1004', '1005', '2001', '9999'];
const CONVERSATIONS = [LIVE, LIVE, 'conv-ghost', 'conv-8001', 'conv-local', 'conv-none'];
const idLike = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
/** Mostly one of the known values, sometimes any id. */
const knownOr = (known: unknown[], other: fc.Arbitrary<unknown> = idLike): fc.Arbitrary<unknown> => fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: other });
const enqueueXml = fc.oneof(
  fc.constantFrom(
    '<enqueue queue="8000"/>',
    '<enqueue queue="8000" priority="5" timeout="30"><agent id="1002"/><skill name="billing" min="3"/></enqueue>',
    '<queue queue="8001"><agent id="1004"/></queue>',
    '<enqueue queue="9000"/>',
    '<enqueue queue="8000"><agent id="__proto__"/></enqueue>',
    '<enqueue queue="8000"><skill name="constructor" min="0" max="100"/></enqueue>',
    '<enqueue queue="8000" priority="1e400"/>',
    '<enqueue queue="8000" timeout="-1"/>',
    '<enqueue queue="8000" timeout="99999999999999999999"/>',
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><enqueue queue="&b;"/>',
    '<!DOCTYPE x SYSTEM "file:///etc/passwd"><enqueue queue="8000"/>',
    '<enqueue queue="8000"><![CDATA[x]]></enqueue>',
    '<enqueue queue="8000" queue="8001"/>',
    '<enqueue queue="8000">text</enqueue>',
    '<enqueue queue="&#x38;000"/>',
    '<enqueue',
    '',
  ),
  fc.array(fc.constantFrom('<agent id="1001"/>', '<agent id="1002"/>', '<skill name="x" min="1"/>', '<!-- c -->', '<agent id="9999"/>'), { maxLength: 80 }).map((c) => `<enqueue queue="8000">${c.join('')}</enqueue>`),
  fc.integer({ min: 1, max: 12 }).map((n) => `${'<enqueue queue="8000">'.repeat(n)}${'</enqueue>'.repeat(n)}`),
);
const phone = fc.oneof(fc.stringMatching(/^\+?[0-9*#]{1,32}$/), fc.constantFrom('5551234', '+4930123', '*63', 'sip:x@y', '5551234;user=phone', '0'.repeat(33)));

/** A value of the field `name` as the schema means it, or a nearby one. */
function meant(name: string, s: JsonSchema): fc.Arbitrary<unknown> {
  if (name === 'conversation_id' || name === 'id') return knownOr(CONVERSATIONS);
  if (name === 'queue_task_id') return knownOr(['t-ghost', 't-ghost', 'task-live', 't-none']);
  if (name === 'agent') return knownOr(AGENTS);
  if (name === 'supervisor' || name === 'sup') return knownOr(['s1', 's1', 's2', 's3']);
  if (name === 'cc') return fc.oneof({ weight: 12, arbitrary: fc.constant('default') }, { weight: 1, arbitrary: fc.constantFrom('other', 'nowhere') });
  if (name === 'q') return fc.constantFrom('8000', '8001', '9000', '80');
  if (name === 'enqueue' || (name === 'queue' && s.maxLength === 8192)) return enqueueXml;
  if (name === 'queue') return fc.constantFrom('8000', '8001', '9000', '80', '0000000000000000');
  if (name === 'to' || name === 'from') return phone;
  if (name === 'reason') return knownOr([1, 2, 3, 4, 7, 200, 250, 256, 257, 258, 264], fc.integer({ min: -1, max: 300 }));
  if (name === 'idempotency-key') return fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,128}$/), fc.constantFrom('k-1', 'k-1', 'k-2'));
  if (s.enum !== undefined) return fc.constantFrom(...s.enum);
  if (s.anyOf !== undefined) return fc.oneof(...s.anyOf.map((x) => meant(name, x)));
  if (s.type === 'integer') {
    const min = s.minimum ?? -10;
    const max = s.maximum ?? Math.max(min + 100, 100000);
    // In range, at its edges, beyond what a stream id or a double holds, and numeric text
    // (a query or form value is text: `1e400` coerces to Infinity).
    return fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min, max }) },
      { weight: 2, arbitrary: fc.integer({ min: min - 2, max: min + 2 }) },
      { weight: 2, arbitrary: fc.integer({ min: max - 2, max: max + 2 }) },
      { weight: 2, arbitrary: oddNumber },
      { weight: 2, arbitrary: nanLike },
    );
  }
  if (s.type === 'string') {
    if (s.pattern !== undefined) return fc.stringMatching(new RegExp(s.pattern));
    return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 80) });
  }
  return hostileValue;
}

/** Mostly what the field means, sometimes anything. */
const fieldValue = (name: string, s: JsonSchema): fc.Arbitrary<unknown> => fc.oneof({ weight: 8, arbitrary: meant(name, s) }, { weight: 1, arbitrary: hostileValue });

/** A body object after the schema: fields present or not, some wrong, sometimes extra keys. */
function bodyObject(s: JsonSchema | undefined): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.entries(s?.properties ?? {});
  const required = new Set(s?.required ?? []);
  const fields = props.map(([name, p]) =>
    fc.oneof({ weight: required.has(name) ? 12 : 1, arbitrary: fieldValue(name, p).map((v): [string, unknown] => [name, v]) }, { weight: 1, arbitrary: fc.constant(undefined) }),
  );
  const extra = fc.oneof({ weight: 10, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.oneof(protoKey, fc.string({ maxLength: 8 })), hostileValue), { minLength: 1, maxLength: 2 }) });
  return fc.tuple(fc.tuple(...fields), extra).map(([fs, ex]) => objectOf([...fs.filter((f): f is [string, unknown] => f !== undefined), ...ex]));
}

// --- Requests. -------------------------------------------------------------------------------

type Who = Holder | 'none' | 'wrong' | 'malformed';
interface Req {
  method: 'GET' | 'POST';
  url: string;
  who: Who;
  headers: Record<string, string>;
  payload: string | undefined;
}

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;charset=utf-16', 'application/json; foo=bar'];
const OTHER_TYPES = ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/jsonx', 'json', 'application/*', ';;', 'text/html; charset=utf-8', 'application/x-www-form-urlencoded; charset=latin1'];
const INVALID_JSON = ['{', '}', '{"a":}', "{'queue':'8000'}", '{"queue":"8000",}', 'NaN', 'undefined', '\u0000', '\ufeff{}', '{"a":1}{"b":2}', '"unterminated', '[1,2', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '{"queue":"8000","queue":"8001"}', '{"a":"\\ud800"}', '{"a":"\\u00"}', '01', '-', '1e', 'tru'];

/** JSON.stringify that never throws (lone surrogates are escaped by it anyway). */
const json = (v: unknown): string => JSON.stringify(v) ?? 'null';

/** Form-encodes an object; nested values as JSON or bracket keys. */
function formOf(o: Record<string, unknown>, brackets: boolean): string {
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (brackets && v !== null && typeof v === 'object') {
      for (const [k2, v2] of Object.entries(v)) pairs.push(`${encodeURIComponent(k)}[${encodeURIComponent(k2)}]=${encodeURIComponent(typeof v2 === 'string' ? v2 : json(v2))}`);
    } else pairs.push(`${encodeURIComponent(k)}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v) ?? '')}`);
  }
  return pairs.join('&');
}

/** The body of a POST: [content-type or none, payload or none]. */
function body(s: JsonSchema | undefined): fc.Arbitrary<[string | undefined, string | undefined]> {
  const obj = bodyObject(s);
  return fc.oneof(
    { weight: 24, arbitrary: fc.tuple(fc.constantFrom(...JSON_TYPES), obj.map(json)) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...JSON_TYPES), hostileValue.map(json)) },
    { weight: 2, arbitrary: fc.tuple(fc.constant('application/x-www-form-urlencoded'), fc.tuple(obj, fc.boolean()).map(([o, b]) => formOf(o, b))) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('application/x-www-form-urlencoded'), fc.constantFrom('x', '%zz=1', 'queue=%E0%A4%A', 'queue=8000&queue=8001', '__proto__[queue]=8000', 'constructor[prototype][x]=1', '=', '&&&', 'reason=1e400', 'reason=NaN', 'a=1;b=2')) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...JSON_TYPES), fc.constantFrom(...INVALID_JSON)) },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.constantFrom(...JSON_TYPES),
        fc.tuple(fc.integer({ min: 2, max: 4000 }), fc.constantFrom('{"a":', '[')).map(([d, open]) => open.repeat(d) + (open === '[' ? '' : '1') + (open === '[' ? ']' : '}').repeat(d)),
      ),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...JSON_TYPES), fc.constantFrom('', ' ', '\n\t ')) },
    { weight: 1, arbitrary: fc.constant<[string | undefined, string | undefined]>([undefined, undefined]) },
    { weight: 1, arbitrary: fc.tuple(fc.constant(undefined), obj.map(json)) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...OTHER_TYPES), fc.oneof(obj.map(json), fc.string({ maxLength: 40 }))) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...JSON_TYPES, 'application/x-www-form-urlencoded', 'text/plain'), hugeString.map((h) => json({ queue: h, conversation_id: h }))) },
  );
}

/** A path segment: mostly what the parameter names, else odd. */
function segment(name: string, s: JsonSchema): fc.Arbitrary<string> {
  const odd = fc.oneof(
    fc.constantFrom('%2F', 'a%2Fb', '..', '.', '%2e%2e', '%2E', '%00', '%0A', '%20', '%zz', '%', '%E0%A4%A', '%C0%AE', '%FF', '%252F', ';', ',', '~', '*', '$', '%EF%BB%BF', '%E2%80%8B', '%F0%9F%98%80', ...PROTO_KEYS, '0', '-1', '1e400', 'NaN', 'null', 'undefined'),
    fc.integer({ min: 60, max: 600 }).map((n) => 'a'.repeat(n)),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(encodeURIComponent),
    idLike,
  );
  const known = meant(name, s).map((v) => (typeof v === 'string' && v !== LIVE ? encodeURIComponent(v) : String(v)));
  return fc.oneof({ weight: 10, arbitrary: known }, { weight: 1, arbitrary: odd });
}

/** Text as a careless client puts it in a URL: only what Node's client refuses to send is encoded (DEL goes raw). */
const rawly = (t: string): string => t.replace(/[^\x21-\x7f]|#/gu, (c) => (/[\ud800-\udfff]/.test(c) ? '%EF%BF%BD' : encodeURIComponent(c)));

/** A query string: the route's parameters (right, wrong, repeated, as arrays) and others. */
function query(params: Param[]): fc.Arbitrary<string> {
  const known = params.filter((p) => p.in === 'query');
  const odd = fc.tuple(fc.oneof(protoKey, fc.constantFrom('agent[]', 'limit[0]', 'since[]', 'a[b]', '', 'x')), hostileValue);
  const pair = fc
    .tuple(fc.oneof(...known.map((p) => ({ weight: 6, arbitrary: fc.tuple(fc.constant(p.name), fieldValue(p.name, p.schema)) })), { weight: 1, arbitrary: odd }), fc.nat(3))
    .map(([[k, v], how]) => {
      const text = typeof v === 'string' ? v : json(v);
      // Mostly encoded as a browser would; sometimes raw (quotes, braces, stray `%`, `&`, `=`).
      return how > 0 ? `${encodeURIComponent(k)}=${encodeURIComponent(text)}` : `${rawly(k)}=${rawly(text)}`;
    });
  return fc.oneof({ weight: known.length > 0 ? 2 : 12, arbitrary: fc.constant('') }, { weight: 3, arbitrary: fc.array(pair, { minLength: 1, maxLength: 4 }).map((ps) => `?${ps.join('&')}`) }, { weight: 1, arbitrary: fc.constantFrom('?', '?&', '?%zz', '?a=%zz', '?=', '?agent=1001&agent=1002', '?limit=5&limit=5') });
}

const TOKEN_WEIGHTS: [Who, number][] = [
  ['admin', 40],
  ['agent1001', 2],
  ['s1', 2],
  ['q8001', 1],
  ['other', 1],
  ['none', 1],
  ['wrong', 1],
  ['malformed', 1],
];
const who = fc.oneof(...TOKEN_WEIGHTS.map(([w, weight]) => ({ weight, arbitrary: fc.constant(w) })));

function authorization(w: Who): Record<string, string> {
  if (w === 'none') return {};
  if (w === 'wrong') return { authorization: 'Bearer not-a-configured-token-000' };
  if (w === 'malformed') return { authorization: 'Basic YWRtaW46YWRtaW4=' };
  return { authorization: `Bearer ${TOKENS[w]}` };
}

/** Requests to `route`; `fixed` pins path parameters, `tokens` the token holders. */
function requests(route: DocRoute, o: { fixed?: Record<string, string>; tokens?: fc.Arbitrary<Who> } = {}): fc.Arbitrary<Req> {
  const pathParams = route.params.filter((p) => p.in === 'path');
  const segments = pathParams.map((p) => (o.fixed?.[p.name] !== undefined ? fc.constant(o.fixed[p.name]!) : segment(p.name, p.schema)));
  const idem = route.params.some((p) => p.in === 'header' && p.name === 'idempotency-key')
    ? fc.option(fc.oneof({ weight: 9, arbitrary: meant('idempotency-key', {}).map(String) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', ' ', 'a b', '\t'), fc.integer({ min: 129, max: 400 }).map((n) => 'k'.repeat(n)), fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 8 })) }), { nil: undefined, freq: 2 })
    : fc.constant(undefined);
  const bodies: fc.Arbitrary<[string | undefined, string | undefined]> = route.method === 'POST' ? body(route.body) : fc.constant([undefined, undefined]);
  return fc.tuple(fc.tuple(...segments), query(route.params), o.tokens ?? who, idem, bodies).map(([segs, qs, w, key, [contentType, payload]]) => {
    let i = 0;
    const path = route.path.replace(/\{[^}]+\}/g, () => segs[i++]!);
    const req: Req = {
      method: route.method,
      url: path + qs,
      who: w,
      headers: { ...authorization(w), ...(key === undefined ? {} : { 'idempotency-key': key }), ...(contentType === undefined ? {} : { 'content-type': contentType }) },
      payload,
    };
    // Counterexamples stay readable: long strings are shown by their start and length.
    return Object.assign(req, { [fc.toStringMethod]: () => JSON.stringify(req, (_k, v: unknown) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 120)}…(${v.length} chars)` : v)) });
  });
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
  body: unknown;
}

/** Keeps one connection open across requests (a fresh TCP connection per run would dominate). */
const connection = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** Sends `r` as is (no URL normalisation, unlike fetch) over HTTP/1.1. */
function send(r: Req): Promise<Answer> {
  const payload = r.payload === undefined ? undefined : Buffer.from(r.payload.split(LIVE).join(liveId), 'utf8');
  const { port } = new URL(a.base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: Number(port), method: r.method, path: r.url.split(LIVE).join(liveId), agent: connection, headers: { ...r.headers, ...(payload === undefined ? {} : { 'content-length': String(payload.length) }) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const shown = (ans: Answer): string => `${ans.status} ${ans.text.slice(0, 300)}`;

/**
 * Known and not fixable from the HTTP layer: an instance without a drachtio-server registers
 * no `xferAgent`, `offer.reject` or `offer.forward` executor (app/createApp.ts lists the other
 * call operations as 503 unavailable, not these), so such an operation on a conversation or
 * task this instance holds is 422 `unknown command …`. The `it.failing` below turns red once
 * app/createApp.ts is fixed: then delete this exemption and that test.
 */
const unknownCommand = (ans: Answer): boolean => ans.status === 422 && /^unknown command (xferAgent|offer\.reject|offer\.forward)$/.test((ans.body as { message?: string } | undefined)?.message ?? '');

/** Property 1: a documented status, never an undocumented 5xx, errors as `{error, message}`. */
function checkAnswer(route: DocRoute, ans: Answer): void {
  if (unknownCommand(ans)) return;
  if (!route.statuses.has(ans.status)) throw new Error(`${route.method} ${route.path} answered ${shown(ans)}; its documented statuses are ${[...route.statuses].sort().join(', ')}`);
  if (ans.status >= 500 && ans.status !== 503) throw new Error(`${route.method} ${route.path} failed: ${shown(ans)}`);
  if (ans.status >= 400) {
    const b = ans.body as { error?: unknown; message?: unknown } | undefined;
    if (!/^application\/json/.test(ans.contentType) || typeof b?.error !== 'string' || typeof b.message !== 'string') throw new Error(`${route.method} ${route.path}: an error that is not {error, message} JSON: ${shown(ans)}`);
    if (b.error === 'internal') throw new Error(`${route.method} ${route.path}: internal error: ${shown(ans)}`);
  }
}

/** Sends `r`, checks property 1, and property 2 when the request is refused or only reads. */
async function exercise(route: DocRoute, r: Req): Promise<Answer> {
  if (dirty) await seed();
  const before = await snapshot();
  const ans = await send(r);
  checkAnswer(route, ans);
  const mayChange = route.method === 'POST' && ans.status < 400;
  if (mayChange) {
    dirty = true;
    return ans;
  }
  const changed = differences(before, await snapshot());
  if (changed.length > 0) {
    dirty = true;
    throw new Error(`${r.method} ${r.url} answered ${shown(ans)} and changed ${changed.join('; ')}`);
  }
  return ans;
}

const ROUTES: DocRoute[] = [];
const key = (r: { method: string; path: string }): string => `${r.method} ${r.path}`;

describe('hostile HTTP input', () => {
  beforeAll(() => {
    ROUTES.push(...docRoutes());
  });

  it('every route the server serves is in the OpenAPI document, with its statuses, and all of them are fuzzed', () => {
    const documented = ROUTES.map(key).sort();
    expect(documented.length).toBeGreaterThanOrEqual(30);
    expect(routerRoutes()).toEqual(documented);
    // Each route documents how it succeeds (the event stream: its upgrade) and that it can refuse a request that does not parse.
    for (const r of ROUTES) expect([key(r), [...r.statuses].some((st) => st >= 100 && st < 300), r.statuses.has(400)]).toEqual([key(r), true, true]);
  });

  it('every route answers hostile input only with its documented statuses, never 500, and changes nothing when it refuses or reads', async () => {
    // One property per route, in document order, so that each gets its share of runs.
    let total = 0;
    for (const [i, route] of ROUTES.entries()) {
      await fc.assert(
        fc.asyncProperty(requests(route), async (r) => {
          await exercise(route, r);
        }),
        // Query parameters get more runs: they are the only input of their GET routes.
        { seed: SEED + i, numRuns: runs(route.method === 'POST' ? 60 : route.params.some((p) => p.in === 'query') ? 150 : 40) },
      );
      total += 1;
    }
    expect(total).toBe(ROUTES.length);
  }, 240_000 * Math.max(1, SCALE));

  it('a scoped token outside its scope is refused with 403 forbidden (or the 4xx of input refused before the scope check) and changes nothing', async () => {
    let pairs = 0;
    for (const [i, c] of scopeCases().entries()) {
      await fc.assert(
        fc.asyncProperty(requests(c.route, { fixed: c.fixed, tokens: fc.constant(c.holder) }), async (r) => {
          const ans = await exercise(c.route, r);
          const allowed = c.holder === 'other' ? [400, 403, 431] : [400, 403, 413, 415, 431];
          if (!allowed.includes(ans.status)) throw new Error(`${c.holder} outside its scope: ${r.method} ${r.url} answered ${shown(ans)}; expected one of ${allowed.join(', ')}`);
          const error = (ans.body as { error: string }).error;
          if (ans.status === 403 && error !== 'forbidden') throw new Error(`${c.holder} outside its scope: ${r.method} ${r.url} answered ${shown(ans)}; expected forbidden`);
        }),
        { seed: SEED + 1000 + i, numRuns: runs(8) },
      );
      pairs += 1;
    }
    expect(pairs).toBeGreaterThanOrEqual(80);
  }, 240_000 * Math.max(1, SCALE));
});

/**
 * Pairs of a scoped token and a route with path parameters pinned outside its scope (DESIGN.md
 * 12): agent 1001 acting on agent 1002, as supervisor s1, on queue 8001 or a conversation it has
 * no leg in; supervisor s1 on agent 1004 (queue 8001 only), as supervisor s2, on queue 8001 or
 * conversation conv-8001; both on the admin-only routes. A token of call center `other` is
 * outside on every route of call center `default`.
 */
function scopeCases(): { holder: Holder; route: DocRoute; fixed: Record<string, string> }[] {
  const OUTSIDE: Partial<Record<Holder, { params: Record<string, string>; ccOnly: string[] }>> = {
    agent1001: { params: { cc: 'default', agent: '1002', sup: 's1', q: '8001', id: 'conv-ghost' }, ccOnly: ['trunks', 'audit', 'audit/repair', 'supervisors'] },
    s1: { params: { cc: 'default', agent: '1004', sup: 's2', q: '8001', id: 'conv-8001' }, ccOnly: ['trunks', 'audit', 'audit/repair'] },
  };
  const out: { holder: Holder; route: DocRoute; fixed: Record<string, string> }[] = [];
  for (const route of ROUTES) {
    if (!route.path.startsWith('/callcenter/{cc}/')) continue;
    out.push({ holder: 'other', route, fixed: { cc: 'default' } });
    const names = route.params.filter((p) => p.in === 'path').map((p) => p.name);
    for (const holder of ['agent1001', 's1'] as const) {
      const o = OUTSIDE[holder]!;
      const ccOnly = names.length === 1 && o.ccOnly.some((tail) => route.path === `/callcenter/{cc}/${tail}`);
      if (names.length > 1 || ccOnly) out.push({ holder, route, fixed: Object.fromEntries(names.map((n) => [n, o.params[n]!])) });
    }
  }
  return out;
}

/** One hostile request, as the properties send it (admin token unless told). */
const one = (method: 'GET' | 'POST', url: string, o: { contentType?: string; payload?: string; who?: Who } = {}): Req => ({
  method,
  url,
  who: o.who ?? 'admin',
  headers: { ...authorization(o.who ?? 'admin'), ...(o.contentType === undefined ? {} : { 'content-type': o.contentType }) },
  payload: o.payload,
});

/** The documented route `method path` (OpenAPI form). */
const route = (method: string, path: string): DocRoute => {
  const r = ROUTES.find((x) => key(x) === `${method} ${path}`);
  if (r === undefined) throw new Error(`no documented route ${method} ${path}`);
  return r;
};

describe('hostile HTTP input: counterexamples found by the properties', () => {
  it('an oplog `since` beyond any stream id (1e400, which coerces to Infinity, 1e23 or 1e+308) is 400 bad_request, not a Redis error (500)', async () => {
    for (const since of ['1e400', '99999999999999999999999', '1e%2B308']) {
      const ans = await exercise(route('GET', '/callcenter/{cc}/oplog'), one('GET', `/callcenter/default/oplog?since=${since}`));
      expect([ans.status, (ans.body as { error: string }).error]).toEqual([400, 'bad_request']);
    }
    const last = await exercise(route('GET', '/callcenter/{cc}/oplog'), one('GET', `/callcenter/default/oplog?since=${Number.MAX_SAFE_INTEGER}`));
    expect([last.status, last.body]).toEqual([200, { entries: [], next: Number.MAX_SAFE_INTEGER }]);
  });

  it('a query or form number that coerces to Infinity (1e400) is 400 bad_request, never let past a maximum (limit=Infinity) or into a reason', async () => {
    for (const url of ['/callcenter/default/oplog?limit=Infinity', '/callcenter/default/oplog?limit=1e400', '/callcenter/default/oplog?since=-Infinity']) {
      const ans = await exercise(route('GET', '/callcenter/{cc}/oplog'), one('GET', url));
      expect([url, ans.status, ans.body]).toEqual([url, 400, { error: 'bad_request', message: expect.stringMatching(/^querystring\/(limit|since) must be/) }]);
    }
    const form = await exercise(route('POST', '/callcenter/{cc}/agent/{agent}/not_ready'), one('POST', '/callcenter/default/agent/1001/not_ready', { contentType: 'application/x-www-form-urlencoded', payload: 'reason=1e400' }));
    expect([form.status, form.body]).toEqual([400, { error: 'bad_request', message: 'body/reason must be a finite number' }]);
  });

  it('invalid percent-encoding in a path is 400 bad_request in the API error shape (not Fastify\'s own body)', async () => {
    for (const url of ['/callcenter/%zz/agents', '/callcenter/default/agent/%E0%A4%A', '/callcenter/default/conversation/%C0%AE']) {
      const ans = await send(one('GET', url));
      expect([ans.status, ans.body]).toEqual([400, { error: 'bad_request', message: expect.stringMatching(/not a valid url component/) }]);
    }
  });

  it('a path parameter over the router\'s 100 characters is 400 bad_request like one over the schema\'s 64 (not an undocumented 414)', async () => {
    for (const n of [65, 101, 600]) {
      const ans = await exercise(route('GET', '/callcenter/{cc}/agent/{agent}'), one('GET', `/callcenter/default/agent/${'a'.repeat(n)}`));
      expect([ans.status, (ans.body as { error: string }).error]).toEqual([400, 'bad_request']);
    }
  });

  it('a request line Node cannot parse is 400 bad_request JSON, and one over the header limit 431 headers_too_large, both documented', async () => {
    const bad = await exercise(route('GET', '/healthz'), one('GET', '/healthz?__proto__={"":"\x7f"}'));
    expect([bad.status, bad.body]).toEqual([400, { error: 'bad_request', message: expect.any(String) }]);
    const huge = await exercise(route('GET', '/callcenter/{cc}/oplog'), one('GET', `/callcenter/default/oplog?agent=${'x'.repeat(20000)}`));
    expect([huge.status, huge.body]).toEqual([431, { error: 'headers_too_large', message: expect.any(String) }]);
  });

  it('a plain GET of the event stream is 426 upgrade_required JSON (not 404 with an empty body); a token of another call center 403', async () => {
    const ans = await exercise(route('GET', '/callcenter/{cc}/events'), one('GET', '/callcenter/default/events'));
    expect([ans.status, ans.body]).toEqual([426, { error: 'upgrade_required', message: expect.any(String) }]);
    const other = await exercise(route('GET', '/callcenter/{cc}/events'), one('GET', '/callcenter/%2F/events', { who: 'agent1001' }));
    expect([other.status, (other.body as { error: string }).error]).toEqual([403, 'forbidden']);
  });

  it('an admin asking a supervisor to monitor an agent outside its queues gets the documented 422 invalid_request', async () => {
    const ans = await exercise(route('POST', '/callcenter/{cc}/supervisor/{sup}/monitor'), one('POST', '/callcenter/default/supervisor/s1/monitor', { contentType: 'application/json', payload: '{"agent":"1005","mode":"intercept"}' }));
    expect([ans.status, (ans.body as { error: string }).error]).toEqual([422, 'invalid_request']);
  });

  it('the lists, the consultation routes and monitor/stop document their 200; every POST its 413 and 415', () => {
    for (const [m, p] of [
      ['GET', '/callcenter/{cc}/agents'],
      ['GET', '/callcenter/{cc}/queues'],
      ['GET', '/callcenter/{cc}/queue/{q}'],
      ['GET', '/callcenter/{cc}/conversations'],
      ['POST', '/callcenter/{cc}/agent/{agent}/consult'],
      ['POST', '/callcenter/{cc}/agent/{agent}/consult_complete'],
      ['POST', '/callcenter/{cc}/agent/{agent}/consult_cancel'],
      ['POST', '/callcenter/{cc}/supervisor/{sup}/monitor/stop'],
    ] as const)
      expect([m, p, route(m, p).statuses.has(200)]).toEqual([m, p, true]);
    for (const r of ROUTES.filter((x) => x.method === 'POST')) expect([key(r), r.statuses.has(413), r.statuses.has(415)]).toEqual([key(r), true, true]);
  });

  it('call_out with an XML or a text/plain body is the documented 415 unsupported_media_type (415 was not in its document; text/plain was parsed, then 400) and changes nothing', async () => {
    for (const [contentType, payload] of [
      ['application/xml', '<to>5551234</to>'],
      ['text/plain', 'to=5551234'],
    ]) {
      const ans = await exercise(route('POST', '/callcenter/{cc}/agent/{agent}/call_out'), one('POST', '/callcenter/default/agent/1001/call_out', { contentType, payload }));
      expect([contentType, ans.status, (ans.body as { error: string }).error]).toEqual([contentType, 415, 'unsupported_media_type']);
    }
  });

  it.failing('xfer_agent on a conversation this instance holds, without a drachtio-server, is 503 unavailable like the other call operations (needs app/createApp.ts)', async () => {
    const ans = await send(one('POST', '/callcenter/default/agent/1001/xfer_agent', { contentType: 'application/json', payload: `{"conversation_id":"${LIVE}","queue":"<enqueue queue=\\"8000\\"/>"}` }));
    expect([ans.status, (ans.body as { error: string }).error]).toEqual([503, 'unavailable']);
  });
});
