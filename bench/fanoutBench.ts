/**
 * Part `fanout` (issue 7): the WebSocket event stream under fan-out. 1,000 clients subscribed
 * to one queue, 500 agent state changes per second: latency from the Redis XADD to receipt at
 * the client (p50 / p99 / max, all clients pooled), against the same events read straight from
 * Redis by one `XREAD BLOCK` client in the same run (target: p99 within 3x of it), and the
 * server's memory per connected client.
 *
 * - One ccswitch instance (startApp) in this process, agents a1..aN in queue 8000 logged in
 *   (Ready). The load is driven here too, on the instance's own engine (`app.engine`), like a
 *   REST request would without the HTTP part: agents toggled Ready <-> Not Ready, each call a
 *   real change (checked), paced in batches every 10 ms, one call in flight per agent. So the
 *   server CPU reported is the instance's fan-out plus the state changes.
 * - The clients run in a child process (bench/wsLoader.ts): 1,000 `ws` clients, each
 *   authenticated by its upgrade header, subscribed to `queue:8000`, ready once its snapshot
 *   and `subscribed` are in. The baseline XREAD client runs in a second child of its own, so
 *   it never waits behind the thousand clients' frames (nor behind the server's event loop).
 * - Latency is `Date.now() - event.ts` at receipt, `ts` being the Redis `TIME` (ms) taken by
 *   the script that XADDed the event. Redis and the clients run on the same host, so both
 *   clocks are the same clock; both ends are whole milliseconds (±1 ms per sample).
 * - Memory: this process's rss / heap / external before any client and with every client
 *   connected, subscribed and idle, each after a forced full GC (`--expose-gc`, or the V8
 *   flag set at run time when the process was started without it).
 * - Each round: window opened at the stream's current sequence, load for `durationSec`, then
 *   both children wait until every open receiver has read the round's last event (or
 *   `drainTimeoutMs`). Delivery is checked: every client must get every event of the window
 *   (gaps), each once and in order (duplicates), and none may be closed as a slow consumer.
 *   Then one shorter round at a tenth of the rate (`referenceChangesPerSec`), reported apart:
 *   it shows what fan-out adds when the server keeps up.
 * - The driver shares the instance's event loop. When fan-out saturates it, the driver's timer
 *   fires late, no call is started after the round's time, and the achieved rate (printed,
 *   with a SATURATED line) is below the offered one; the latency then is mostly the server's
 *   backlog. CPU is % of one core over the load window: this process, redis-server (INFO),
 *   the two children (/proc) and whatever else kept the host busy (/proc/stat), so a run
 *   disturbed by other work on the machine shows as such.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Redis } from 'ioredis';
import type { AgentEngine } from '../lib/agent/engine';
import { AgentState } from '../lib/agent/stateMachine';
import { parseEvent } from '../lib/events';
import { keysCache } from '../lib/store/keys';
import { topicsOf } from '../lib/stream/topics';
import { startApp, type RunningApp } from '../test/helpers/app';
import { CpuMeter, fmt, median, out, redisCpuMeter, table } from './stats';
import type { CollectResult, ConnectResult, WsLoaderCall, WsLoaderReply } from './wsLoader';

/** Target of issue 7: WebSocket p99 within this factor of the XREAD baseline's p99. */
export const FANOUT_TARGET_RATIO = 3;

/** Defaults of {@link FanoutBenchOptions}. */
export const FANOUT_BENCH_DEFAULTS = {
  clients: 1000,
  changesPerSec: 500,
  durationSec: 10,
  warmupSec: 2,
  rounds: 3,
  extraAgents: 200,
  queue: '8000',
  /** Load batches are issued every this many ms. */
  batchMs: 10,
  /** Clients connecting at once. */
  connectConcurrency: 50,
  /** No client is started after this long. */
  connectBudgetMs: 20_000,
  /** Longest wait after a round for every client to have read its last event. */
  drainTimeoutMs: 10_000,
  /**
   * One extra round at this lower rate (not in the medians or the verdict), to tell latency
   * the server adds when it keeps up from queueing when it does not. 0: no such round.
   */
  referenceChangesPerSec: 50,
  referenceSec: 5,
} as const;

/** Settings of part `fanout`. */
export interface FanoutBenchOptions {
  redisUrl: string;
  /** A connection for the bench's own reads (Redis CPU, stream sequence). */
  admin: Redis;
  clients?: number;
  changesPerSec?: number;
  durationSec?: number;
  warmupSec?: number;
  rounds?: number;
  extraAgents?: number;
  drainTimeoutMs?: number;
  /** See {@link FANOUT_BENCH_DEFAULTS}.referenceChangesPerSec (0: none). */
  referenceChangesPerSec?: number;
  referenceSec?: number;
}

/** Latency of one receiver kind over one window. */
export interface LatencyStats {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

/** One side (WebSocket clients or XREAD baseline) of a round. */
export interface ReceiverStats extends LatencyStats {
  receivers: number;
  /** Events of the window delivered per receiver: min / median / max. */
  perReceiverMin: number;
  perReceiverMedian: number;
  perReceiverMax: number;
  /** Events of the window that some receiver never got (summed over receivers). */
  gaps: number;
  duplicates: number;
  closedByCode: Record<string, number>;
  errorFrames: Record<string, number>;
  drained: boolean;
  drainMs: number;
  /** Per event: latency to the first and to the last receiver that got it (p50 / p99 over events). */
  perEvent: CollectResult['perEvent'];
  /** The child process's CPU over the window and drain, % of one core. */
  cpuPct: number;
  negative: number;
}

/** One measured round. */
export interface FanoutRound {
  /** State changes applied (each a real change). */
  changes: number;
  changesPerSec: number;
  loadMs: number;
  /** Window of sequence numbers (from, to]. */
  fromSeq: number;
  toSeq: number;
  /** Events of the window on the subscribed queue's topic: what each client should get. */
  expected: number;
  ws: ReceiverStats;
  xread: ReceiverStats;
  /** ws p99 / xread p99. */
  p99Ratio: number;
  /** This process (instance + load driver), % of one core over the load window. */
  serverCpuPct: number;
  redisCpuPct: number;
  /** The clients' child process and the XREAD child over the load window, % of one core (from /proc). */
  clientsCpuPct: number;
  xreadCpuPct: number;
  /** Whole host over the load window, % of one core, and what is left of it after the above (other work on the host). */
  hostCpuPct: number;
  otherCpuPct: number;
  slowClosed: number;
  eventsSent: number;
  unchanged: number;
  loadErrors: number;
}

/** Process memory figures (bytes). */
export interface MemSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** Everything part `fanout` measured. */
export interface FanoutBenchResult {
  clients: number;
  connected: number;
  connectMs: number;
  connectErrors: string[];
  changesPerSec: number;
  durationSec: number;
  warmupSec: number;
  agents: number;
  queue: string;
  rounds: FanoutRound[];
  /** The extra round at a lower rate (not in the medians or the verdict). */
  reference?: { changesPerSec: number; durationSec: number; round: FanoutRound };
  median: {
    changesPerSec: number;
    deliveredPerClient: number;
    expected: number;
    wsP50Ms: number;
    wsP99Ms: number;
    wsMaxMs: number;
    xreadP50Ms: number;
    xreadP99Ms: number;
    /** Per event, p99 over events of the latency to the first / the last client. */
    firstClientP99Ms: number;
    lastClientP99Ms: number;
    serverCpuPct: number;
    redisCpuPct: number;
    clientsCpuPct: number;
    otherCpuPct: number;
    drainMs: number;
  };
  /** Median ws p99 over median xread p99. */
  p99Ratio: number;
  target: number;
  meetsTarget: boolean;
  memory: {
    /** How the full GC before each sample was forced ('none': figures include garbage). */
    gc: '--expose-gc' | 'v8 flag at run time' | 'none';
    before: MemSample;
    idle: MemSample;
    afterLoad: MemSample;
    /** (idle - before) / connected clients. */
    perClient: { rss: number; heapUsed: number; external: number };
  };
  /** Over warm-up and rounds. */
  totals: { gaps: number; duplicates: number; slowClosed: number; closed: number; unchanged: number; loadErrors: number; loadErrorSamples: string[] };
  /** Every delivery check passed (no gap, duplicate, close, non-change, error; drained). */
  valid: boolean;
}

type Gc = { fn: (() => void) | undefined; how: FanoutBenchResult['memory']['gc'] };

/** A full GC function: the exposed one, or one obtained by setting the V8 flag now. */
function findGc(): Gc {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return { fn: exposed as () => void, how: '--expose-gc' };
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    if (typeof fn === 'function') return { fn: fn as () => void, how: 'v8 flag at run time' };
  } catch {
    // not available
  }
  return { fn: undefined, how: 'none' };
}

/** Linux USER_HZ: /proc times are in 1/100 s. */
const CLK_TCK = 100;

/** utime + stime (s) of a process from /proc (NaN where unavailable). */
function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Busy and total jiffies of the whole host (all cores), from /proc/stat (NaN where unavailable). */
function hostJiffies(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3]! - v[4]!, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

/** CPU of the whole host over an interval, % of one core (so up to 100 × cores). */
function hostCpuMeter(): { pct(): number } {
  const a = hostJiffies();
  const cores = os.cpus().length;
  return {
    pct() {
      const b = hostJiffies();
      const dt = b.total - a.total;
      return dt > 0 ? ((b.busy - a.busy) / dt) * cores * 100 : NaN;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function memSample(gc: Gc): Promise<MemSample> {
  if (gc.fn !== undefined) {
    gc.fn();
    await sleep(50);
    gc.fn();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** A forked bench/wsLoader.ts and a request / reply channel to it. */
interface Loader {
  child: ChildProcess;
  call<T>(req: WsLoaderCall): Promise<T>;
  stop(): Promise<void>;
}

function startLoader(): Loader {
  const child = fork(path.join(__dirname, 'wsLoader.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  child.on('message', (msg: WsLoaderReply) => {
    const w = waiting.get(msg.id);
    if (w === undefined) return;
    waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.result);
    else w.reject(new Error(`ws loader failed: ${msg.error}`));
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`ws loader exited (${String(code ?? signal)})`));
    waiting.clear();
  });
  return {
    child,
    call<T>(req: WsLoaderCall): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: (v) => resolve(v as T), reject });
        child.send({ ...req, id });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

/** One agent of the load. */
interface Slot {
  id: string;
  ready: boolean;
  busy: boolean;
}

interface LoadOutcome {
  changes: number;
  unchanged: number;
  errors: number;
  errorSamples: string[];
  lastSeq: number;
  elapsedMs: number;
}

/**
 * Applies `rate` state changes per second for `durationMs`: every `batchMs` the calls due by
 * then are started, each on the next agent with no call in flight, toggling it Ready <-> Not
 * Ready. No call is started after `durationMs` (so when this process is saturated, fewer than
 * rate × duration are made: the achieved rate is reported). Resolves once every call has
 * answered.
 */
function drive(engine: AgentEngine, cc: string, slots: Slot[], rate: number, durationMs: number, batchMs: number): Promise<LoadOutcome> {
  const total = Math.round((rate * durationMs) / 1000);
  const o: LoadOutcome = { changes: 0, unchanged: 0, errors: 0, errorSamples: [], lastSeq: 0, elapsedMs: 0 };
  let issued = 0;
  let answered = 0;
  let cursor = 0;
  let tick = 0;
  let stopped = false;
  const t0 = performance.now();
  return new Promise<LoadOutcome>((resolve) => {
    const apply = (s: Slot): void => {
      s.busy = true;
      const call = s.ready ? engine.notReady(cc, s.id) : engine.ready(cc, s.id);
      call
        .then(
          (r) => {
            if (r.results.length > 0 && r.results.every((q) => q.changed)) {
              o.changes++;
              s.ready = !s.ready;
            } else o.unchanged++;
            for (const seq of r.seqs) if (seq > o.lastSeq) o.lastSeq = seq;
          },
          (err: unknown) => {
            o.errors++;
            if (o.errorSamples.length < 5) o.errorSamples.push(err instanceof Error ? err.message : String(err));
          },
        )
        .finally(() => {
          s.busy = false;
          answered++;
          if (stopped && answered === issued) resolve(o);
        });
    };
    const step = (): void => {
      const elapsed = performance.now() - t0;
      // The last batch is still made when its tick comes on time; a late one (saturated) is dropped.
      const onTime = elapsed < durationMs + 2 * batchMs;
      const due = elapsed >= durationMs ? (onTime ? total : issued) : Math.min(total, Math.floor((rate * elapsed) / 1000));
      while (issued < due) {
        let slot: Slot | undefined;
        for (let k = 0; k < slots.length && slot === undefined; k++) {
          const s = slots[cursor++ % slots.length]!;
          if (!s.busy) slot = s;
        }
        if (slot === undefined) break;
        issued++;
        apply(slot);
      }
      if (issued < total && elapsed < durationMs) {
        tick++;
        setTimeout(step, Math.max(0, t0 + tick * batchMs - performance.now()));
        return;
      }
      // No call is started after this.
      stopped = true;
      o.elapsedMs = elapsed;
      if (answered === issued) resolve(o);
    };
    step();
  });
}

/** Nearest-rank percentile of a [ms, count] histogram. */
function histPercentile(hist: readonly [number, number][], total: number, p: number): number {
  if (total === 0) return NaN;
  const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
  let seen = 0;
  for (const [ms, n] of hist) {
    seen += n;
    if (seen >= rank) return ms;
  }
  return hist[hist.length - 1]?.[0] ?? NaN;
}

function receiverStats(c: CollectResult, expected: number): ReceiverStats {
  const closed = Object.values(c.closedByCode).reduce((a, b) => a + b, 0);
  return {
    samples: c.samples,
    p50Ms: histPercentile(c.histogram, c.samples, 50),
    p99Ms: histPercentile(c.histogram, c.samples, 99),
    p999Ms: histPercentile(c.histogram, c.samples, 99.9),
    maxMs: c.samples > 0 ? c.maxMs : NaN,
    meanMs: c.samples > 0 ? c.sumMs / c.samples : NaN,
    receivers: c.receivers,
    perReceiverMin: c.perReceiver[0] ?? 0,
    perReceiverMedian: median(c.perReceiver),
    perReceiverMax: c.perReceiver[c.perReceiver.length - 1] ?? 0,
    gaps: c.perReceiver.reduce((t, n) => t + Math.max(0, expected - n), 0),
    duplicates: c.duplicates,
    closedByCode: c.closedByCode,
    errorFrames: c.errorFrames,
    perEvent: c.perEvent,
    drained: c.drained && closed === 0,
    drainMs: c.drainMs,
    cpuPct: c.cpuPct,
    negative: c.negative,
  };
}

const counterValue = async (c: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> => (await c.get()).values[0]?.value ?? 0;

/** Measures part `fanout`. */
export async function runFanoutBench(opts: FanoutBenchOptions): Promise<FanoutBenchResult> {
  const d = FANOUT_BENCH_DEFAULTS;
  const o = {
    clients: opts.clients ?? d.clients,
    changesPerSec: opts.changesPerSec ?? d.changesPerSec,
    durationSec: opts.durationSec ?? d.durationSec,
    warmupSec: opts.warmupSec ?? d.warmupSec,
    rounds: opts.rounds ?? d.rounds,
    extraAgents: opts.extraAgents ?? d.extraAgents,
    drainTimeoutMs: opts.drainTimeoutMs ?? d.drainTimeoutMs,
    referenceChangesPerSec: opts.referenceChangesPerSec ?? d.referenceChangesPerSec,
    referenceSec: opts.referenceSec ?? d.referenceSec,
  };
  const cc = 'default';
  const topic = `queue:${d.queue}`;
  const gc = findGc();
  let app: RunningApp | undefined;
  let wsLoader: Loader | undefined;
  let xLoader: Loader | undefined;
  try {
    app = await startApp({ redisUrl: opts.redisUrl, extraAgents: o.extraAgents });
    const running = app;
    const engine = running.app.engine;
    const metrics = running.app.metrics;
    const keys = keysCache(running.app.config.redis.keyPrefix)(cc);
    const slots: Slot[] = [];
    for (let i = 1; i <= o.extraAgents; i++) {
      const id = `a${i}`;
      const r = await engine.login(cc, id);
      if (!r.results.every((q) => q.to === AgentState.Ready)) throw new Error(`login ${id}: not ready (${JSON.stringify(r.results)})`);
      slots.push({ id, ready: true, busy: false });
    }

    const before = await memSample(gc);
    wsLoader = startLoader();
    const url = `${running.base.replace(/^http/, 'ws')}/callcenter/${cc}/events`;
    const conn = await wsLoader.call<ConnectResult>({ kind: 'connect', url, token: running.token, clients: o.clients, topic, concurrency: d.connectConcurrency, timeoutMs: 30_000, budgetMs: d.connectBudgetMs });
    if (conn.connected === 0) throw new Error(`no WebSocket client could connect: ${conn.errors.join('; ')}`);
    // Every client is subscribed: let the last snapshots' buffers go, then measure.
    await sleep(500);
    const idle = await memSample(gc);

    xLoader = startLoader();
    await xLoader.call<ConnectResult>({ kind: 'xread', redisUrl: opts.redisUrl, key: keys.events });

    const totals: FanoutBenchResult['totals'] = { gaps: 0, duplicates: 0, slowClosed: 0, closed: 0, unchanged: 0, loadErrors: 0, loadErrorSamples: [] };
    const ws = wsLoader;
    const xr = xLoader;

    const measure = async (durationSec: number, rate: number): Promise<FanoutRound> => {
      const fromSeq = Number((await opts.admin.get(keys.eventSeq)) ?? 0);
      await Promise.all([ws.call({ kind: 'window', from: fromSeq }), xr.call({ kind: 'window', from: fromSeq })]);
      const slow0 = await counterValue(metrics.wsSlowClosed);
      const sent0 = await counterValue(metrics.wsEventsSent);
      const rcpu = await redisCpuMeter(opts.admin);
      const host = hostCpuMeter();
      const c0 = [procCpuSeconds(ws.child.pid), procCpuSeconds(xr.child.pid)] as const;
      const w0 = performance.now();
      const cpu = new CpuMeter();
      const load = await drive(engine, cc, slots, rate, durationSec * 1000, d.batchMs);
      const serverCpuPct = cpu.pct();
      const wallS = (performance.now() - w0) / 1000;
      const clientsCpuPct = ((procCpuSeconds(ws.child.pid) - c0[0]) / wallS) * 100;
      const xreadCpuPct = ((procCpuSeconds(xr.child.pid) - c0[1]) / wallS) * 100;
      const hostCpuPct = host.pct();
      const redisCpuPct = await rcpu.pct();
      // The window ends at the stream's sequence now: the load's last event, or a later event of
      // the instance (queue.stats, every timers.queueStatsMs).
      const toSeq = Math.max(load.lastSeq, fromSeq, Number((await opts.admin.get(keys.eventSeq)) ?? 0));
      const [wsc, xrc] = await Promise.all([
        ws.call<CollectResult>({ kind: 'collect', to: toSeq, timeoutMs: o.drainTimeoutMs }),
        xr.call<CollectResult>({ kind: 'collect', to: toSeq, timeoutMs: o.drainTimeoutMs }),
      ]);
      const entries = (await opts.admin.xrange(keys.events, `(${fromSeq}-0`, `${toSeq}-0`)) as [string, string[]][];
      const expected = entries.filter((e) => topicsOf(parseEvent(e)).includes(topic)).length;
      const slowClosed = (await counterValue(metrics.wsSlowClosed)) - slow0;
      const eventsSent = (await counterValue(metrics.wsEventsSent)) - sent0;
      const wsStats = receiverStats(wsc, expected);
      const xStats = receiverStats(xrc, entries.length);
      totals.gaps += wsStats.gaps + xStats.gaps;
      totals.duplicates += wsStats.duplicates + xStats.duplicates;
      totals.slowClosed += slowClosed;
      totals.closed += Object.values(wsc.closedByCode).reduce((a, b) => a + b, 0);
      totals.unchanged += load.unchanged;
      totals.loadErrors += load.errors;
      for (const s of load.errorSamples) if (totals.loadErrorSamples.length < 5) totals.loadErrorSamples.push(s);
      return {
        changes: load.changes,
        changesPerSec: (load.changes / load.elapsedMs) * 1000,
        loadMs: load.elapsedMs,
        fromSeq,
        toSeq,
        expected,
        ws: wsStats,
        xread: xStats,
        p99Ratio: wsStats.p99Ms / Math.max(1, xStats.p99Ms),
        serverCpuPct,
        redisCpuPct,
        clientsCpuPct,
        xreadCpuPct,
        hostCpuPct,
        otherCpuPct: Math.max(0, hostCpuPct - serverCpuPct - redisCpuPct - clientsCpuPct - xreadCpuPct),
        slowClosed,
        eventsSent,
        unchanged: load.unchanged,
        loadErrors: load.errors,
      };
    };

    const warm = await measure(o.warmupSec, o.changesPerSec);
    const rounds: FanoutRound[] = [];
    for (let i = 0; i < o.rounds; i++) rounds.push(await measure(o.durationSec, o.changesPerSec));
    const reference = o.referenceChangesPerSec > 0 ? await measure(o.referenceSec, o.referenceChangesPerSec) : undefined;
    const afterLoad = await memSample(gc);

    const med = (f: (r: FanoutRound) => number): number => median(rounds.map(f));
    const m = {
      changesPerSec: med((r) => r.changesPerSec),
      deliveredPerClient: med((r) => r.ws.samples / Math.max(1, r.ws.receivers)),
      expected: med((r) => r.expected),
      wsP50Ms: med((r) => r.ws.p50Ms),
      wsP99Ms: med((r) => r.ws.p99Ms),
      wsMaxMs: med((r) => r.ws.maxMs),
      xreadP50Ms: med((r) => r.xread.p50Ms),
      xreadP99Ms: med((r) => r.xread.p99Ms),
      firstClientP99Ms: med((r) => r.ws.perEvent.firstP99Ms),
      lastClientP99Ms: med((r) => r.ws.perEvent.lastP99Ms),
      serverCpuPct: med((r) => r.serverCpuPct),
      redisCpuPct: med((r) => r.redisCpuPct),
      clientsCpuPct: med((r) => r.clientsCpuPct),
      otherCpuPct: med((r) => r.otherCpuPct),
      drainMs: med((r) => r.ws.drainMs),
    };
    // A baseline p99 of 0 ms (whole-ms clock) would make any ratio infinite: count it as 1 ms.
    const p99Ratio = m.wsP99Ms / Math.max(1, m.xreadP99Ms);
    const allDrained = [warm, ...rounds, ...(reference === undefined ? [] : [reference])].every((r) => r.ws.drained && r.xread.drained);
    return {
      clients: o.clients,
      connected: conn.connected,
      connectMs: conn.elapsedMs,
      connectErrors: conn.errors,
      changesPerSec: o.changesPerSec,
      durationSec: o.durationSec,
      warmupSec: o.warmupSec,
      agents: o.extraAgents,
      queue: d.queue,
      rounds,
      ...(reference === undefined ? {} : { reference: { changesPerSec: o.referenceChangesPerSec, durationSec: o.referenceSec, round: reference } }),
      median: m,
      p99Ratio,
      target: FANOUT_TARGET_RATIO,
      meetsTarget: p99Ratio <= FANOUT_TARGET_RATIO,
      memory: {
        gc: gc.how,
        before,
        idle,
        afterLoad,
        perClient: {
          rss: (idle.rss - before.rss) / conn.connected,
          heapUsed: (idle.heapUsed - before.heapUsed) / conn.connected,
          external: (idle.external - before.external) / conn.connected,
        },
      },
      totals,
      valid:
        conn.failed === 0 &&
        totals.gaps === 0 &&
        totals.duplicates === 0 &&
        totals.slowClosed === 0 &&
        totals.closed === 0 &&
        totals.unchanged === 0 &&
        totals.loadErrors === 0 &&
        allDrained,
    };
  } finally {
    if (wsLoader !== undefined) {
      await wsLoader.call({ kind: 'close' }).catch(() => undefined);
      await wsLoader.stop();
    }
    if (xLoader !== undefined) {
      await xLoader.call({ kind: 'close' }).catch(() => undefined);
      await xLoader.stop();
    }
    if (app !== undefined) await app.close();
  }
}

const ms = (n: number): string => (Number.isFinite(n) ? `${fmt(n)} ms` : '-');
const pct = (n: number): string => `${fmt(n)}%`;
const kib = (bytes: number): string => `${fmt(bytes / 1024, 1)} KiB`;
const mib = (bytes: number): string => `${fmt(bytes / 1024 / 1024, 1)} MiB`;

/** Prints part `fanout`. */
export function printFanoutBench(r: FanoutBenchResult): void {
  out(
    `\n7. Event fan-out: ${fmt(r.connected)} WebSocket clients on queue:${r.queue}, ${fmt(r.changesPerSec)} state changes/s ` +
      `(${r.agents} agents) for ${r.durationSec} s after ${r.warmupSec} s warm-up, ${r.rounds.length} rounds; baseline: one XREAD BLOCK client on the same stream\n`,
  );
  out('   latency = receipt time - event ts (Redis TIME at XADD); same host, same clock, whole ms (±1 ms per sample)\n\n');
  const row = (label: string, x: { cps: number; per: string; wp50: number; wp99: number; wmax: number; xp50: number; xp99: number; ratio: number; scpu: number; rcpu: number; lcpu: number; ocpu: number; drain: number }): string[] => [
    label,
    fmt(x.cps),
    x.per,
    ms(x.wp50),
    ms(x.wp99),
    ms(x.wmax),
    ms(x.xp50),
    ms(x.xp99),
    fmt(x.ratio, 2),
    pct(x.scpu),
    pct(x.rcpu),
    pct(x.lcpu),
    pct(x.ocpu),
    ms(x.drain),
  ];
  const header = ['round', 'changes/s', 'events/client', 'ws p50', 'ws p99', 'ws max', 'xread p50', 'xread p99', 'p99 ratio', 'server CPU', 'redis CPU', 'clients CPU', 'other CPU', 'drain'];
  /** The cells of one measured round (a numbered round, or the reference one). */
  const roundRow = (label: string, x: (typeof r.rounds)[number]): string[] =>
    row(label, {
      cps: x.changesPerSec,
      per: `${fmt(x.ws.samples / Math.max(1, x.ws.receivers))} / ${fmt(x.expected)}`,
      wp50: x.ws.p50Ms,
      wp99: x.ws.p99Ms,
      wmax: x.ws.maxMs,
      xp50: x.xread.p50Ms,
      xp99: x.xread.p99Ms,
      ratio: x.ws.p99Ms / Math.max(1, x.xread.p99Ms),
      scpu: x.serverCpuPct,
      rcpu: x.redisCpuPct,
      lcpu: x.clientsCpuPct,
      ocpu: x.otherCpuPct,
      drain: x.ws.drainMs,
    });
  const rows = r.rounds.map((x, i) => roundRow(String(i + 1), x));
  const m = r.median;
  rows.push(
    row('median', {
      cps: m.changesPerSec,
      per: `${fmt(m.deliveredPerClient)} / ${fmt(m.expected)}`,
      wp50: m.wsP50Ms,
      wp99: m.wsP99Ms,
      wmax: m.wsMaxMs,
      xp50: m.xreadP50Ms,
      xp99: m.xreadP99Ms,
      ratio: r.p99Ratio,
      scpu: m.serverCpuPct,
      rcpu: m.redisCpuPct,
      lcpu: m.clientsCpuPct,
      ocpu: m.otherCpuPct,
      drain: m.drainMs,
    }),
  );
  const ref = r.reference;
  if (ref !== undefined) rows.push(roundRow(`ref ${fmt(ref.changesPerSec)}/s`, ref.round));
  out(table(header, rows));
  out(`\n  ratio ws p99 / xread p99 = ${r.p99Ratio.toFixed(2)}  (target ≤ ${r.target}: ${r.meetsTarget ? 'meets target' : 'BELOW TARGET'})\n`);
  if (ref !== undefined)
    out(`  (row "ref": one ${ref.durationSec} s round at ${fmt(ref.changesPerSec)} changes/s, after the others, not in the median or the verdict)\n`);
  out(
    `  CPU in % of one core over the load window (${os.cpus().length} cores): server = this process (the instance and the load driver); clients = the child with the ${fmt(r.connected)} clients; ` +
      `other = the rest of the host's busy time (not the XREAD child: interrupts / softirq of the loopback traffic, anything else running)\n  drain: load end → every client has read the round's last event\n`,
  );
  if (m.otherCpuPct > 25) out(`  WARNING: ${fmt(m.otherCpuPct)}% of a core went to other work on the host during the rounds: latencies are inflated by it\n`);
  out(
    `  per event, p99 over events: first client ${ms(m.firstClientP99Ms)}, last client ${ms(m.lastClientP99Ms)} ` +
      `(rounds: ${r.rounds.map((x) => `${fmt(x.ws.perEvent.firstP99Ms)} / ${fmt(x.ws.perEvent.lastP99Ms)}`).join(', ')} ms` +
      `${ref === undefined ? '' : `; ref: ${fmt(ref.round.ws.perEvent.firstP99Ms)} / ${fmt(ref.round.ws.perEvent.lastP99Ms)} ms`})\n`,
  );
  if (m.changesPerSec < 0.9 * r.changesPerSec)
    out(
      `  SATURATED: ${fmt(m.changesPerSec)} of the ${fmt(r.changesPerSec)} changes/s offered were made (the load driver runs on the server's event loop, ` +
        `which fan-out kept busy): ${fmt(m.changesPerSec * r.connected)} event frames/s sent instead of ${fmt(r.changesPerSec * r.connected)}\n`,
    );
  const p = r.memory.perClient;
  out(
    `  memory per connected, subscribed, idle client (server process, ${r.memory.gc === 'none' ? 'NO forced GC: includes garbage' : `after full GC, ${r.memory.gc}`}): ` +
      `rss ${kib(p.rss)}, heap ${kib(p.heapUsed)}, external ${kib(p.external)}\n`,
  );
  out(
    `    rss ${mib(r.memory.before.rss)} → ${mib(r.memory.idle.rss)} with ${fmt(r.connected)} clients (${mib(r.memory.afterLoad.rss)} after the load); ` +
      `heap ${mib(r.memory.before.heapUsed)} → ${mib(r.memory.idle.heapUsed)} (${mib(r.memory.afterLoad.heapUsed)}); connect ${fmt(r.connectMs)} ms\n`,
  );
  const t = r.totals;
  out(
    `  delivery (warm-up and rounds): gaps ${fmt(t.gaps)}, duplicates ${fmt(t.duplicates)}, slow-consumer closes ${fmt(t.slowClosed)}, other closes ${fmt(t.closed - t.slowClosed)}, ` +
      `non-changes ${fmt(t.unchanged)}, load errors ${fmt(t.loadErrors)}${r.valid ? '' : '  — INVALID RUN'}\n`,
  );
  if (r.connected < r.clients) out(`  WARNING: only ${fmt(r.connected)} of ${fmt(r.clients)} clients connected: ${r.connectErrors.join('; ')}\n`);
  const labelled: [string, FanoutRound][] = r.rounds.map((x, i) => [`round ${i + 1}`, x]);
  if (ref !== undefined) labelled.push(['ref round', ref.round]);
  for (const [label, x] of labelled) {
    const closes = Object.entries(x.ws.closedByCode).map(([c, n]) => `${n}× ${c}`);
    const errs = Object.entries(x.ws.errorFrames).map(([c, n]) => `${n}× ${c}`);
    if (closes.length > 0 || errs.length > 0 || !x.ws.drained || !x.xread.drained)
      out(`  ${label}: closes ${closes.join(', ') || 'none'}; error frames ${errs.join(', ') || 'none'}; ${x.ws.drained ? 'drained' : `NOT drained within the timeout (min events/client ${fmt(x.ws.perReceiverMin)})`}\n`);
  }
  for (const s of t.loadErrorSamples) out(`  load error: ${s}\n`);
}

if (require.main === module) {
  void (async () => {
    const { startRedis } = await import('../test/helpers/redisServer');
    const { createRedis } = await import('../lib/store/redis');
    const redis = await startRedis();
    const admin = createRedis(redis.url);
    try {
      printFanoutBench(await runFanoutBench({ redisUrl: redis.url, admin }));
    } finally {
      admin.disconnect();
      await redis.stop();
    }
  })().catch((err: unknown) => {
    out(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
