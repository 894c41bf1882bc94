/**
 * Part "vs-callcenter" (issue "performance", item 1): ccswitch side by side with FreeSWITCH's
 * own mod_callcenter, and with the limit of the same two legs and conference without any
 * queueing logic, on the same machine in the same run.
 *
 * Three systems, each in turn, with the same FreeSWITCH binary (the one on PATH), the same
 * sipp callers (bench/scenarios/cc-caller.xml), the same auto-answering sipp agents
 * (cc-agent-uas.xml: every agent's contact is that one UAS), the same queue (8000, longest
 * idle, N agents, no ring delay, wrap-up 0):
 * - `mod_callcenter`: sipp → FreeSWITCH (bench/callcenter/: profile `cc`, a dialplan that
 *   answers and runs `callcenter 8000@default`); agents and tiers added over the event socket,
 *   each agent's contact `sofia/cc/sip:aN@<uas>`.
 * - `ccswitch`: sipp → drachtio-server → ccswitch (this process) → FreeSWITCH
 *   (config/freeswitch/, through media/fsmrf.ts); the agents register with digest REGISTERs
 *   whose Contact is the UAS, and log in Ready.
 * - `limit`: sipp → drachtio-server → bench/limitApp.ts (this process) → the same FreeSWITCH
 *   config: answer into a conference, call the next agent round-robin, no Redis, no state.
 * Every FreeSWITCH runs with the same raised session limits (max-sessions, sessions-per-second:
 * the default 30/s would be every system's knee), every sipp with a large socket buffer.
 *
 * Each system is ramped in fixed-rate steps (sipp -r for `stepSec` seconds); a step fails on
 * the first failed call: a caller's failure (non-2xx, timeout, unexpected message), an agent's
 * failure (a CANCEL: the offer was withdrawn), an agent call never released, or a caller
 * whose number reached no agent's phone before it hung up `talkMs` after being answered (all
 * three answer before queueing, so the caller's sipp alone cannot tell). The knee is the
 * highest step below the first failed one.
 *
 * Offer latency: the wall clock at which the caller sends its INVITE, and at which the agent's
 * INVITE for that caller arrives at the UAS (sipp `gettimeofday` in both, logged with the
 * caller's number: the From user of the agent INVITE for mod_callcenter and the limit, the
 * task of ccswitch's X-CCS-Task header mapped to its caller through the `queue.caller` events).
 * CPU per call of every process: this process (the app, for ccswitch and the limit),
 * FreeSWITCH, drachtio-server, redis-server and both sipps, over the caller's run.
 */
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Srf from 'drachtio-srf';
import type { Redis } from 'ioredis';
import { createApp, type App } from '../app/createApp';
import type { SrfLike } from '../app/sip/types';
import { parseEvent } from '../lib/events';
import { createLogger } from '../lib/logger';
import { callCenterKeys } from '../lib/store/keys';
import { createRedis } from '../lib/store/redis';
import { createFsmrfMediaServer, type FsmrfMediaServer } from '../media/fsmrf';
import { testConfig } from '../test/helpers/config';
import { startFreeSwitch, type FreeSwitchServer } from '../test/helpers/freeswitch';
import { freePort } from '../test/helpers/redisServer';
import { startSipp, stopSipp, type Sipp, type SippRun } from '../test/helpers/sippProcess';
import { attachLimitApp } from './limitApp';
import { failedKinds, LogTally, machineCpu, sippVersion, stat } from './queueBench';
import { onPath, procCpu, startQuietDrachtio, type Drachtio } from './sipBench';
import { CpuMeter, fmt, out, percentile, redisCpuMeter, table } from './stats';

/** Defaults of {@link VsCallcenterOptions}. */
export const VS_CALLCENTER_DEFAULTS = {
  /** Enough for ~200 calls/s with 2 s of talk (an agent is busy for the talk time less the wait). */
  agents: 500,
  rates: [10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 180, 220],
  /** Finer steps after the first failure: the gap to the last passed step in this many parts. */
  refine: 5,
  stepSec: 10,
  talkMs: 2000,
} as const;

/** Settings of the part. */
export interface VsCallcenterOptions {
  redisUrl: string;
  /** A connection for the bench's own reads (ccswitch's Redis is this server). */
  admin: Redis;
  agents?: number;
  rates?: readonly number[];
  refine?: number;
  stepSec?: number;
  /** Caller talk time from its ACK to its BYE, ms: an agent must be reached within it. */
  talkMs?: number;
  /** Only these systems (default all three, in the order mod_callcenter, ccswitch, limit). */
  systems?: readonly SystemId[];
}

/** The systems compared. */
export type SystemId = 'mod_callcenter' | 'ccswitch' | 'limit';
export const SYSTEMS: readonly SystemId[] = ['mod_callcenter', 'ccswitch', 'limit'];

/** One fixed-rate step of one system. */
export interface VsStep {
  rate: number;
  calls: number;
  callerOk: number;
  callerFailed: number;
  agentOk: number;
  agentFailed: number;
  /** Agent calls never released (still open when the UAS was stopped). */
  agentOpen: number;
  /** Callers whose number reached an agent's phone before they hung up. */
  reached: number;
  /** Callers whose first agent INVITE arrived only after their BYE (counted as not reached). */
  late: number;
  /** Agent INVITEs whose caller could not be told (none expected). */
  unmatched: number;
  /** Caller's INVITE → the agent's INVITE, ms, over the callers reached. */
  offerP50Ms: number;
  offerP99Ms: number;
  offerMaxMs: number;
  /** Wall time of the caller's run, s (the CPU figures' interval). */
  wallSec: number;
  /** CPU, % of one core, over the caller's run, by process (node, freeswitch, drachtio, redis, sipp). */
  cpuPct: Record<string, number>;
  /** The whole machine's CPU busy over the same interval, % of all cores. */
  machineCpuPct: number;
  /** The system's own error log lines of this step, by message. */
  appErrors: Record<string, number>;
  failures: string[];
}

/** One system's ramp. */
export interface VsSystemResult {
  id: SystemId;
  label: string;
  steps: VsStep[];
  /** Highest step below the first failed one (undefined: the first step failed). */
  knee: VsStep | undefined;
  firstFailure: VsStep | undefined;
  /** Every step passed: the knee is at or above the last rate. */
  open: boolean;
  errors: string[];
}

/** Everything the part measured. */
export interface VsCallcenterResult {
  skipped?: undefined;
  agents: number;
  stepSec: number;
  talkMs: number;
  sipp: string;
  drachtio: string;
  freeswitch: string;
  systems: VsSystemResult[];
  /** Knee ratios (undefined where a system did not run or had no knee). */
  kneeOverModCallcenter: number | undefined;
  kneeOverLimit: number | undefined;
  /**
   * Offer p99 of ccswitch and mod_callcenter at every rate both ran and passed; `atKnee` marks
   * the lower knee's own step (that system is saturated there: its next step failed).
   */
  common: { rate: number; ccswitchP99Ms: number; modCallcenterP99Ms: number; atKnee: boolean }[];
  verdicts: { knee2x: string; knee08Limit: string; p99: string };
}

/** Why the part did not run. */
export interface VsCallcenterSkipped {
  skipped: string;
}

const SCENARIOS = path.join(__dirname, 'scenarios');
const CC = 'default';
const QUEUE = '8000';
/** FreeSWITCH's session limits for every system: well above any knee this machine reaches. */
const FS_ENV = { CCS_FS_MAX_SESSIONS: '20000', CCS_FS_SESSIONS_PER_SECOND: '10000' } as const;
/** RTP ports per FreeSWITCH: two per channel, three channels per ccswitch call. */
const FS_RTP_PORTS = 16000;
/** sipp's socket buffers (-buff_size), bytes: a burst of retransmissions must not be dropped by sipp's own socket. */
const SIPP_BUFF = String(8 * 1024 * 1024);
const SETTLE_TIMEOUT_MS = 30000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A system ready to take callers. */
interface SystemUnderTest {
  id: SystemId;
  label: string;
  /** host:port the callers dial. */
  target: string;
  /** Processes measured besides this one, sipp and redis-server. */
  procs: { name: string; pid: number }[];
  /** The drachtio-server's version, where there is one. */
  drachtio?: string;
  /** Called before each step's callers. */
  beginStep(): Promise<void>;
  /** The caller number of each agent INVITE (From user, X-CCS-Task) of the step. */
  callersOf(invites: readonly AgentInvite[]): Promise<(string | undefined)[]>;
  /** Resolves with '' once nothing of the step's calls is left, or why not after a timeout. */
  settle(): Promise<string>;
  /** The system's error log lines since the last call. */
  takeErrors(): Record<string, number>;
  stop(): Promise<void>;
}

/** An agent INVITE as the UAS logged it. */
interface AgentInvite {
  from: string;
  task: string;
  atMs: number;
}

/** FreeSWITCH's channel count (`show channels count`: "N total."). */
async function fsChannels(fs: FreeSwitchServer): Promise<number> {
  const m = /(\d+) total/.exec(await fs.api('show channels count'));
  return m === null ? NaN : Number(m[1]);
}

/** Polls `check` every 100 ms until it returns '' (done) or `SETTLE_TIMEOUT_MS` passed; resolves with its last answer. */
async function until(check: () => Promise<string>): Promise<string> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const why = await check();
    if (why === '' || Date.now() > deadline) return why;
    await sleep(100);
  }
}

/** Runs `fn` over `items`, `n` at a time. */
async function inBatches<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(fn));
}

/** FreeSWITCH with mod_callcenter and queue 8000 holding every agent; a string says why it cannot run. */
async function startModCallcenter(agents: readonly string[], uasPort: number): Promise<SystemUnderTest | string> {
  const fs = await startFreeSwitch({ conf: path.join(__dirname, 'callcenter'), profile: 'cc', rtpPorts: FS_RTP_PORTS, env: FS_ENV });
  try {
    if ((await fs.api('module_exists mod_callcenter')).trim() !== 'true') {
      await fs.stop();
      return 'the FreeSWITCH on PATH has no mod_callcenter';
    }
    await inBatches(agents, 10, async (a) => {
      for (const cmd of [
        `agent add ${a} callback`,
        `agent set contact ${a} sofia/cc/sip:${a}@127.0.0.1:${uasPort}`,
        // As ccswitch's queue in this bench: no wrap-up, and no pause after a failed offer.
        `agent set wrap_up_time ${a} 0`,
        `agent set reject_delay_time ${a} 0`,
        `agent set busy_delay_time ${a} 0`,
        `agent set no_answer_delay_time ${a} 0`,
        `agent set status ${a} Available`,
        `tier add ${QUEUE}@default ${a} 1 1`,
      ]) {
        const r = await fs.api(`callcenter_config ${cmd}`);
        if (!r.startsWith('+OK')) throw new Error(`callcenter_config ${cmd}: ${r.trim()}`);
      }
    });
    /**
     * Members still waiting or being offered. mod_callcenter keeps a caller who hung up as an
     * `Abandoned` member for the queue's discard-abandoned-after (60 s): those are over.
     */
    const members = async (): Promise<Record<string, number>> => {
      const list = await fs.api(`callcenter_config queue list members ${QUEUE}@default`);
      const [head = '', ...rows] = list.trim().split('\n').filter((l) => l.includes('|'));
      const col = head.split('|').indexOf('state');
      const byState: Record<string, number> = {};
      for (const r of rows) {
        const st = r.split('|')[col] ?? '?';
        if (st !== 'Abandoned') byState[st] = (byState[st] ?? 0) + 1;
      }
      return byState;
    };
    return {
      id: 'mod_callcenter',
      label: 'mod_callcenter (FreeSWITCH alone)',
      target: `127.0.0.1:${fs.sipPort}`,
      procs: [{ name: 'freeswitch', pid: fs.pid }],
      beginStep: () => Promise.resolve(),
      callersOf: (invites) => Promise.resolve(invites.map((i) => i.from)),
      settle: () =>
        until(async () => {
          const [ch, m] = [await fsChannels(fs), await members()];
          return ch === 0 && Object.keys(m).length === 0 ? '' : `${ch} FreeSWITCH channels, queue members left ${JSON.stringify(m)}`;
        }),
      takeErrors: () => ({}),
      stop: () => fs.stop(),
    };
  } catch (err) {
    await fs.stop();
    throw err;
  }
}

/** drachtio-server + ccswitch (this process) + FreeSWITCH, the agents registered on the UAS and Ready. */
async function startCcswitch(o: { redisUrl: string; admin: Redis }, agents: readonly string[], uasPort: number, dir: string): Promise<SystemUnderTest> {
  const fs = await startFreeSwitch({ rtpPorts: FS_RTP_PORTS, env: FS_ENV });
  let drachtio: Drachtio | undefined;
  let app: App | undefined;
  const appConn = createRedis(o.redisUrl);
  let media: FsmrfMediaServer | undefined;
  const stop = async (): Promise<void> => {
    await app?.stop();
    // As app/main.ts: the media adapter is the app's dependency, stopped after it.
    await media?.stop();
    appConn.disconnect();
    await drachtio?.stop();
    await fs.stop();
  };
  try {
    drachtio = await startQuietDrachtio();
    const config = {
      ...testConfig({
        redisUrl: o.redisUrl,
        extraAgents: agents.length,
        wrapUpSeconds8000: 0,
        sip: { trunks: { bench: { addresses: ['127.0.0.1'], callcenter: CC } } },
        drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret },
      }),
      freeswitch: fs.esl,
    };
    const keys = callCenterKeys(config.redis.keyPrefix, CC);
    if ((await o.admin.exists(keys.agent(agents[0]!), keys.queueStats(QUEUE))) > 0) throw new Error(`needs call center '${CC}' empty in Redis`);
    const tally = new LogTally();
    const logger = createLogger('warn', {}, tally);
    const srf = new Srf() as unknown as SrfLike & EventEmitter;
    const fsmrf = createFsmrfMediaServer({ srf, freeswitch: config.freeswitch, logger });
    media = fsmrf;
    const up = once(srf, 'connect') as Promise<[Error | null]>;
    app = await createApp(config, { redis: appConn, logger, srf, media: fsmrf, probes: { media: () => fsmrf.health() } });
    await app.start();
    const [err] = await up;
    if (err) throw err;
    await fsmrf.whenAvailable(30000);
    const target = `127.0.0.1:${drachtio.sipPort}`;

    const password = config.callcenters[CC]!.agents[agents[0]!]!.password;
    const users = path.join(dir, 'agents.csv');
    writeFileSync(users, ['SEQUENTIAL', ...agents.map((a) => `${a};${password}`)].join('\n') + '\n');
    const reg = await startSipp([
      target, '-sf', path.join(SCENARIOS, 'queue-register.xml'), '-inf', users, '-key', 'uas_port', String(uasPort),
      '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1',
      '-r', '200', '-m', String(agents.length), '-timeout', '60s', '-timeout_error', '-recv_timeout', '5000',
    ]).done;
    if (reg.code !== 0 || stat(reg, 'SuccessfulCall') !== agents.length) {
      throw new Error(`agent REGISTERs: sipp exited ${reg.code}, ${stat(reg, 'SuccessfulCall')}/${agents.length} succeeded\n${reg.errors}`);
    }
    for (const a of agents) await app.engine.login(CC, a);

    let seq0 = 0;
    const eventSeq = async (): Promise<number> => Number((await o.admin.get(keys.eventSeq)) ?? 0);
    const reserved = async (): Promise<number> => {
      const pipe = o.admin.pipeline();
      for (const a of agents) pipe.exists(keys.reservation(a));
      return ((await pipe.exec()) ?? []).filter(([, v]) => v === 1).length;
    };
    return {
      id: 'ccswitch',
      label: 'ccswitch (drachtio-server + ccswitch + FreeSWITCH)',
      target,
      procs: [
        { name: 'freeswitch', pid: fs.pid },
        { name: 'drachtio', pid: drachtio.pid },
      ],
      drachtio: drachtio.version,
      beginStep: async () => {
        seq0 = await eventSeq();
      },
      callersOf: async (invites) => {
        const callerOf = new Map<string, string>();
        for (const e of (await o.admin.xrange(keys.events, `(${seq0}-0`, '+')).map(parseEvent)) {
          const ev = e as { type: string; reason?: unknown; task?: unknown; caller?: unknown };
          if (ev.type === 'queue.caller' && ev.reason === 'enqueued') callerOf.set(String(ev.task), String(ev.caller));
        }
        return invites.map((i) => callerOf.get(i.task));
      },
      settle: () =>
        until(async () => {
          const [ready, waiting, res, ch] = [await o.admin.zcard(keys.queueReady(QUEUE)), await o.admin.zcard(keys.queueTasks(QUEUE)), await reserved(), await fsChannels(fs)];
          return ready === agents.length && waiting === 0 && res === 0 && ch === 0 ? '' : `${ready}/${agents.length} Ready, ${waiting} waiting, ${res} reserved, ${ch} FreeSWITCH channels`;
        }),
      takeErrors: () => tally.take(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** drachtio-server + the limit app (this process) + FreeSWITCH. */
async function startLimit(agents: readonly string[], uasPort: number): Promise<SystemUnderTest> {
  const fs = await startFreeSwitch({ rtpPorts: FS_RTP_PORTS, env: FS_ENV });
  let drachtio: Drachtio | undefined;
  const srf = new Srf() as unknown as SrfLike & EventEmitter;
  const tally = new LogTally();
  const media = createFsmrfMediaServer({ srf, freeswitch: fs.esl, logger: createLogger('warn', {}, tally) });
  const stop = async (): Promise<void> => {
    await media.stop();
    srf.disconnect();
    await drachtio?.stop();
    await fs.stop();
  };
  try {
    drachtio = await startQuietDrachtio();
    const up = once(srf, 'connect') as Promise<[Error | null]>;
    srf.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
    const [err] = await up;
    if (err) throw err;
    media.start();
    await media.whenAvailable(30000);
    const app = attachLimitApp(srf, media, { agents: agents.map((a) => `sip:${a}@127.0.0.1:${uasPort}`), domain: '127.0.0.1' });
    return {
      id: 'limit',
      label: 'limit (drachtio-server + trivial srf app + FreeSWITCH conference, no queueing)',
      target: `127.0.0.1:${drachtio.sipPort}`,
      procs: [
        { name: 'freeswitch', pid: fs.pid },
        { name: 'drachtio', pid: drachtio.pid },
      ],
      drachtio: drachtio.version,
      beginStep: () => Promise.resolve(),
      callersOf: (invites) => Promise.resolve(invites.map((i) => i.from)),
      settle: () =>
        until(async () => {
          const ch = await fsChannels(fs);
          return app.active === 0 && ch === 0 ? '' : `${app.active} calls open, ${ch} FreeSWITCH channels`;
        }),
      takeErrors: () => {
        const r = { ...tally.take(), ...Object.fromEntries(app.errors) };
        app.errors.clear();
        return r;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Caller INVITE times by caller number, from the caller's sipp log ("I <number> <s> <us>"). */
function callerInvites(run: SippRun): Map<string, number> {
  return callerLog(run, 'I');
}

/** When each caller sent its BYE (the "B <number> <s> <us>" lines), ms. */
function callerByes(run: SippRun): Map<string, number> {
  return callerLog(run, 'B');
}

function callerLog(run: SippRun, mark: 'I' | 'B'): Map<string, number> {
  const m = new Map<string, number>();
  const re = new RegExp(`^${mark} (\\S+) (\\S+) (\\S+)`);
  for (const line of run.logs.split('\n')) {
    const r = re.exec(line);
    if (r !== null && !m.has(r[1]!)) m.set(r[1]!, Number(r[2]) * 1000 + Number(r[3]) / 1000);
  }
  return m;
}

/** Agent INVITEs from the UAS log ("A <from> -<task> <s> <us>"). */
function agentInvites(run: SippRun): AgentInvite[] {
  const list: AgentInvite[] = [];
  for (const line of run.logs.split('\n')) {
    const r = /^A (\S*) -(\S*) (\S+) (\S+)/.exec(line);
    if (r !== null) list.push({ from: r[1]!, task: r[2]!, atMs: Number(r[3]) * 1000 + Number(r[4]) / 1000 });
  }
  return list;
}

/** Ramps one system until its first failed step. */
async function ramp(sys: SystemUnderTest, o: Required<Omit<VsCallcenterOptions, 'systems'>>, uasPort: number): Promise<VsSystemResult> {
  const steps: VsStep[] = [];
  const errors: string[] = [];
  let uas: Sipp | undefined;
  /** Runs one fixed-rate step; true if it passed. */
  const runStep = async (rate: number): Promise<boolean> => {
    const calls = Math.max(1, Math.round(rate * o.stepSec));
    await sys.beginStep();
    sys.takeErrors();
    uas = startSipp([
      sys.target, '-sf', path.join(SCENARIOS, 'cc-agent-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort()),
      '-t', 'u1', '-recv_timeout', '30000', '-trace_logs', '-buff_size', SIPP_BUFF,
    ]);
    // sipp has no readiness signal: give it the moment it needs to bind its port.
    await sleep(300);
    if (uas.proc.exitCode !== null) throw new Error(`agent UAS exited at once (${(await uas.done).output})`);

    const node = new CpuMeter();
    const rcpu = await redisCpuMeter(o.admin);
    const p0 = sys.procs.map((p) => procCpu(p.pid).self);
    const s0 = procCpu('self').children;
    const uas0 = procCpu(uas.proc.pid!).self;
    const m0 = machineCpu();
    const t0 = process.hrtime.bigint();
    const callerRun = await startSipp([
      sys.target, '-sf', path.join(SCENARIOS, 'cc-caller.xml'), '-s', QUEUE,
      '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1',
      '-r', String(rate), '-rp', '1000', '-m', String(calls), '-l', String(Math.max(1000, calls)), '-d', String(o.talkMs),
      '-timeout', `${o.stepSec + Math.ceil(o.talkMs / 1000) + 90}s`, '-timeout_error', '-recv_timeout', '10000',
      '-trace_logs', '-buff_size', SIPP_BUFF,
    ]).done;
    const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuPct: Record<string, number> = { node: node.pct(), redis: await rcpu.pct() };
    sys.procs.forEach((p, i) => (cpuPct[p.name] = ((procCpu(p.pid).self - p0[i]!) / wallSec) * 100));
    const uasCpu = procCpu(uas.proc.pid!).self - uas0;
    cpuPct.sipp = ((uasCpu + procCpu('self').children - s0) / wallSec) * 100;
    const m1 = machineCpu();
    const machineCpuPct = m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 : NaN;

    const settled = await sys.settle();
    const { run: agentRun, open: agentOpen } = await stopSipp(uas, 5000);
    uas = undefined;

    const sent = callerInvites(callerRun);
    const byes = callerByes(callerRun);
    const invites = agentInvites(agentRun);
    const callers = await sys.callersOf(invites);
    const firstOffer = new Map<string, number>();
    /** Callers whose first agent INVITE came after their BYE: they reached no one. */
    const late = new Set<string>();
    let unmatched = 0;
    invites.forEach((inv, i) => {
      const c = callers[i];
      if (c === undefined || !sent.has(c)) unmatched++;
      else if (!firstOffer.has(c)) {
        firstOffer.set(c, inv.atMs - sent.get(c)!);
        if (byes.has(c) && inv.atMs > byes.get(c)!) late.add(c);
      }
    });
    const lat = [...firstOffer.values()].sort((a, b) => a - b);
    const step: VsStep = {
      rate,
      calls,
      callerOk: stat(callerRun, 'SuccessfulCall'),
      callerFailed: stat(callerRun, 'FailedCall'),
      agentOk: stat(agentRun, 'SuccessfulCall'),
      agentFailed: stat(agentRun, 'FailedCall'),
      agentOpen,
      reached: firstOffer.size - late.size,
      late: late.size,
      unmatched,
      offerP50Ms: percentile(lat, 50),
      offerP99Ms: percentile(lat, 99),
      offerMaxMs: lat[lat.length - 1] ?? NaN,
      wallSec,
      cpuPct,
      machineCpuPct,
      appErrors: sys.takeErrors(),
      failures: [],
    };
    const f = step.failures;
    if (callerRun.code !== 0 || step.callerOk !== calls) f.push(`callers: sipp exited ${callerRun.code}, ${step.callerOk}/${calls} ok, ${step.callerFailed} failed${failedKinds(callerRun) ? ` (${failedKinds(callerRun)})` : ''}`);
    if (step.reached !== calls) f.push(`${calls - step.reached} of ${calls} callers reached no agent${late.size > 0 ? ` (${late.size} of them rang an agent only after hanging up)` : ''}`);
    if (step.agentFailed > 0 || step.agentOk !== firstOffer.size) f.push(`agents: ${step.agentOk} ok, ${step.agentFailed} failed${failedKinds(agentRun) ? ` (${failedKinds(agentRun)})` : ''} for ${firstOffer.size} callers offered`);
    if (agentOpen !== 0) f.push(`agents: ${agentOpen} calls never released`);
    if (unmatched > 0) f.push(`${unmatched} agent INVITEs for no known caller`);
    if (settled !== '') f.push(`not settled ${SETTLE_TIMEOUT_MS / 1000} s after the callers: ${settled}`);
    if (f.length > 0) {
      const detail = [callerRun.errors && `caller errors:\n${callerRun.errors.slice(0, 1200)}`, agentRun.errors && `agent errors:\n${agentRun.errors.slice(0, 1200)}`].filter(Boolean).join('\n');
      errors.push(`${rate}/s: ${f.join('; ')}${detail ? `\n${detail}` : ''}`);
    }
    steps.push(step);
    // Progress on stderr: a ramp takes minutes and prints its table only at the end.
    process.stderr.write(`  vs-callcenter ${sys.id} ${rate}/s: ${f.length === 0 ? 'ok' : `FAIL (${f.join('; ').slice(0, 300)})`}, offer p50 ${fmt(step.offerP50Ms)} / p99 ${fmt(step.offerP99Ms)} ms\n`);
    if (f.length > 0) return false;
    await sleep(1000);
    return f.length === 0;
  };
  try {
    // Coarse steps up to the first failure, then finer ones between the last passed step and
    // it: the coarse steps alone would put a knee of 19/s at 10/s.
    let passedRate = 0;
    let failedRate: number | undefined;
    for (const rate of o.rates) {
      if (!(await runStep(rate))) {
        failedRate = rate;
        break;
      }
      passedRate = rate;
    }
    if (failedRate !== undefined) {
      const fine = [...new Set(Array.from({ length: o.refine - 1 }, (_, k) => Math.round(passedRate + ((k + 1) * (failedRate - passedRate)) / o.refine)))];
      for (const rate of fine.filter((r) => r > passedRate && r < failedRate && r > 0)) if (!(await runStep(rate))) break;
    }
  } finally {
    if (uas !== undefined) await stopSipp(uas, 3000);
  }
  const failed = steps.filter((st) => st.failures.length > 0).sort((a, b) => a.rate - b.rate)[0];
  const knee = steps.filter((st) => st.failures.length === 0 && (failed === undefined || st.rate < failed.rate)).sort((a, b) => a.rate - b.rate).at(-1);
  return { id: sys.id, label: sys.label, steps: [...steps].sort((a, b) => a.rate - b.rate), knee, firstFailure: failed, open: failed === undefined, errors };
}

async function freeswitchVersion(): Promise<string> {
  return new Promise<string>((resolve) => {
    const p = spawn('freeswitch', ['-version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    p.stdout.on('data', (b: Buffer) => (s += b.toString()));
    p.on('close', () => resolve(/version:?\s*([\d.]+)/i.exec(s)?.[1] ?? '?'));
    p.on('error', () => resolve('?'));
  });
}

/** Measures the three systems, or says why it cannot run here. */
export async function runVsCallcenterBench(opts: VsCallcenterOptions): Promise<VsCallcenterResult | VsCallcenterSkipped> {
  const o = { ...VS_CALLCENTER_DEFAULTS, ...opts };
  const missing = ['freeswitch', 'drachtio', 'sipp'].filter((b) => !onPath(b));
  if (missing.length > 0) return { skipped: `${missing.join(', ')} not on PATH` };
  const agents = Array.from({ length: o.agents }, (_, i) => `a${i + 1}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'ccs-bench-vscc-'));
  const uasPort = await freePort();
  const results: VsSystemResult[] = [];
  const settings = { redisUrl: o.redisUrl, admin: o.admin, agents: o.agents, rates: o.rates, refine: o.refine, stepSec: o.stepSec, talkMs: o.talkMs };
  let drachtioVersion = '?';
  try {
    for (const id of opts.systems ?? SYSTEMS) {
      const sys =
        id === 'mod_callcenter' ? await startModCallcenter(agents, uasPort) : id === 'ccswitch' ? await startCcswitch(o, agents, uasPort, dir) : await startLimit(agents, uasPort);
      if (typeof sys === 'string') return { skipped: sys };
      drachtioVersion = sys.drachtio ?? drachtioVersion;
      try {
        results.push(await ramp(sys, settings, uasPort));
      } finally {
        await sys.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const by = (id: SystemId): VsSystemResult | undefined => results.find((r) => r.id === id);
  const [mcc, ccs, lim] = [by('mod_callcenter'), by('ccswitch'), by('limit')];
  const ratio = (a: VsSystemResult | undefined, b: VsSystemResult | undefined): number | undefined =>
    a?.knee === undefined || b?.knee === undefined ? undefined : a.knee.rate / b.knee.rate;
  const kneeOverModCallcenter = ratio(ccs, mcc);
  const kneeOverLimit = ratio(ccs, lim);
  const common: VsCallcenterResult['common'] = [];
  if (ccs?.knee !== undefined && mcc?.knee !== undefined) {
    // The rates both ran and passed (a finer step of one need not be a step of the other).
    const passedBelow = (r: VsSystemResult, below: number): Set<number> => new Set(r.steps.filter((s) => s.failures.length === 0 && s.rate <= below).map((s) => s.rate));
    const theirs = passedBelow(mcc, mcc.knee.rate);
    const lowerKnee = Math.min(ccs.knee.rate, mcc.knee.rate);
    for (const rate of [...passedBelow(ccs, ccs.knee.rate)].filter((x) => theirs.has(x)).sort((a, b) => a - b)) {
      const at = (r: VsSystemResult): VsStep => r.steps.find((s) => s.rate === rate)!;
      common.push({ rate, ccswitchP99Ms: at(ccs).offerP99Ms, modCallcenterP99Ms: at(mcc).offerP99Ms, atKnee: rate === lowerKnee });
    }
  }
  // The same load below saturation: every common rate but the lower knee's own step (at which
  // that system is saturated by definition); the knee's own step alone if there is no other.
  const loaded = common.filter((c) => !c.atKnee);
  const judged = loaded.length > 0 ? loaded : common;
  const v = (ok: boolean | undefined): string => (ok === undefined ? 'not measured' : ok ? 'meets target' : 'BELOW TARGET');
  return {
    agents: o.agents,
    stepSec: o.stepSec,
    talkMs: o.talkMs,
    sipp: await sippVersion(),
    drachtio: drachtioVersion,
    freeswitch: await freeswitchVersion(),
    systems: results,
    kneeOverModCallcenter,
    kneeOverLimit,
    common,
    verdicts: {
      knee2x: v(kneeOverModCallcenter === undefined ? undefined : kneeOverModCallcenter >= 2),
      knee08Limit: v(kneeOverLimit === undefined ? undefined : kneeOverLimit >= 0.8),
      p99: v(judged.length === 0 ? undefined : judged.every((c) => c.ccswitchP99Ms <= c.modCallcenterP99Ms)),
    },
  };
}

/** Prints the part (or a loud line when it was skipped). */
export function printVsCallcenterBench(r: VsCallcenterResult | VsCallcenterSkipped): void {
  if (r.skipped !== undefined) {
    out(`\n*** SKIPPED vs-callcenter: ${r.skipped} ***\n`);
    return;
  }
  out(
    `\nccswitch vs FreeSWITCH mod_callcenter, and the limit (FreeSWITCH ${r.freeswitch}, drachtio-server ${r.drachtio}, sipp ${r.sipp}, UDP): queue 8000 longest idle, ` +
      `${r.agents} agents on one auto-answering sipp UAS, wrap-up 0, talk ${fmt(r.talkMs / 1000, 1)} s from the answer, ${r.stepSec} s per fixed-rate step\n`,
  );
  const pct = (n: number | undefined): string => (n === undefined ? '-' : `${fmt(n)}%`);
  for (const s of r.systems) {
    out(`\n  ${s.label}\n\n`);
    out(
      table(
        ['rate/s', 'calls', 'ok caller/agent', 'failed c/a', 'not reached', 'offer p50/p99/max ms', 'node', 'freeswitch', 'drachtio', 'redis', 'sipp', 'machine busy'],
        s.steps.map((st) => [
          `${fmt(st.rate)}${st.failures.length > 0 ? ' FAIL' : ''}`,
          fmt(st.calls),
          `${fmt(st.callerOk)}/${fmt(st.agentOk)}`,
          `${fmt(st.callerFailed)}/${fmt(st.agentFailed + st.agentOpen)}`,
          fmt(st.calls - st.reached),
          `${fmt(st.offerP50Ms)}/${fmt(st.offerP99Ms)}/${fmt(st.offerMaxMs)}`,
          pct(st.cpuPct.node),
          pct(st.cpuPct.freeswitch),
          pct(st.cpuPct.drachtio),
          pct(st.cpuPct.redis),
          pct(st.cpuPct.sipp),
          pct(st.machineCpuPct),
        ]),
      ),
    );
    const k = s.knee;
    if (k === undefined) out(`  knee: none (the first step failed)\n`);
    else {
      const perCall = (name: string): string => (k.cpuPct[name] === undefined ? '-' : fmt(((k.cpuPct[name] / 100) * k.wallSec * 1000) / k.calls, 2));
      out(
        `  knee: ${fmt(k.rate)} calls/s${s.open ? ' (every step passed: the real knee is higher)' : ` (next step ${fmt(s.firstFailure!.rate)}/s failed)`}; offer p50 ${fmt(k.offerP50Ms)} / p99 ${fmt(k.offerP99Ms)} ms; ` +
          `CPU ms per call: node ${perCall('node')}, freeswitch ${perCall('freeswitch')}, drachtio ${perCall('drachtio')}, redis ${perCall('redis')}, sipp ${perCall('sipp')}\n`,
      );
    }
    for (const st of s.steps) {
      const errs = Object.entries(st.appErrors);
      if (errs.length > 0) out(`    ${fmt(st.rate)}/s log: ${errs.map(([m, n]) => `${n} × ${m}`).join('; ').slice(0, 600)}\n`);
    }
    for (const e of s.errors.slice(0, 2)) out(`    ${e.slice(0, 1500).replace(/\n/g, '\n    ')}\n`);
  }
  const x = (n: number | undefined): string => (n === undefined ? '-' : `${n.toFixed(2)}×`);
  out(`\n  ccswitch knee / mod_callcenter knee = ${x(r.kneeOverModCallcenter)} (target ≥ 2: ${r.verdicts.knee2x})\n`);
  out(`  ccswitch knee / limit knee = ${x(r.kneeOverLimit)} (target ≥ 0.8: ${r.verdicts.knee08Limit})\n`);
  if (r.common.length > 0) {
    const at = r.common.map((c) => `${fmt(c.rate)}/s${c.atKnee ? ' (knee)' : ''} ${fmt(c.ccswitchP99Ms)} vs ${fmt(c.modCallcenterP99Ms)} ms`).join(', ');
    out(`  offer p99, ccswitch vs mod_callcenter, at the rates both passed: ${at} (target ccswitch ≤ mod_callcenter below the lower knee: ${r.verdicts.p99})\n`);
  }
  else out(`  offer p99: not compared (no rate at which both passed)\n`);
}
