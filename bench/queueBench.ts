/**
 * Part "queue" (issue 4): queue calls per second through a real drachtio-server, ramped in
 * fixed-rate steps until the first failed call; the knee is the highest step with none.
 *
 * One ccswitch instance (this process) on its own drachtio-server, with the static-SDP
 * `FakeMediaServer` of the SIP tests as the media port: FreeSWITCH is not part of this
 * measurement (no conference, no RTP, no hold music), so the numbers are the SIP signalling
 * and Redis work of a queue call, not its media.
 *
 * - Agents a1..aN of queue 8000 (autoReady, wrapUpSeconds 0, longest_idle) register through
 *   drachtio with a real digest REGISTER (sipp, one REGISTER per agent from an injection file)
 *   whose Contact is ONE sipp UAS process on its own port; it answers every offer at once
 *   (180, 200), then waits for ccswitch's BYE. The agents log in through the engine (Ready).
 * - Callers: a sipp UAC from 127.0.0.1, configured as a trunk (no digest), dials 8000 at a
 *   fixed rate (sipp -r) for `stepSec`, talks `talkMs` from its ACK, then sends BYE.
 * - Each step is a fresh caller and a fresh agent UAS; after the callers are done the bench
 *   waits until every agent is Ready again with no reservation and no task waiting.
 *
 * The one UAS answers any INVITE, whoever it is for: unlike a real phone it never says busy,
 * so an offer to an agent who is already on a call is answered too (and counted, see below).
 * Needs an empty call center `default` in Redis and drachtio-server and sipp on PATH (skipped
 * with a loud line otherwise).
 *
 * A step fails on any failed sipp call on either side (a non-2xx final, a receive timeout, an
 * unexpected message such as a CANCEL or an early BYE), an agent call ccswitch never released,
 * a call placed that the agents did not answer, a task that ended other than answered
 * (abandoned: the caller hung up before an agent answered), or a queue that does not settle.
 * The knee is the highest step below the first failed one.
 *
 * Double offers: ccswitch can offer an agent a second call while the agent's first is being
 * connected (the answer claim drops the agent's lease before the agent leaves Ready); that
 * call then fails (caller BYE, agent leg left up). The app's log lines are counted per step,
 * and a step whose only failures are such calls is marked, so the ramp (by default) goes on
 * past them to a capacity knee as well; with that race fixed the two knees are the same.
 *
 * Latencies: the caller's INVITE → 200 (ccswitch answers at once onto the conference, before
 * any agent is found), and the queue wait from the task's enqueue to the agent's answer claim
 * (the `waitedMs` of the `queue.caller` answered events: planning, reservation, the INVITE to
 * the agent and its 200). CPU is % of one core over the caller's run for this process (the
 * app), drachtio-server, both sipps and redis-server.
 */
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import Srf from 'drachtio-srf';
import type { Redis } from 'ioredis';
import { createApp, type App } from '../app/createApp';
import type { SrfLike } from '../app/sip/types';
import { parseEvent } from '../lib/events';
import { createLogger } from '../lib/logger';
import { agentField, callCenterKeys } from '../lib/store/keys';
import { createRedis } from '../lib/store/redis';
import { FakeMediaServer } from '../media/fake';
import { testConfig } from '../test/helpers/config';
import { freePort } from '../test/helpers/redisServer';
import { onPath, procCpu, startQuietDrachtio } from './sipBench';
import { startSipp, stopSipp, type Sipp, type SippRun } from '../test/helpers/sippProcess';
import { CpuMeter, fmt, out, percentile, redisCpuMeter, table } from './stats';

/** Defaults of {@link QueueBenchOptions}. */
export const QUEUE_BENCH_DEFAULTS = {
  /** Enough for ~550 calls/s at 1 s talk time: the knee should not be agent-limited. */
  agents: 600,
  rates: [20, 40, 60, 80, 100, 150, 200, 300, 400, 500, 600, 700],
  stepSec: 10,
  talkMs: 1000,
  /** The product's default `timers.pollMs` (lib/config/schema.ts). */
  pollMs: 250,
} as const;

/** Settings of the queue part. */
export interface QueueBenchOptions {
  redisUrl: string;
  /** A connection for the bench's own reads (not the app's). */
  admin: Redis;
  /** Agents a1..aN in queue 8000, all registered to the one agent UAS. Needed ≈ rate × (talk + ~0.1 s). */
  agents?: number;
  /** Call rates (calls/s) of the steps, ascending. */
  rates?: readonly number[];
  /** Seconds of calls placed per step (calls = rate × stepSec). */
  stepSec?: number;
  /** Caller talk time from its ACK to its BYE, ms. */
  talkMs?: number;
  /** `timers.pollMs` of the app: how often a waiting task (not first in the queue, or no agent free) tries again. */
  pollMs?: number;
  /**
   * When to stop the ramp: `'any'` at the first step with any failure; `'unexplained'` (the
   * default) goes on through steps whose only failures are double offers (see
   * {@link QueueStep.doubleOffers}) and stops at the first other failure; `'never'` runs every rate.
   */
  stopOn?: 'any' | 'unexplained' | 'never';
  /** Also copy the app's log lines (warn and above) to this file. */
  logFile?: string;
}

/** One fixed-rate step. */
export interface QueueStep {
  /** Target rate (sipp -r), calls/s. */
  rate: number;
  /** Calls placed (sipp -m). */
  calls: number;
  /** Answered INVITEs per wall second as the caller saw them (first to last 200). */
  achievedPerSec: number;
  callerOk: number;
  callerFailed: number;
  agentOk: number;
  agentFailed: number;
  /** Agent calls never released (no BYE from ccswitch): still open when the agent UAS was stopped. */
  agentOpen: number;
  /** Retransmissions on the caller and the agent side (a sign of a late peer, not a failure by itself). */
  retransmissions: number;
  /** Queue counters of this step (Redis `queue:8000:stats` deltas). */
  entered: number;
  answered: number;
  abandoned: number;
  /** Ended by max wait (timeout or overflow). */
  timedOut: number;
  handled: number;
  /** Caller INVITE → 200, ms (sipp, whole ms). */
  answerP50Ms: number;
  answerP99Ms: number;
  /** Task enqueue → agent's answer claimed, ms (Redis clock). */
  waitP50Ms: number;
  waitP99Ms: number;
  waitMaxMs: number;
  /** Most agents off Ready at once (sampled every 200 ms), and most tasks waiting at once. */
  peakBusyAgents: number;
  peakWaiting: number;
  /** Wall time of the caller's run (placing the calls, then the last ones' talk and BYE), s: the CPU figures' interval. */
  wallSec: number;
  /** CPU, % of one core, over the caller's run. */
  nodeCpuPct: number;
  drachtioCpuPct: number;
  sippCpuPct: number;
  redisCpuPct: number;
  /** The whole machine's CPU busy over the same interval, % of all cores: the four processes above and any other work on the box. */
  machineCpuPct: number;
  /** The app's warn/error log lines of this step, by message (`msg: err.message`). */
  appErrors: Record<string, number>;
  /**
   * Queue calls that failed because an agent was offered a second call while already on one:
   * the call's state change found the agent in Queue Call (`acd_call_answered` is not allowed
   * from `queue_call`), ccswitch sent BYE to the caller and left the agent leg up.
   */
  doubleOffers: number;
  /** Why the step failed (empty: it did not). */
  failures: string[];
  /** Every failure of the step is one of its double offers. */
  onlyDoubleOffers: boolean;
}

/** Queue-side state after the run, read from Redis. */
export interface QueueSanity {
  /** Agents by state in queue 8000 (all should be ready). */
  states: Record<string, number>;
  /** Agents with a reservation key left. */
  reserved: number;
  /** Tasks still in the queue's task list. */
  waitingTasks: number;
  /** Queue counters over the whole run (Redis `queue:8000:stats`). */
  counters: { entered: number; answered: number; abandoned: number; timedOut: number; handled: number };
  /** sipp's totals over the whole run. */
  sipp: { callsPlaced: number; callerOk: number; callerFailed: number; agentOk: number; agentFailed: number; agentOpen: number };
  /** Media fake: endpoints and conferences not released. */
  leakedEndpoints: number;
  leakedConferences: number;
  /** Every check held. */
  consistent: boolean;
  /** The checks that did not hold. */
  problems: string[];
}

/** Everything the queue part measured. */
export interface QueueBenchResult {
  skipped?: undefined;
  agents: number;
  stepSec: number;
  talkMs: number;
  pollMs: number;
  stopOn: NonNullable<QueueBenchOptions['stopOn']>;
  /** The rates asked for (the ramp may have stopped before the last). */
  rates: number[];
  drachtio: string;
  sipp: string;
  steps: QueueStep[];
  /** The highest step with no failure below the first failed one (undefined: the first step failed). */
  knee: QueueStep | undefined;
  /** The first failed step (undefined: every step passed, the knee is above the last rate). */
  firstFailure: QueueStep | undefined;
  /** As `knee`, counting a step whose only failures are double offers as passed (the capacity knee without that bug). */
  capacityKnee: QueueStep | undefined;
  /** The first step with a failure other than double offers. */
  firstOtherFailure: QueueStep | undefined;
  /** What most likely limited the first step with a failure other than double offers, from its CPU and agent figures (or why nothing did). */
  limitedBy: string;
  sanity: QueueSanity;
  errors: string[];
}

/** Why the queue part did not run. */
export interface QueueBenchSkipped {
  skipped: string;
}

const SCENARIOS = path.join(__dirname, 'scenarios');
const CC = 'default';
const QUEUE = '8000';
const SAMPLE_MS = 200;
const SETTLE_TIMEOUT_MS = 20000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The app's error behind a double offer (see {@link QueueStep.doubleOffers}). */
const DOUBLE_OFFER = /'acd_call_answered' is not allowed from state 'queue_call'/;

/** A pino destination that counts the app's log lines by message, and copies them to a file if asked. */
export class LogTally {
  private counts = new Map<string, number>();
  constructor(private readonly file?: WriteStream) {}

  write(line: string): void {
    this.file?.write(line);
    let key = 'unparsable log line';
    try {
      const j = JSON.parse(line) as { msg?: string; err?: { message?: string } };
      key = j.err?.message !== undefined ? `${j.msg ?? ''}: ${j.err.message}` : (j.msg ?? '');
    } catch {
      // counted as unparsable
    }
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** The counts since the last call. */
  take(): Record<string, number> {
    const r = Object.fromEntries(this.counts);
    this.counts.clear();
    return r;
  }
}

/** Busy and total jiffies of all cores together, from /proc/stat (zeros where unavailable). */
export function machineCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** The non-zero `Failed*` counters of a sipp run, e.g. `FailedUnexpectedMessage=2`. */
export function failedKinds(run: SippRun): string {
  return Object.entries(run.stats)
    .filter(([k, v]) => k.startsWith('Failed') && k.endsWith('(C)') && k !== 'FailedCall(C)' && v > 0)
    .map(([k, v]) => `${k.replace('(C)', '')}=${v}`)
    .join(', ');
}

/** A sipp run's cumulative counter `name` (e.g. `SuccessfulCall`), NaN where absent. */
export const stat = (run: SippRun, name: string): number => run.stats[`${name}(C)`] ?? NaN;
const sortedTimes = (run: SippRun, rtd: string): number[] => (run.rtt.get(rtd) ?? []).map(([, ms]) => ms).sort((a, b) => a - b);

/** The version sipp prints (`v3.6.1`), '?' if it cannot be read. */
export async function sippVersion(): Promise<string> {
  return new Promise<string>((resolve) => {
    const p = spawn('sipp', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    p.stdout.on('data', (b: Buffer) => (s += b.toString()));
    p.stderr.on('data', (b: Buffer) => (s += b.toString()));
    p.on('close', () => resolve(/SIPp (v[^\s-]+)/.exec(s)?.[1] ?? '?'));
    p.on('error', () => resolve('?'));
  });
}

/** Queue counters as numbers. */
type Counters = QueueSanity['counters'];

/** Measures queue calls per second until the first failed call, or says why it cannot run here. */
export async function runQueueBench(opts: QueueBenchOptions): Promise<QueueBenchResult | QueueBenchSkipped> {
  const o = { ...QUEUE_BENCH_DEFAULTS, ...opts };
  const missing = ['drachtio', 'sipp'].filter((b) => !onPath(b));
  if (missing.length > 0) return { skipped: `${missing.join(' and ')} not on PATH` };
  const sipp = await sippVersion();
  const drachtio = await startQuietDrachtio();
  const dir = mkdtempSync(path.join(tmpdir(), 'ccs-bench-queue-'));
  const appConn = createRedis(o.redisUrl);
  let app: App | undefined;
  let uas: Sipp | undefined;
  let sampling = false;
  let logStream: WriteStream | undefined;
  const errors: string[] = [];
  try {
    const config = testConfig({
      redisUrl: o.redisUrl,
      extraAgents: o.agents,
      pollMs: o.pollMs,
      wrapUpSeconds8000: 0,
      sip: { trunks: { bench: { addresses: ['127.0.0.1'], callcenter: CC } } },
      drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret },
    });
    const agents = Array.from({ length: o.agents }, (_, i) => `a${i + 1}`);
    const keys = callCenterKeys(config.redis.keyPrefix, CC);
    if ((await o.admin.exists(keys.agent(agents[0]!), keys.queueStats(QUEUE), keys.queueReady(QUEUE))) > 0) {
      throw new Error(`the queue bench needs call center '${CC}' empty in Redis (flush it before this part)`);
    }
    const password = config.callcenters[CC]!.agents.a1!.password;
    const media = new FakeMediaServer();
    const srf = new Srf() as unknown as SrfLike & EventEmitter;
    const up = once(srf, 'connect') as Promise<[Error | null]>;
    if (o.logFile !== undefined) logStream = createWriteStream(o.logFile);
    const tally = new LogTally(logStream);
    const logger = createLogger('warn', {}, tally);
    app = await createApp(config, { redis: appConn, logger, srf, media });
    await app.start();
    const [err] = await up;
    if (err) throw err;
    const target = `127.0.0.1:${drachtio.sipPort}`;
    const uasPort = await freePort();

    /** A fresh agent UAS on the port every agent's Contact points at. */
    const startUas = async (): Promise<Sipp> => {
      const s = startSipp([target, '-sf', path.join(SCENARIOS, 'queue-agent-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort()), '-t', 'u1', '-recv_timeout', '30000']);
      await sleep(300);
      if (s.proc.exitCode !== null) {
        const r = await s.done;
        throw new Error(`agent UAS exited at once (${r.code})\n${r.output}`);
      }
      return s;
    };

    // Registration: one digest REGISTER per agent, Contact = the agent UAS.
    const users = path.join(dir, 'agents.csv');
    writeFileSync(users, ['SEQUENTIAL', ...agents.map((a) => `${a};${password}`)].join('\n') + '\n');
    const reg = await startSipp([
      target, '-sf', path.join(SCENARIOS, 'queue-register.xml'), '-inf', users, '-key', 'uas_port', String(uasPort),
      '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1',
      '-r', '200', '-m', String(agents.length), '-timeout', '60s', '-timeout_error', '-recv_timeout', '5000',
    ]).done;
    if (reg.code !== 0 || stat(reg, 'SuccessfulCall') !== agents.length) {
      throw new Error(`agent REGISTERs: sipp exited ${reg.code}, ${stat(reg, 'SuccessfulCall')}/${agents.length} succeeded\n${reg.errors}\n${reg.output.slice(-1500)}`);
    }
    const bound = await Promise.all(agents.map((a) => app!.registrar.bindings(CC, a)));
    const wrong = agents.filter((_, i) => bound[i]!.length !== 1 || bound[i]![0]!.contact !== `sip:${agents[i]}@127.0.0.1:${uasPort}`);
    if (wrong.length > 0) throw new Error(`${wrong.length} agents without the expected binding, e.g. ${wrong[0]}: ${JSON.stringify(bound[agents.indexOf(wrong[0]!)])}`);
    for (const a of agents) await app.engine.login(CC, a);

    const readyCount = (): Promise<number> => o.admin.zcard(keys.queueReady(QUEUE));
    const waitingCount = (): Promise<number> => o.admin.zcard(keys.queueTasks(QUEUE));
    const reservedCount = async (): Promise<number> => {
      const pipe = o.admin.pipeline();
      for (const a of agents) pipe.exists(keys.reservation(a));
      return ((await pipe.exec()) ?? []).filter(([, v]) => v === 1).length;
    };
    const counters = async (): Promise<Counters> => {
      const h = await o.admin.hgetall(keys.queueStats(QUEUE));
      const n = (f: string): number => Number(h[f] ?? 0);
      return { entered: n('entered'), answered: n('answered'), abandoned: n('abandoned'), timedOut: n('timeout') + n('overflow'), handled: n('handled') };
    };
    const eventSeq = async (): Promise<number> => Number((await o.admin.get(keys.eventSeq)) ?? 0);
    /** Every agent Ready, none reserved, no task waiting; false after SETTLE_TIMEOUT_MS. */
    const settle = async (): Promise<boolean> => {
      const until = Date.now() + SETTLE_TIMEOUT_MS;
      for (;;) {
        if ((await readyCount()) === agents.length && (await waitingCount()) === 0 && (await reservedCount()) === 0) return true;
        if (Date.now() > until) return false;
        await sleep(100);
      }
    };
    if ((await readyCount()) !== agents.length) throw new Error(`only ${await readyCount()}/${agents.length} agents Ready after login`);

    const total = { callsPlaced: 0, callerOk: 0, callerFailed: 0, agentOk: 0, agentFailed: 0, agentOpen: 0 };
    const steps: QueueStep[] = [];
    for (const rate of o.rates) {
      const calls = Math.max(1, Math.round(rate * o.stepSec));
      const c0 = await counters();
      const seq0 = await eventSeq();
      tally.take();
      uas = await startUas();

      sampling = true;
      let peakBusy = 0;
      let peakWaiting = 0;
      const sampler = (async () => {
        while (sampling) {
          try {
            const [[, ready], [, waiting]] = (await o.admin.pipeline().zcard(keys.queueReady(QUEUE)).zcard(keys.queueTasks(QUEUE)).exec()) as [[null, number], [null, number]];
            peakBusy = Math.max(peakBusy, agents.length - ready);
            peakWaiting = Math.max(peakWaiting, waiting);
          } catch (e) {
            errors.push(`sampler: ${e instanceof Error ? e.message : String(e)}`);
          }
          await sleep(SAMPLE_MS);
        }
      })();

      const node = new CpuMeter();
      const rcpu = await redisCpuMeter(o.admin);
      const d0 = procCpu(drachtio.pid).self;
      const s0 = procCpu('self').children;
      const uas0 = procCpu(uas.proc.pid!).self;
      const m0 = machineCpu();
      const t0 = process.hrtime.bigint();
      const caller = startSipp([
        target, '-sf', path.join(SCENARIOS, 'queue-caller.xml'), '-s', QUEUE,
        '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1',
        '-r', String(rate), '-rp', '1000', '-m', String(calls), '-l', String(Math.max(1000, calls)), '-d', String(o.talkMs),
        '-timeout', `${o.stepSec + Math.ceil(o.talkMs / 1000) + 90}s`, '-timeout_error', '-recv_timeout', '10000',
        '-trace_rtt', '-rtt_freq', '1',
      ]);
      const callerRun = await caller.done;
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      const nodeCpuPct = node.pct();
      const redisCpuPct = await rcpu.pct();
      const drachtioCpuPct = ((procCpu(drachtio.pid).self - d0) / wallS) * 100;
      const uasCpu = procCpu(uas.proc.pid!).self - uas0; // the UAS is still running: read it before it is reaped
      const callerCpu = procCpu('self').children - s0; // the caller has been reaped
      const sippCpuPct = ((uasCpu + callerCpu) / wallS) * 100;
      const m1 = machineCpu();
      const machineCpuPct = m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 : NaN;

      const settled = await settle();
      sampling = false;
      await sampler;
      const { run: agentRun, open: agentOpen } = await stopSipp(uas, 5000);
      uas = undefined;
      const c1 = await counters();
      const appErrors = tally.take();
      const doubleOffers = Object.entries(appErrors)
        .filter(([k]) => DOUBLE_OFFER.test(k))
        .reduce((n, [, v]) => n + v, 0);
      const evs = (await o.admin.xrange(keys.events, `(${seq0}-0`, '+')).map(parseEvent);
      const waits = evs
        .filter((e) => e.type === 'queue.caller' && e.reason === 'answered' && e.queue === QUEUE)
        .map((e) => Number((e as { waitedMs?: unknown }).waitedMs))
        .sort((a, b) => a - b);

      const d = (f: keyof Counters): number => c1[f] - c0[f];
      const answerSamples = callerRun.rtt.get('answer') ?? [];
      const first = answerSamples[0]?.[0] ?? 0;
      const last = answerSamples[answerSamples.length - 1]?.[0] ?? 0;
      const answerTimes = sortedTimes(callerRun, 'answer');
      const step: QueueStep = {
        rate,
        calls,
        achievedPerSec: last > first ? ((answerSamples.length - 1) / (last - first)) * 1000 : NaN,
        callerOk: stat(callerRun, 'SuccessfulCall'),
        callerFailed: stat(callerRun, 'FailedCall'),
        agentOk: stat(agentRun, 'SuccessfulCall'),
        agentFailed: stat(agentRun, 'FailedCall'),
        agentOpen,
        retransmissions: stat(callerRun, 'Retransmissions') + stat(agentRun, 'Retransmissions'),
        entered: d('entered'),
        answered: d('answered'),
        abandoned: d('abandoned'),
        timedOut: d('timedOut'),
        handled: d('handled'),
        answerP50Ms: percentile(answerTimes, 50),
        answerP99Ms: percentile(answerTimes, 99),
        waitP50Ms: percentile(waits, 50),
        waitP99Ms: percentile(waits, 99),
        waitMaxMs: waits[waits.length - 1] ?? NaN,
        peakBusyAgents: peakBusy,
        peakWaiting,
        wallSec: wallS,
        nodeCpuPct,
        drachtioCpuPct,
        sippCpuPct,
        redisCpuPct,
        machineCpuPct,
        appErrors,
        doubleOffers,
        failures: [],
        onlyDoubleOffers: false,
      };
      const f = step.failures;
      if (callerRun.code !== 0 || step.callerOk !== calls) f.push(`callers: sipp exited ${callerRun.code}, ${step.callerOk}/${calls} ok, ${step.callerFailed} failed${failedKinds(callerRun) ? ` (${failedKinds(callerRun)})` : ''}`);
      if (step.agentFailed > 0 || step.agentOk !== step.answered) f.push(`agents: ${step.agentOk} ok, ${step.agentFailed} failed${failedKinds(agentRun) ? ` (${failedKinds(agentRun)})` : ''} for ${step.answered} answered tasks`);
      if (agentOpen !== 0) f.push(`agents: ${agentOpen} calls never released by ccswitch (no BYE)`);
      const outOfCall = stat(callerRun, 'OutOfCallMsgs') + stat(agentRun, 'OutOfCallMsgs');
      if (outOfCall > 0) f.push(`${outOfCall} out-of-call messages at sipp`);
      if (step.entered !== calls || step.answered !== calls || step.handled !== calls) f.push(`queue: ${step.entered} entered, ${step.answered} answered, ${step.handled} handled for ${calls} calls`);
      if (step.abandoned > 0 || step.timedOut > 0) f.push(`queue: ${step.abandoned} abandoned, ${step.timedOut} max-wait`);
      if (!settled) f.push(`not settled ${SETTLE_TIMEOUT_MS / 1000} s after the callers: ${await readyCount()}/${agents.length} Ready, ${await reservedCount()} reserved, ${await waitingCount()} waiting`);
      // A double offer: the caller gets an unexpected BYE, the agent's leg is never released;
      // the task itself was answered and handled.
      step.onlyDoubleOffers =
        f.length > 0 &&
        settled &&
        step.callerFailed === doubleOffers &&
        step.callerFailed === step.calls - step.callerOk &&
        failedKinds(callerRun) === `FailedUnexpectedMessage=${doubleOffers}` &&
        agentOpen === doubleOffers &&
        step.agentFailed === 0 &&
        step.agentOk === step.answered - doubleOffers &&
        outOfCall === 0 &&
        step.entered === calls &&
        step.answered === calls &&
        step.handled === calls &&
        step.abandoned === 0 &&
        step.timedOut === 0;
      if (doubleOffers > 0) f.push(`${doubleOffers} double offers (app: INVITE failed: 'acd_call_answered' is not allowed from state 'queue_call')`);
      if (f.length > 0) {
        const detail = [callerRun.errors && `caller errors:\n${callerRun.errors.slice(0, 1500)}`, agentRun.errors && `agent errors:\n${agentRun.errors.slice(0, 1500)}`].filter(Boolean).join('\n');
        errors.push(`${rate}/s: ${f.join('; ')}${detail ? `\n${detail}` : ''}`);
      }
      total.callsPlaced += stat(callerRun, 'OutgoingCall');
      total.callerOk += step.callerOk;
      total.callerFailed += step.callerFailed;
      total.agentOk += step.agentOk;
      total.agentFailed += step.agentFailed;
      total.agentOpen += agentOpen;
      steps.push(step);
      const stopOn = o.stopOn ?? 'unexplained';
      if (f.length > 0 && (stopOn === 'any' || (stopOn === 'unexplained' && !step.onlyDoubleOffers))) break;
      if (!settled) break; // the next step would start from a queue that is not empty
      await sleep(1000);
    }

    // Queue-side sanity after the run.
    const sanity = await (async (): Promise<QueueSanity> => {
      await settle();
      const pipe = o.admin.pipeline();
      for (const a of agents) pipe.hget(keys.agent(a), agentField.state(QUEUE));
      const states: Record<string, number> = {};
      for (const [, v] of (await pipe.exec()) ?? []) {
        const s = typeof v === 'string' ? v : 'none';
        states[s] = (states[s] ?? 0) + 1;
      }
      const c = await counters();
      const reserved = await reservedCount();
      const waitingTasks = await waitingCount();
      const problems: string[] = [];
      if ((states.ready ?? 0) !== agents.length) problems.push(`${agents.length - (states.ready ?? 0)} agents not Ready: ${JSON.stringify(states)}`);
      if (reserved > 0) problems.push(`${reserved} agents still reserved`);
      if (waitingTasks > 0) problems.push(`${waitingTasks} tasks still waiting`);
      if (c.entered !== c.answered + c.abandoned + c.timedOut) problems.push(`entered ${c.entered} ≠ answered ${c.answered} + abandoned ${c.abandoned} + max-wait ${c.timedOut}`);
      if (c.handled !== c.answered) problems.push(`handled ${c.handled} ≠ answered ${c.answered}`);
      if (c.entered !== total.callsPlaced) problems.push(`entered ${c.entered} ≠ calls placed by sipp ${total.callsPlaced}`);
      const agentCalls = total.agentOk + total.agentFailed + total.agentOpen;
      if (c.answered !== agentCalls) problems.push(`answered ${c.answered} ≠ agent calls at sipp ${agentCalls}`);
      if (total.agentOpen > 0) problems.push(`${total.agentOpen} agent calls never released`);
      if (media.endpoints !== 0 || media.conferences.size !== 0) problems.push(`media fake: ${media.endpoints} endpoints, ${media.conferences.size} conferences left`);
      return {
        states,
        reserved,
        waitingTasks,
        counters: c,
        sipp: total,
        leakedEndpoints: media.endpoints,
        leakedConferences: media.conferences.size,
        consistent: problems.length === 0,
        problems,
      };
    })();

    const failedAt = steps.findIndex((s) => s.failures.length > 0);
    const firstFailure = failedAt >= 0 ? steps[failedAt] : undefined;
    const passed = failedAt >= 0 ? steps.slice(0, failedAt) : steps;
    const knee = passed[passed.length - 1];
    const otherAt = steps.findIndex((s) => s.failures.length > 0 && !s.onlyDoubleOffers);
    const firstOtherFailure = otherAt >= 0 ? steps[otherAt] : undefined;
    const capacityKnee = (otherAt >= 0 ? steps.slice(0, otherAt) : steps).at(-1);
    return {
      agents: agents.length,
      stepSec: o.stepSec,
      talkMs: o.talkMs,
      pollMs: o.pollMs,
      stopOn: o.stopOn ?? 'unexplained',
      rates: [...o.rates],
      drachtio: drachtio.version,
      sipp,
      steps,
      knee,
      firstFailure,
      capacityKnee,
      firstOtherFailure,
      limitedBy:
        firstOtherFailure !== undefined
          ? limitOf(firstOtherFailure, agents.length)
          : steps.length < o.rates.length
            ? 'not reached: the ramp stopped at the first double offer'
            : 'not reached: every step passed',
      sanity,
      errors,
    };
  } finally {
    sampling = false;
    if (uas !== undefined) await stopSipp(uas, 3000);
    await app?.stop();
    appConn.disconnect();
    await drachtio.stop();
    logStream?.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What most likely limited a step: agents all busy, one process at a core, or the whole machine. */
function limitOf(s: QueueStep | undefined, agents: number): string {
  if (s === undefined) return 'no step ran';
  const why: string[] = [];
  if (s.peakBusyAgents >= agents * 0.95) why.push(`agents (${s.peakBusyAgents}/${agents} busy at once)`);
  if (s.nodeCpuPct >= 85) why.push(`the app's event loop (node ${fmt(s.nodeCpuPct)}% of a core)`);
  if (s.drachtioCpuPct >= 85) why.push(`drachtio-server (${fmt(s.drachtioCpuPct)}% of a core)`);
  const own = s.nodeCpuPct + s.drachtioCpuPct + s.sippCpuPct + s.redisCpuPct;
  const cores = os.cpus().length;
  if (s.machineCpuPct >= 85) {
    const share = own / cores / s.machineCpuPct; // the bench's processes' part of the busy CPU
    why.push(
      `the machine's CPU (${cores} cores ${fmt(s.machineCpuPct)}% busy; node ${fmt(s.nodeCpuPct)}% + drachtio ${fmt(s.drachtioCpuPct)}% + sipp ${fmt(s.sippCpuPct)}% + redis ${fmt(s.redisCpuPct)}% = ${fmt(own)}% of ${cores * 100}%` +
        `${share < 0.7 ? ', the rest other work on the box' : ''})`,
    );
  }
  if (why.length === 0) why.push(`none of agents/CPU at their limit (node ${fmt(s.nodeCpuPct)}%, drachtio ${fmt(s.drachtioCpuPct)}%, machine ${fmt(s.machineCpuPct)}% busy; queue wait p99 ${fmt(s.waitP99Ms)} ms)`);
  return why.join(' and ');
}

/** Prints the queue part's table, knees and sanity checks (or a loud line when it was skipped). */
export function printQueueBench(r: QueueBenchResult | QueueBenchSkipped): void {
  if (r.skipped !== undefined) {
    out(`\nQueue calls: SKIPPED (${r.skipped}; install drachtio-server and sipp to run it)\n`);
    return;
  }
  out(
    `\nQueue calls through drachtio-server ${r.drachtio} (sipp ${r.sipp} callers from a trunk → queue 8000 → ${r.agents} agents registered on one auto-answering sipp UAS), ` +
      `UDP, static-SDP fake media (no FreeSWITCH), talk ${fmt(r.talkMs / 1000, 1)} s, ${r.stepSec} s per step, wrap-up 0, timers.pollMs ${r.pollMs}, ramp stops on ${r.stopOn === 'unexplained' ? 'a failure other than double offers' : r.stopOn === 'any' ? 'any failure' : 'nothing'}\n\n`,
  );
  const pct = (n: number): string => `${fmt(n)}%`;
  const verdict = (s: QueueStep): string => (s.failures.length === 0 ? '' : s.onlyDoubleOffers ? ' DBL' : ' FAIL');
  out(
    table(
      ['rate/s', 'calls', 'achieved/s', 'ok caller/agent', 'failed c/a', 'double offers', 'retrans', 'INVITE→200 p50/p99 ms', 'queue wait p50/p99/max ms', 'peak busy', 'peak waiting', 'node CPU', 'drachtio CPU', 'sipp CPU', 'redis CPU', 'machine busy'],
      r.steps.map((s) => [
        `${fmt(s.rate)}${verdict(s)}`,
        fmt(s.calls),
        fmt(s.achievedPerSec, 1),
        `${fmt(s.callerOk)}/${fmt(s.agentOk)}`,
        `${fmt(s.callerFailed)}/${fmt(s.agentFailed + s.agentOpen)}`,
        fmt(s.doubleOffers),
        fmt(s.retransmissions),
        `${fmt(s.answerP50Ms)}/${fmt(s.answerP99Ms)}`,
        `${fmt(s.waitP50Ms)}/${fmt(s.waitP99Ms)}/${fmt(s.waitMaxMs)}`,
        fmt(s.peakBusyAgents),
        fmt(s.peakWaiting),
        pct(s.nodeCpuPct),
        pct(s.drachtioCpuPct),
        pct(s.sippCpuPct),
        pct(s.redisCpuPct),
        pct(s.machineCpuPct),
      ]),
    ),
  );
  out('  (FAIL: a failed call; DBL: failed only by double offers, an agent offered a second call while on one; failed c/a: caller calls failed / agent calls failed or never released; CPU: % of one core; machine busy: % of all cores, other work included)\n');
  /** CPU ms per placed call of a process at `cpuPct` of a core during step `k`. */
  const perCall = (cpuPct: number, k: QueueStep): string => fmt(((cpuPct / 100) * k.wallSec * 1000) / k.calls, 2);
  const line = (name: string, k: QueueStep | undefined, next: QueueStep | undefined): void => {
    if (k === undefined) {
      out(`\n  ${name}: none (the first step, ${fmt(r.steps[0]?.rate ?? NaN)} calls/s, failed)\n`);
      return;
    }
    const why =
      next !== undefined
        ? ` (next step ${fmt(next.rate)} calls/s failed)`
        : k === r.steps.at(-1) && r.steps.length === r.rates.length
          ? ' (every step passed: the real knee is higher)'
          : ' (the ramp stopped there: not the limit)';
    out(
      `\n  ${name}: ${fmt(k.rate)} calls/s${why}: ` +
        `${fmt(k.answered)} calls completed, INVITE→200 p50 ${fmt(k.answerP50Ms)} / p99 ${fmt(k.answerP99Ms)} ms, queue wait p50 ${fmt(k.waitP50Ms)} / p99 ${fmt(k.waitP99Ms)} ms, node CPU ${pct(k.nodeCpuPct)}\n` +
        `    CPU per queue call: node ${perCall(k.nodeCpuPct, k)} ms, drachtio ${perCall(k.drachtioCpuPct, k)} ms, redis ${perCall(k.redisCpuPct, k)} ms, sipp (both sides) ${perCall(k.sippCpuPct, k)} ms\n`,
    );
  };
  line('knee (no failed call)', r.knee, r.firstFailure);
  if (r.capacityKnee !== r.knee) line('capacity knee (double offers aside)', r.capacityKnee, r.firstOtherFailure);
  out(`  limited by: ${r.limitedBy}\n`);
  const s = r.sanity;
  out(
    `  after the run: agents ${JSON.stringify(s.states)}, ${s.reserved} reserved, ${s.waitingTasks} tasks waiting; queue counters entered ${s.counters.entered}, answered ${s.counters.answered}, ` +
      `abandoned ${s.counters.abandoned}, max-wait ${s.counters.timedOut}, handled ${s.counters.handled}; sipp calls placed ${s.sipp.callsPlaced}, caller ok ${s.sipp.callerOk} / failed ${s.sipp.callerFailed}, ` +
      `agent ok ${s.sipp.agentOk} / failed ${s.sipp.agentFailed} / never released ${s.sipp.agentOpen}: ${s.consistent ? 'consistent' : `INCONSISTENT (${s.problems.join('; ')})`}\n`,
  );
  for (const st of r.steps) {
    const errs = Object.entries(st.appErrors);
    if (errs.length > 0) out(`    ${fmt(st.rate)}/s app log: ${errs.map(([m, n]) => `${n} × ${m}`).join('; ').slice(0, 600)}\n`);
  }
  const unexplained = new Set(r.steps.filter((st) => st.failures.length > 0 && !st.onlyDoubleOffers).map((st) => `${st.rate}/s:`));
  for (const e of r.errors.filter((x) => !/^\d+(\.\d+)?\/s:/.test(x) || unexplained.has(x.slice(0, x.indexOf(':') + 1))).slice(0, 3)) out(`    ${e.slice(0, 1200).replace(/\n/g, '\n    ')}\n`);
}
