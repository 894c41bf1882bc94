/**
 * Part 3: feature access codes through a real drachtio-server, dialed by sipp, against a fair
 * baseline on the same drachtio-server (bench/facBaseline.ts: a drachtio-srf app doing the same
 * exchange — 407, digest check against an in-memory password, 200 with the null SDP, ACK, BYE
 * — with no Redis and no state), alternated round by round in the same run. A trivial app that
 * rejects every INVITE at once (404) is measured too, as the floor of a SIP transaction.
 *
 * Both sides are loaded the same way: sipp in a closed loop with a fixed number of calls in
 * flight (`-users`), over UDP, reading the same injection file (agent, password, dial string).
 * One unit is one INVITE transaction that the target decides: for ccswitch the authenticated
 * FAC INVITE (→ 200 with a null SDP, since there is no media server), for the baseline the
 * INVITE (→ 404). A FAC call also carries its 407 challenge round trip and the ACK/BYE that
 * release it, so the unit's cost is what a desk phone's feature code really costs the system.
 *
 * Every measured FAC is a real transition: the injection file lists every agent with `*37*4`
 * (not ready, reason rest), then every agent again with `*36` (ready); sipp reads it in order
 * and a round is a whole number of passes, so each FAC changes state and a round ends with
 * every agent Ready again. The operation-log counter must grow by exactly one per FAC.
 *
 * Only one app is connected to the drachtio-server at a time (drachtio would otherwise
 * share INVITEs between them): each round connects its target, runs sipp, and disconnects.
 *
 * A third target breaks a FAC down: ccswitch answering only the first, unauthenticated INVITE
 * of a FAC call with its 407 challenge. CPU per unit of every process (this one, which runs
 * the app under test, drachtio-server, sipp, redis-server) shows where a unit's work is done;
 * the ratio of CPU per unit is steadier than the rate ratio when other work shares the cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSipp, type SippRun } from '../test/helpers/sippProcess';
import Srf from 'drachtio-srf';
import type { Redis } from 'ioredis';
import { createApp, type App } from '../app/createApp';
import type { SrfLike } from '../app/sip/types';
import { AgentEngine } from '../lib/agent/engine';
import { createLogger } from '../lib/logger';
import { callCenterKeys } from '../lib/store/keys';
import { createRedis } from '../lib/store/redis';
import { NO_MEDIA } from '../media/none';
import { testConfig } from '../test/helpers/config';
import { freePort } from '../test/helpers/redisServer';
import { CpuMeter, median, percentile, redisCpuMeter } from './stats';
import { attachFacBaseline } from './facBaseline';

/** Settings of part 3. */
export interface SipBenchOptions {
  redisUrl: string;
  admin: Redis;
  /** Agents a1..aN in queue 8000, each dialed twice per pass (*37*4, then *36). */
  agents: number;
  /** Calls in flight (sipp -users), the same for both targets. */
  concurrency: number;
  /** Target seconds per measured round (the call count is sized from the warm-up rate). */
  durationSec: number;
  rounds: number;
}

/** One sipp run against one target. */
export interface SipRound {
  calls: number;
  /** Completed units (final responses of the measured INVITE) per wall second. */
  invitesPerSec: number;
  /** The measured INVITE → final response, whole ms as sipp times it. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** FAC only: first INVITE → 407, and our ACK of the 200 → ccswitch's BYE. */
  challengeP50Ms?: number;
  challengeP99Ms?: number;
  releaseP50Ms?: number;
  releaseP99Ms?: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** FAC only: operation-log entries written during the round (must equal calls). */
  transitions?: number;
  /** CPU, % of one core, over the sipp run: this process (the app), drachtio-server, sipp, redis-server. */
  nodeCpuPct: number;
  drachtioCpuPct: number;
  sippCpuPct: number;
  redisCpuPct: number;
}

/** A target's rounds and medians. */
export interface SipTargetResult {
  id: TargetId;
  label: string;
  /** SIP messages through drachtio-server per unit (100 Trying included). */
  messagesPerUnit: number;
  warmup: SipRound;
  rounds: SipRound[];
  median: Omit<SipRound, 'calls' | 'successful' | 'failed' | 'retransmissions' | 'transitions'>;
  /** CPU ms per unit, from the medians: where a unit's work is done. */
  cpuMsPerUnit: { node: number; drachtio: number; sipp: number; redis: number; total: number };
}

/** Everything part 3 measured. */
export interface SipBenchResult {
  skipped?: undefined;
  agents: number;
  concurrency: number;
  durationSec: number;
  rounds: number;
  drachtio: string;
  sipp: string;
  fac: SipTargetResult;
  /** The fair baseline: the same exchange as a FAC without Redis or state. */
  baseline: SipTargetResult;
  reject: SipTargetResult;
  /** Breakdown: ccswitch answering the first, unauthenticated INVITE of a FAC with 407. */
  challenge: SipTargetResult;
  /** Median FAC units/s over median fair-baseline units/s (target ≥ 0.8). */
  ratio: number;
  /** Fair-baseline CPU per unit over FAC CPU per unit (all four processes): the ratio the machine's spare CPU would give. */
  cpuRatio: number;
  /** Median FAC units/s over the 404 app's (the old baseline, 4 messages against 10). */
  rejectRatio: number;
  /** Failed calls, retransmissions, FACs that were not a transition: all runs, warm-up included. */
  failedTotal: number;
  retransmissionsTotal: number;
  noopTotal: number;
  errors: string[];
}

/** Why part 3 did not run. */
export interface SipBenchSkipped {
  skipped: string;
}

const SCENARIOS = path.join(__dirname, 'scenarios');
const CLK_TCK = 100; // Linux USER_HZ: /proc/<pid>/stat times are in 1/100 s.

/** Whether `bin` is an executable file on PATH. */
export function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** utime+stime (s) of a process, and of its reaped children, from /proc (0 where unavailable). */
export function procCpu(pid: number | 'self'): { self: number; children: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command name start at field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    const n = (field: number): number => Number(f[field - 3]);
    return { self: (n(14) + n(15)) / CLK_TCK, children: (n(16) + n(17)) / CLK_TCK };
  } catch {
    return { self: 0, children: 0 };
  }
}

/** A running drachtio-server. */
/** A drachtio-server started for a benchmark. */
export interface Drachtio {
  pid: number;
  adminPort: number;
  sipPort: number;
  secret: string;
  version: string;
  stop(): Promise<void>;
}

/**
 * Starts drachtio-server like test/helpers/drachtio.ts (same config file, free loopback
 * ports, readiness from its own log line) but at log level notice: at info it writes every
 * SIP message to stderr, which would make this a benchmark of its logging (and the test
 * helper keeps the whole log in memory).
 */
export async function startQuietDrachtio(): Promise<Drachtio> {
  const [adminPort, sipPort] = [await freePort(), await freePort()];
  const secret = 'bench-secret';
  const conf = path.join(__dirname, '../config/drachtio/drachtio.conf.xml');
  const proc: ChildProcess = spawn(
    'drachtio',
    ['-f', conf, '--address', '127.0.0.1', '--port', String(adminPort), '--secret', secret, '--contact', `sip:127.0.0.1:${sipPort};transport=udp`, '--loglevel', 'notice', '--sofia-loglevel', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
  );
  let log = '';
  const keep = (b: Buffer): void => {
    if (log.length < 20000) log += b.toString();
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drachtio not ready:\n${log}`)), 15000);
    const check = (): void => {
      if (log.includes('Starting sofia event loop')) {
        clearTimeout(timer);
        proc.stderr!.off('data', check);
        resolve();
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`drachtio exited with ${code}:\n${log}`));
    });
  });
  return {
    pid: proc.pid!,
    adminPort,
    sipPort,
    secret,
    version: /Starting drachtio version (\S+)/.exec(log)?.[1] ?? '?',
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

type TargetId = 'fac' | 'baseline' | 'reject' | 'challenge';

/** A target app that can be connected to drachtio-server for a round and disconnected after. */
interface Target {
  id: TargetId;
  label: string;
  scenario: string;
  /** The response time name (sipp rtd) of the measured INVITE. */
  rtd: string;
  messagesPerUnit: number;
  attach(): Promise<void>;
  detach(): Promise<void>;
}

async function connected(srf: EventEmitter): Promise<void> {
  const [err] = (await once(srf, 'connect')) as [Error | null];
  if (err) throw err;
}

/** Runs sipp once: `calls` calls, `concurrency` in flight, the injection file read in order. */
async function runSipp(o: { scenario: string; target: string; users: string; concurrency: number; calls: number; timeoutSec: number }): Promise<SippRun> {
  const [port, mediaPort] = [await freePort(), await freePort()];
  // startSipp adds the stat, error and scratch-directory options and reads them back.
  return startSipp([
    o.target,
    '-sf', path.join(SCENARIOS, o.scenario),
    '-inf', o.users,
    '-i', '127.0.0.1',
    '-p', String(port),
    '-mp', String(mediaPort),
    '-t', 'u1',
    '-users', String(o.concurrency),
    '-m', String(o.calls),
    '-timeout', `${o.timeoutSec}s`,
    '-timeout_error',
    '-recv_timeout', '8000',
    '-trace_rtt', '-rtt_freq', '1',
  ]).done;
}

/** Sorted response times of one rtd. */
const times = (run: SippRun, rtd: string): number[] => (run.rtt.get(rtd) ?? []).map(([, ms]) => ms).sort((a, b) => a - b);

/** Measures part 3, or says why it cannot run here. */
export async function runSipBench(o: SipBenchOptions): Promise<SipBenchResult | SipBenchSkipped> {
  const missing = ['drachtio', 'sipp'].filter((b) => !onPath(b));
  if (missing.length > 0) return { skipped: `${missing.join(' and ')} not on PATH` };
  const sippVersion = await new Promise<string>((resolve) => {
    const p = spawn('sipp', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    p.stdout.on('data', (b: Buffer) => (s += b.toString()));
    p.stderr.on('data', (b: Buffer) => (s += b.toString()));
    p.on('close', () => resolve(/SIPp (v[^\s-]+)/.exec(s)?.[1] ?? '?'));
    p.on('error', () => resolve('?'));
  });

  const drachtio = await startQuietDrachtio();
  const dir = mkdtempSync(path.join(tmpdir(), 'ccs-bench-sip-'));
  const engineConn = createRedis(o.redisUrl);
  let appConn: Redis | undefined;
  try {
    const config = testConfig({ redisUrl: o.redisUrl, extraAgents: o.agents, drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret } });
    const agents = Array.from({ length: o.agents }, (_, i) => `a${i + 1}`);
    const password = config.callcenters.default!.agents.a1!.password;
    const users = path.join(dir, 'users.csv');
    writeFileSync(users, ['SEQUENTIAL', ...agents.map((a) => `${a};${password};*37*4`), ...agents.map((a) => `${a};${password};*36`)].join('\n') + '\n');
    const pass = 2 * agents.length;

    const engine = new AgentEngine({ redis: engineConn, config });
    await Promise.all(agents.map((a) => engine.login('default', a)));
    const keys = callCenterKeys(config.redis.keyPrefix, 'default');
    const oplogSeq = async (): Promise<number> => Number((await o.admin.get(keys.oplogSeq)) ?? 0);
    const readyCount = (): Promise<number> => o.admin.zcard(keys.queueReady('8000'));

    let app: App | undefined;
    let bareSrf: (SrfLike & EventEmitter) | undefined;
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));
    const attachApp = async (): Promise<void> => {
      const srf = new Srf() as unknown as SrfLike & EventEmitter;
      const up = connected(srf);
      appConn = createRedis(o.redisUrl);
      app = await createApp(config, { redis: appConn, logger: createLogger('silent'), srf, media: NO_MEDIA });
      await app.start();
      await up;
    };
    const detachApp = async (): Promise<void> => {
      await app?.stop();
      app = undefined;
      appConn?.disconnect();
      appConn = undefined;
      await settle();
    };
    /** A target that is a bare drachtio-srf app set up by `setup`, connected for its rounds only. */
    const bareApp = (setup: (srf: SrfLike & EventEmitter) => void): Pick<Target, 'attach' | 'detach'> => ({
      async attach() {
        const srf = new Srf() as unknown as SrfLike & EventEmitter;
        setup(srf);
        const up = connected(srf);
        srf.connect({ host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret });
        await up;
        bareSrf = srf;
      },
      async detach() {
        bareSrf?.disconnect();
        bareSrf = undefined;
        await settle();
      },
    });
    const targets: Target[] = [
      {
        id: 'reject',
        label: 'trivial srf app: every INVITE → 404',
        scenario: 'reject.xml',
        rtd: 'invite',
        // INVITE, 100, 404, ACK
        messagesPerUnit: 4,
        ...bareApp((srf) => srf.invite((_req, res) => res.send(404))),
      },
      {
        id: 'baseline',
        label: 'fair baseline: srf app, 407 + digest + 200 null SDP, no Redis',
        scenario: 'fac.xml',
        rtd: 'fac',
        // INVITE, 100, 407, ACK, INVITE, 100, 200, ACK, BYE, 200: the FAC's exchange
        messagesPerUnit: 10,
        ...bareApp((srf) => attachFacBaseline(srf, { realm: config.sip.realm ?? 'default', passwords: new Map(agents.map((a) => [a, password])) })),
      },
      {
        id: 'fac',
        label: 'ccswitch FAC *37*4 / *36 (null SDP)',
        scenario: 'fac.xml',
        rtd: 'fac',
        // INVITE, 100, 407, ACK, INVITE, 100, 200, ACK, BYE, 200
        messagesPerUnit: 10,
        attach: attachApp,
        detach: detachApp,
      },
      {
        id: 'challenge',
        label: 'breakdown: ccswitch 407 challenge only',
        scenario: 'challenge.xml',
        rtd: 'challenge',
        // INVITE, 100, 407, ACK
        messagesPerUnit: 4,
        attach: attachApp,
        detach: detachApp,
      },
    ];

    const errors: string[] = [];
    let failedTotal = 0;
    let retransmissionsTotal = 0;
    let noopTotal = 0;
    const target = `127.0.0.1:${drachtio.sipPort}`;

    const measure = async (t: Target, calls: number): Promise<SipRound> => {
      if (t.id === 'fac') {
        const ready = await readyCount();
        if (ready !== agents.length) {
          errors.push(`fac: ${agents.length - ready} agents were not Ready at the start of a round; restored`);
          await Promise.all(agents.map((a) => engine.ready('default', a)));
        }
      }
      await t.attach();
      try {
        const seq0 = await oplogSeq();
        const node = new CpuMeter();
        const rcpu = await redisCpuMeter(o.admin);
        const d0 = procCpu(drachtio.pid).self;
        const s0 = procCpu('self').children;
        const t0 = process.hrtime.bigint();
        const run = await runSipp({ scenario: t.scenario, target, users, concurrency: o.concurrency, calls, timeoutSec: 60 });
        const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
        const nodeCpuPct = node.pct();
        const redisCpuPct = await rcpu.pct();
        const drachtioCpuPct = ((procCpu(drachtio.pid).self - d0) / wallS) * 100;
        const sippCpuPct = ((procCpu('self').children - s0) / wallS) * 100;
        const transitions = (await oplogSeq()) - seq0;

        const successful = run.stats['SuccessfulCall(C)'] ?? NaN;
        const failed = run.stats['FailedCall(C)'] ?? NaN;
        const retransmissions = run.stats['Retransmissions(C)'] ?? NaN;
        failedTotal += Number.isFinite(failed) ? failed : calls;
        retransmissionsTotal += Number.isFinite(retransmissions) ? retransmissions : 0;
        if (run.code !== 0 || successful !== calls) errors.push(`${t.id}: sipp exited ${run.code}, ${successful}/${calls} calls succeeded\n${run.errors}\n${run.output.slice(-1500)}`);
        if (t.id === 'fac' && transitions !== calls) {
          noopTotal += Math.abs(calls - transitions);
          errors.push(`fac: ${transitions} transitions for ${calls} FACs`);
        }

        const samples = run.rtt.get(t.rtd) ?? [];
        const first = samples[0]?.[0] ?? 0;
        const last = samples[samples.length - 1]?.[0] ?? 0;
        const sorted = times(run, t.rtd);
        const round: SipRound = {
          calls,
          invitesPerSec: last > first ? ((samples.length - 1) / (last - first)) * 1000 : NaN,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          maxMs: sorted[sorted.length - 1] ?? NaN,
          successful,
          failed,
          retransmissions,
          nodeCpuPct,
          drachtioCpuPct,
          sippCpuPct,
          redisCpuPct,
        };
        if (t.scenario === 'fac.xml') {
          const ch = times(run, 'challenge');
          const rel = times(run, 'release');
          Object.assign(round, {
            challengeP50Ms: percentile(ch, 50),
            challengeP99Ms: percentile(ch, 99),
            releaseP50Ms: percentile(rel, 50),
            releaseP99Ms: percentile(rel, 99),
            transitions,
          });
        }
        return round;
      } finally {
        await t.detach();
      }
    };

    // Warm-up (JIT, scripts, sockets), which also sizes the rounds: about durationSec each,
    // FAC rounds a whole number of passes over the injection file.
    const warm = new Map<string, SipRound>();
    for (const t of targets) warm.set(t.id, await measure(t, t.scenario === 'fac.xml' ? pass : 4 * pass));
    const callsFor = (t: Target): number => {
      const rate = warm.get(t.id)!.invitesPerSec;
      const want = Number.isFinite(rate) ? rate * o.durationSec : pass;
      return t.scenario === 'fac.xml' ? Math.max(1, Math.round(want / pass)) * pass : Math.max(pass, Math.round(want / 100) * 100);
    };
    const counts = new Map(targets.map((t) => [t.id, callsFor(t)]));

    const rounds = new Map<string, SipRound[]>(targets.map((t) => [t.id, []]));
    for (let r = 0; r < o.rounds; r++) for (const t of targets) rounds.get(t.id)!.push(await measure(t, counts.get(t.id)!));

    const summarize = (t: Target): SipTargetResult => {
      const rs = rounds.get(t.id)!;
      const med = (f: (s: SipRound) => number | undefined): number => median(rs.map((s) => f(s) ?? NaN));
      const m: SipTargetResult['median'] = {
        invitesPerSec: med((s) => s.invitesPerSec),
        p50Ms: med((s) => s.p50Ms),
        p99Ms: med((s) => s.p99Ms),
        maxMs: med((s) => s.maxMs),
        nodeCpuPct: med((s) => s.nodeCpuPct),
        drachtioCpuPct: med((s) => s.drachtioCpuPct),
        sippCpuPct: med((s) => s.sippCpuPct),
        redisCpuPct: med((s) => s.redisCpuPct),
      };
      if (t.scenario === 'fac.xml')
        Object.assign(m, {
          challengeP50Ms: med((s) => s.challengeP50Ms),
          challengeP99Ms: med((s) => s.challengeP99Ms),
          releaseP50Ms: med((s) => s.releaseP50Ms),
          releaseP99Ms: med((s) => s.releaseP99Ms),
        });
      const per = (cpuPct: number): number => (cpuPct / 100 / m.invitesPerSec) * 1000;
      const cpuMsPerUnit = { node: per(m.nodeCpuPct), drachtio: per(m.drachtioCpuPct), sipp: per(m.sippCpuPct), redis: per(m.redisCpuPct), total: 0 };
      cpuMsPerUnit.total = cpuMsPerUnit.node + cpuMsPerUnit.drachtio + cpuMsPerUnit.sipp + cpuMsPerUnit.redis;
      return { id: t.id, label: t.label, messagesPerUnit: t.messagesPerUnit, warmup: warm.get(t.id)!, rounds: rs, median: m, cpuMsPerUnit };
    };
    const fac = summarize(targets.find((t) => t.id === 'fac')!);
    const reject = summarize(targets.find((t) => t.id === 'reject')!);
    const baseline = summarize(targets.find((t) => t.id === 'baseline')!);
    const challenge = summarize(targets.find((t) => t.id === 'challenge')!);
    return {
      agents: agents.length,
      concurrency: o.concurrency,
      durationSec: o.durationSec,
      rounds: o.rounds,
      drachtio: drachtio.version,
      sipp: sippVersion,
      fac,
      baseline,
      reject,
      challenge,
      ratio: fac.median.invitesPerSec / baseline.median.invitesPerSec,
      cpuRatio: baseline.cpuMsPerUnit.total / fac.cpuMsPerUnit.total,
      rejectRatio: fac.median.invitesPerSec / reject.median.invitesPerSec,
      failedTotal,
      retransmissionsTotal,
      noopTotal,
      errors,
    };
  } finally {
    engineConn.disconnect();
    appConn?.disconnect();
    await drachtio.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
