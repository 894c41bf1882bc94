/**
 * The event-stream clients of part `fanout`, run as a child process (its own event loop and
 * CPU, so the clients' work is not counted as the server's). One child plays one role, chosen
 * by its first request:
 *
 * - `connect`: N WebSocket clients (the `ws` package) of `/callcenter/{cc}/events`, each
 *   authenticated by its upgrade header, subscribed to one topic, done once its snapshot and
 *   `subscribed` frames are in.
 * - `xread`: one plain ioredis connection reading the events stream itself with `XREAD BLOCK`,
 *   the baseline: the same events straight from Redis.
 *
 * For every event received, the receiver records `Date.now() - event.ts` (`ts` is the Redis
 * `TIME` in ms when the event was XADDed; same host, same clock) and checks that sequence
 * numbers only go up. Latencies of the events inside a window `(from, to]` of sequence numbers
 * go into one 1-ms histogram pooled over all receivers (both ends of a sample are whole ms, so
 * the histogram loses nothing); `collect` waits until every open receiver has read up to `to`
 * and answers with the histogram and the counts.
 *
 * Event frames are read without JSON.parse (`"seq":` and `"ts":` are looked up in the bytes;
 * anything else is parsed): a thousand clients in one process receive hundreds of thousands
 * of frames per second, and the loader should spend as little of the shared CPU as it can.
 */
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { CpuMeter, percentile } from './stats';

/** Requests from the parent; each gets exactly one {@link WsLoaderReply}. */
export type WsLoaderRequest =
  | {
      kind: 'connect';
      id: number;
      url: string;
      token: string;
      clients: number;
      topic: string;
      concurrency: number;
      /** Per client, open → snapshot and subscribed. */
      timeoutMs: number;
      /** No client is started after this long (the rest count as failed). */
      budgetMs: number;
    }
  | { kind: 'xread'; id: number; redisUrl: string; key: string }
  | { kind: 'window'; id: number; from: number }
  | { kind: 'collect'; id: number; to: number; timeoutMs: number }
  | { kind: 'close'; id: number };

/** A request as the parent writes it (the id is added by the channel). */
export type WsLoaderCall = WsLoaderRequest extends infer R ? (R extends WsLoaderRequest ? Omit<R, 'id'> : never) : never;

/** What `connect` / `xread` report. */
export interface ConnectResult {
  connected: number;
  failed: number;
  /** First few connection failures. */
  errors: string[];
  elapsedMs: number;
  /** Smallest and largest sequence number of the snapshots received (connect only). */
  snapshotSeqMin: number;
  snapshotSeqMax: number;
}

/** What `collect` reports for the window. */
export interface CollectResult {
  receivers: number;
  /** Receivers still open at the end. */
  open: number;
  /** Latency histogram: [ms, count] for every non-empty 1-ms bucket, ascending. */
  histogram: [number, number][];
  samples: number;
  sumMs: number;
  maxMs: number;
  /** Samples below 0 (host clock behind the Redis clock; counted as 0 in the histogram). */
  negative: number;
  /** Events of the window each receiver got, ascending. */
  perReceiver: number[];
  /** Frames whose sequence number was not above the previous one (repeats or reordering). */
  duplicates: number;
  /** Receivers closed during the window, by close code. */
  closedByCode: Record<string, number>;
  /** Error frames received during the window, by error code. */
  errorFrames: Record<string, number>;
  /**
   * Per event of the window: latency to the first receiver that got it and to the last one
   * (their difference is the spread of one event over all receivers), p50 / p99 over events.
   */
  perEvent: { events: number; firstP50Ms: number; firstP99Ms: number; lastP50Ms: number; lastP99Ms: number };
  /** Time from the collect request until every open receiver had read up to `to` (or the timeout). */
  drainMs: number;
  drained: boolean;
  /** CPU of this process between `window` and the end of the drain, % of one core. */
  cpuPct: number;
}

/** A reply to the parent. */
export type WsLoaderReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Longest latency kept in its own bucket; longer ones share the last. */
const MAX_BUCKET_MS = 120_000;

/** One receiver's state. */
interface Receiver {
  lastSeq: number;
  inWindow: number;
  open: boolean;
}

/** The recording shared by every receiver of this process. */
class Recorder {
  readonly receivers: Receiver[] = [];
  private from = Number.MAX_SAFE_INTEGER;
  private to = Number.MAX_SAFE_INTEGER;
  private hist = new Uint32Array(MAX_BUCKET_MS + 1);
  private samples = 0;
  private sumMs = 0;
  private maxMs = 0;
  private negative = 0;
  private duplicates = 0;
  private closedByCode: Record<string, number> = {};
  private errorFrames: Record<string, number> = {};
  private cpu = new CpuMeter();
  /** Per event of the window (index seq - from - 1): first and last receipt latency. */
  private first: number[] = [];
  private last: number[] = [];

  add(): Receiver {
    const r: Receiver = { lastSeq: -1, inWindow: 0, open: true };
    this.receivers.push(r);
    return r;
  }

  /** An event `seq` stamped `ts` reached receiver `r` at `now`. */
  event(r: Receiver, seq: number, ts: number, now: number): void {
    if (seq <= r.lastSeq) {
      this.duplicates++;
      return;
    }
    r.lastSeq = seq;
    if (seq <= this.from || seq > this.to) return;
    r.inWindow++;
    let ms = now - ts;
    if (ms < 0) {
      this.negative++;
      ms = 0;
    }
    this.hist[ms > MAX_BUCKET_MS ? MAX_BUCKET_MS : ms]! += 1;
    const k = seq - this.from - 1;
    const f = this.first[k];
    if (f === undefined || ms < f) this.first[k] = ms;
    const l = this.last[k];
    if (l === undefined || ms > l) this.last[k] = ms;
    this.samples++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  closed(r: Receiver, code: number): void {
    r.open = false;
    this.closedByCode[code] = (this.closedByCode[code] ?? 0) + 1;
  }

  errorFrame(code: string): void {
    this.errorFrames[code] = (this.errorFrames[code] ?? 0) + 1;
  }

  /** Starts a fresh window of the events after `from` (its end is set by collect). */
  window(from: number): void {
    this.from = from;
    this.to = Number.MAX_SAFE_INTEGER;
    this.hist = new Uint32Array(MAX_BUCKET_MS + 1);
    this.samples = 0;
    this.sumMs = 0;
    this.maxMs = 0;
    this.negative = 0;
    this.duplicates = 0;
    this.closedByCode = {};
    this.errorFrames = {};
    for (const r of this.receivers) r.inWindow = 0;
    this.cpu = new CpuMeter();
    this.first = [];
    this.last = [];
  }

  /** Ends the window at `to`, waits for every open receiver to get there, and reports. */
  async collect(to: number, timeoutMs: number): Promise<CollectResult> {
    this.to = to;
    const t0 = performance.now();
    const behind = (): boolean => this.receivers.some((r) => r.open && r.lastSeq < to);
    while (behind() && performance.now() - t0 < timeoutMs) await new Promise((resolve) => setTimeout(resolve, 10));
    const drained = !behind();
    const drainMs = performance.now() - t0;
    const cpuPct = this.cpu.pct();
    const histogram: [number, number][] = [];
    this.hist.forEach((n, ms) => {
      if (n > 0) histogram.push([ms, n]);
    });
    const first = Float64Array.from(this.first.filter((x) => x !== undefined)).sort();
    const last = Float64Array.from(this.last.filter((x) => x !== undefined)).sort();
    const perEvent = {
      events: first.length,
      firstP50Ms: percentile(first, 50),
      firstP99Ms: percentile(first, 99),
      lastP50Ms: percentile(last, 50),
      lastP99Ms: percentile(last, 99),
    };
    const result: CollectResult = {
      perEvent,
      receivers: this.receivers.length,
      open: this.receivers.filter((r) => r.open).length,
      histogram,
      samples: this.samples,
      sumMs: this.sumMs,
      maxMs: this.maxMs,
      negative: this.negative,
      perReceiver: this.receivers.map((r) => r.inWindow).sort((a, b) => a - b),
      duplicates: this.duplicates,
      closedByCode: this.closedByCode,
      errorFrames: this.errorFrames,
      drainMs,
      drained,
      cpuPct,
    };
    // Nothing is recorded until the next window.
    this.from = Number.MAX_SAFE_INTEGER;
    return result;
  }
}

const recorder = new Recorder();
const sockets: WebSocket[] = [];
let xreader: { redis: Redis; stopped: boolean; loop: Promise<void> } | undefined;

const EVENT_PREFIX = Buffer.from('{"op":"event"');
const SEQ_KEY = Buffer.from('"seq":');
const TS_KEY = Buffer.from('"ts":');

/** The non-negative integer at `at` in `buf`, or -1. */
function intAt(buf: Buffer, at: number): number {
  let n = 0;
  let i = at;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return i === at ? -1 : n;
}

/** `seq` and `ts` of an event frame read from its bytes, or undefined when it is not one. */
function eventOf(data: Buffer): { seq: number; ts: number } | undefined {
  if (data.length < EVENT_PREFIX.length || data.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) !== 0) return undefined;
  const s = data.indexOf(SEQ_KEY);
  const t = data.indexOf(TS_KEY);
  if (s < 0 || t < 0) return undefined;
  const seq = intAt(data, s + SEQ_KEY.length);
  const ts = intAt(data, t + TS_KEY.length);
  return seq < 0 || ts < 0 ? undefined : { seq, ts };
}

/** Opens one client; resolves with its snapshot's sequence number once `subscribed` is in. */
function openClient(url: string, token: string, topic: string, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false, skipUTF8Validation: true });
    sockets.push(ws);
    const r = recorder.add();
    let snapshotSeq = -1;
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === undefined) resolve(snapshotSeq);
      else reject(err);
    };
    const timer = setTimeout(() => {
      settle(new Error(`no snapshot + subscribed within ${timeoutMs} ms`));
      ws.terminate();
    }, timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', topics: [topic] })));
    ws.on('message', (data: Buffer) => {
      const now = Date.now();
      const e = eventOf(data);
      if (e !== undefined) return recorder.event(r, e.seq, e.ts, now);
      let f: { op?: string; seq?: number; error?: string; event?: { seq: number; ts: number } };
      try {
        f = JSON.parse(data.toString('utf8')) as typeof f;
      } catch {
        return recorder.errorFrame('unparsable frame');
      }
      if (f.op === 'event' && f.event !== undefined) return recorder.event(r, f.event.seq, f.event.ts, now);
      if (f.op === 'snapshot' && typeof f.seq === 'number') {
        snapshotSeq = f.seq;
        r.lastSeq = Math.max(r.lastSeq, f.seq);
      } else if (f.op === 'subscribed' && snapshotSeq >= 0) settle();
      else if (f.op === 'error') {
        recorder.errorFrame(f.error ?? 'unknown');
        settle(new Error(`error frame ${f.error ?? ''}`));
      }
    });
    ws.on('error', (err) => settle(err));
    ws.on('close', (code) => {
      recorder.closed(r, code);
      settle(new Error(`closed ${code} before subscribed`));
    });
  });
}

async function connect(req: Extract<WsLoaderRequest, { kind: 'connect' }>): Promise<ConnectResult> {
  const t0 = performance.now();
  const errors: string[] = [];
  let connected = 0;
  let failed = 0;
  let min = Number.MAX_SAFE_INTEGER;
  let max = -1;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < req.clients) {
      next++;
      if (performance.now() - t0 > req.budgetMs) {
        failed++;
        if (errors.length < 5) errors.push(`not started: connect budget of ${req.budgetMs} ms used up`);
        continue;
      }
      try {
        const seq = await openClient(req.url, req.token, req.topic, req.timeoutMs);
        connected++;
        min = Math.min(min, seq);
        max = Math.max(max, seq);
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(err instanceof Error ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(req.concurrency, req.clients) }, worker));
  return { connected, failed, errors, elapsedMs: performance.now() - t0, snapshotSeqMin: min, snapshotSeqMax: max };
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

async function startXread(req: Extract<WsLoaderRequest, { kind: 'xread' }>): Promise<ConnectResult> {
  const t0 = performance.now();
  const redis = new Redis(req.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  await redis.connect();
  const tail = (await redis.xrevrange(req.key, '+', '-', 'COUNT', 1)) as [string, string[]][];
  let last = tail[0]?.[0] ?? '0-0';
  const r = recorder.add();
  const state = { redis, stopped: false, loop: Promise.resolve() };
  state.loop = (async () => {
    while (!state.stopped) {
      let reply: XReadReply;
      try {
        reply = await redis.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', req.key, last);
      } catch (err) {
        if (state.stopped) return;
        recorder.errorFrame(`xread: ${err instanceof Error ? err.message : String(err)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      const now = Date.now();
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          last = id;
          let ts = NaN;
          for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'ts') ts = Number(fields[i + 1]);
          recorder.event(r, Number(id.slice(0, id.indexOf('-'))), ts, now);
        }
      }
    }
  })();
  xreader = state;
  return { connected: 1, failed: 0, errors: [], elapsedMs: performance.now() - t0, snapshotSeqMin: -1, snapshotSeqMax: -1 };
}

async function closeAll(): Promise<{ closed: number }> {
  const waits = sockets.map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once('close', () => resolve());
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
        else ws.terminate();
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      }),
  );
  await Promise.all(waits);
  if (xreader !== undefined) {
    xreader.stopped = true;
    await xreader.loop.catch(() => undefined);
    xreader.redis.disconnect();
  }
  return { closed: sockets.length };
}

async function handle(req: WsLoaderRequest): Promise<unknown> {
  switch (req.kind) {
    case 'connect':
      return connect(req);
    case 'xread':
      return startXread(req);
    case 'window':
      recorder.window(req.from);
      return {};
    case 'collect':
      return recorder.collect(req.to, req.timeoutMs);
    case 'close':
      return closeAll();
  }
}

process.on('message', (req: WsLoaderRequest) => {
  handle(req).then(
    (result) => process.send?.({ id: req.id, ok: true, result } satisfies WsLoaderReply),
    (err: unknown) => process.send?.({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WsLoaderReply),
  );
});

// The parent closes the IPC channel when it is done: leave then.
process.on('disconnect', () => process.exit(0));
