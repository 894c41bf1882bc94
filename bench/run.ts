/**
 * `npm run bench`: one run, one spawned redis-server, nine parts
 * (`npm run bench -- sip` runs only part 3; parts are engine, http, sip, acd, queue, modes, fanout, memory, vs-callcenter).
 *
 * 1. AgentEngine state changes vs a raw EVALSHA of `return 1` (same concurrency, one
 *    connection), with a breakdown of where an engine operation's time goes.
 * 2. The REST app's not_ready/ready routes vs a bare Fastify route, over real HTTP
 *    keep-alive from a child-process loader.
 * 3. Feature codes dialed by sipp through a real drachtio-server vs a trivial drachtio-srf app
 *    on the same drachtio-server that rejects every INVITE (skipped without drachtio/sipp).
 * 4. ACD reservation latency (plan + RESERVE script) with 100 vs 10,000 Ready agents per
 *    strategy (bench/acdBench.ts).
 * 5. Queue calls per second through drachtio-server, rate steps until a call fails
 *    (bench/queueBench.ts; skipped without drachtio/sipp).
 * 6. Mode changes (pause / resume) per second through REST on live conversations on a real
 *    FreeSWITCH, and REST request → FreeSWITCH's member-flag events, sent to the owning
 *    instance vs handed to it by another (bench/modeBench.ts; skipped without
 *    drachtio/freeswitch).
 * 7. Event fan-out: 1,000 WebSocket clients on one queue, state changes at a fixed rate, XADD →
 *    client receipt vs one plain XREAD client of the same stream (bench/fanoutBench.ts).
 *
 * Each comparison is reported as a ratio of medians of alternated rounds measured in the
 * same run on the same machine; absolute numbers depend on the machine and whatever else
 * runs on it, the ratios much less. Writes bench/results/latest.json (a run of some parts
 * only: latest-<parts>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRedis } from '../lib/store/redis';
import { testConfig } from '../test/helpers/config';
import { startRedis } from '../test/helpers/redisServer';
import { printAcdBench, runAcdBench, type AcdBenchResult } from './acdBench';
import { printVsCallcenterBench, runVsCallcenterBench, SYSTEMS, type SystemId, type VsCallcenterResult } from './callcenterBench';
import { runHttpBench, type HttpBenchResult } from './httpBench';
import { printFanoutBench, runFanoutBench, type FanoutBenchResult } from './fanoutBench';
import { printMemoryBench, runMemoryBench, type MemoryBenchResult } from './memoryBench';
import { printModeBench, runModeBench, type ModeBenchResult } from './modeBench';
import { printQueueBench, runQueueBench } from './queueBench';
import { runEngineBench, type EngineBenchResult, type VariantResult } from './redisBench';
import { runSipBench, type SipBenchResult, type SipTargetResult } from './sipBench';
import { fmt, out, table } from './stats';

const SETTINGS = {
  /** Part 1: calls per round, warm-up calls per variant, calls in flight, rounds. */
  calls: 20000,
  warmupCalls: 4000,
  concurrency: 64,
  rounds: 3,
  /** Agents a1..aN (queue 8000 only). */
  extraAgents: 200,
  /** Part 2: keep-alive connections, seconds per round, warm-up seconds per target. */
  connections: 32,
  durationSec: 4,
  warmupSec: 2,
  /** Part 3: agents (each dialed *37*4 then *36 per pass), calls in flight, target s/round. */
  sipAgents: 300,
  sipConcurrency: 10,
  sipDurationSec: 3,
  sipRounds: 5,
};

const PARTS = ['engine', 'http', 'sip', 'acd', 'queue', 'modes', 'fanout', 'memory', 'vs-callcenter'] as const;
type Part = (typeof PARTS)[number];

const TARGET_RATIO = 0.5;

/** Target of issue 16 item 3: FAC INVITEs/s against the fair baseline. */
const FAC_TARGET_RATIO = 0.8;
const verdict = (ratio: number): string => (ratio >= TARGET_RATIO ? 'meets target' : 'BELOW TARGET');
const pct = (n: number): string => `${fmt(n)}%`;

function printEngine(r: EngineBenchResult): void {
  out(`\n1. Agent engine vs raw EVALSHA: ${fmt(r.calls)} calls/round, ${r.concurrency} in flight on one connection, ${r.agents} agents, median of ${r.rounds} alternated rounds\n\n`);
  const row = (v: VariantResult): string[] => [
    v.label,
    fmt(v.median.opsPerSec),
    fmt(1e6 / v.median.opsPerSec, 1),
    fmt(v.median.redisUsecPerCall, 1),
    pct(v.median.nodeCpuPct),
    pct(v.median.redisCpuPct),
    v.rounds.map((s) => fmt(s.opsPerSec)).join(' / '),
  ];
  const header = ['variant', 'ops/s', 'µs/op', 'redis µs/call', 'node CPU', 'redis CPU', 'rounds (ops/s)'];
  out(table(header, [row(r.raw), row(r.engine)]));
  out(`\n  ratio engine/raw = ${r.ratio.toFixed(3)}  (target ≥ ${TARGET_RATIO}: ${verdict(r.ratio)})\n`);
  if (r.unchangedResults > 0) out(`  WARNING: ${r.unchangedResults} transitions were not a change (the bench measured no-ops)\n`);

  out('\n  Breakdown (µs/op = 1 / rate at this concurrency; redis µs/call = EVALSHA execution time in Redis, INFO commandstats):\n\n');
  out(table(header, [row(r.raw), ...r.breakdown.map(row), row(r.engine)]));
  const cs = r.commandstats;
  if (cs !== null) {
    out(
      `\n  Redis time per engine op (INFO commandstats, last engine round): EVALSHA ${fmt(cs.evalshaUsecPerOp, 1)} µs = ` +
        `commands inside the script ${fmt(cs.innerUsecPerOp, 1)} µs + Lua/cjson/argument handling ${fmt(cs.evalshaUsecPerOp - cs.innerUsecPerOp, 1)} µs\n\n`,
    );
    out(
      table(
        ['command', 'calls/op', 'µs/call', 'µs/op'],
        cs.commands.map((c) => [c.command, fmt(c.callsPerOp, 2), fmt(c.usecPerCall, 2), fmt(c.usecPerOp, 2)]),
      ),
    );
  }
}

function printHttp(r: HttpBenchResult): void {
  out(`\n2. REST app vs bare Fastify route: ${r.connections} keep-alive connections, ${r.durationSec} s/round, ${r.agents} agents, median of ${r.rounds} alternated rounds\n\n`);
  const row = (t: HttpBenchResult['app']): string[] => [
    t.label,
    fmt(t.median.requestsPerSec),
    fmt(t.median.p50Ms, 2),
    fmt(t.median.p99Ms, 2),
    pct(t.median.serverCpuPct),
    pct(t.median.redisCpuPct),
    pct(t.median.loaderCpuPct),
    t.rounds.map((s) => fmt(s.requestsPerSec)).join(' / '),
  ];
  out(table(['target', 'req/s', 'p50 ms', 'p99 ms', 'server CPU', 'redis CPU', 'loader CPU', 'rounds (req/s)'], [row(r.bare), row(r.app)]));
  out(`\n  ratio app/bare = ${r.ratio.toFixed(3)}  (target ≥ ${TARGET_RATIO}: ${verdict(r.ratio)})\n`);
  out(`  non-200 responses (all runs, warm-up included): ${r.non200Total}; app 200s that were not a change: ${r.unchangedTotal}; connection errors: ${r.errorsTotal}\n`);
  for (const s of r.badSamples) out(`    ${s.status} ${s.path} ${s.body}\n`);
}

function printSip(r: SipBenchResult): void {
  out(`\n3. SIP feature codes vs a fair baseline (a drachtio-srf app doing the same 407 / digest / 200 / BYE exchange without Redis), drachtio-server ${r.drachtio}, sipp ${r.sipp}, UDP: ${r.concurrency} calls in flight (sipp -users), ~${r.durationSec} s/round, ${r.agents} agents, median of ${r.rounds} alternated rounds\n\n`);
  const row = (t: SipTargetResult): string[] => [
    t.label,
    fmt(t.median.invitesPerSec),
    fmt(t.median.p50Ms),
    fmt(t.median.p99Ms),
    String(t.messagesPerUnit),
    pct(t.median.nodeCpuPct),
    pct(t.median.drachtioCpuPct),
    pct(t.median.sippCpuPct),
    pct(t.median.redisCpuPct),
    t.rounds.map((s) => fmt(s.invitesPerSec)).join(' / '),
  ];
  out(table(['target', 'INVITEs/s', 'p50 ms', 'p99 ms', 'msgs/unit', 'node CPU', 'drachtio CPU', 'sipp CPU', 'redis CPU', 'rounds (INVITEs/s)'], [row(r.baseline), row(r.fac), row(r.reject), row(r.challenge)]));
  out(`\n  ratio fac/baseline = ${r.ratio.toFixed(3)}  (target ≥ ${FAC_TARGET_RATIO}: ${r.ratio >= FAC_TARGET_RATIO ? 'meets target' : 'BELOW TARGET'}; CPU per unit, all four processes, baseline/fac = ${r.cpuRatio.toFixed(3)}; fac/404 app = ${r.rejectRatio.toFixed(3)})\n`);
  out(`  p99 authenticated INVITE → final response: fac ${fmt(r.fac.median.p99Ms)} ms, baseline ${fmt(r.baseline.median.p99Ms)} ms, 404 app ${fmt(r.reject.median.p99Ms)} ms (sipp times in whole ms)\n`);
  const m = r.fac.median;
  const cpu = (t: SipTargetResult): string =>
    `${fmt(t.cpuMsPerUnit.total, 2)} ms (node ${fmt(t.cpuMsPerUnit.node, 2)}, drachtio ${fmt(t.cpuMsPerUnit.drachtio, 2)}, sipp ${fmt(t.cpuMsPerUnit.sipp, 2)}, redis ${fmt(t.cpuMsPerUnit.redis, 2)})`;
  out(`  CPU per unit: fac ${cpu(r.fac)}\n                baseline ${cpu(r.baseline)}\n                404 app ${cpu(r.reject)}\n                challenge only ${cpu(r.challenge)}\n`);
  out(`  FAC call, medians of rounds: challenge INVITE → 407 p50 ${fmt(m.challengeP50Ms ?? NaN)} / p99 ${fmt(m.challengeP99Ms ?? NaN)} ms; ACK → BYE p50 ${fmt(m.releaseP50Ms ?? NaN)} / p99 ${fmt(m.releaseP99Ms ?? NaN)} ms\n`);
  out(`  failed calls: ${r.failedTotal}; retransmissions: ${r.retransmissionsTotal}; FACs that were not a transition: ${r.noopTotal} (all runs, warm-up included)\n`);
  for (const e of r.errors.slice(0, 5)) out(`    ${e.slice(0, 1200).replace(/\n/g, '\n    ')}\n`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`unknown bench part(s): ${unknown.join(', ')}; parts: ${PARTS.join(', ')} (none: all)\n`);
    process.exitCode = 2;
    return;
  }
  const parts: readonly Part[] = args.length === 0 ? PARTS : PARTS.filter((p) => args.includes(p));
  const runs = (p: Part): boolean => parts.includes(p);
  const date = new Date().toISOString();
  const t0 = Date.now();
  const redis = await startRedis();
  const admin = createRedis(redis.url);
  try {
    const info = await admin.info('server');
    const redisVersion = /^redis_version:(\S+)/m.exec(info)?.[1] ?? '?';
    const cpus = os.cpus();
    const env = { node: process.version, cpu: cpus[0]?.model ?? '?', cores: cpus.length, platform: `${os.platform()} ${os.release()}`, redis: redisVersion };
    out(`ccswitch bench  ${date}\n  node ${env.node}, ${env.cpu} (${env.cores} cores), ${env.platform}, redis-server ${env.redis}\n`);

    const config = testConfig({ redisUrl: redis.url, extraAgents: SETTINGS.extraAgents });
    const agents = Array.from({ length: SETTINGS.extraAgents }, (_, i) => `a${i + 1}`);
    let engine: EngineBenchResult | undefined;
    if (runs('engine')) {
      engine = await runEngineBench({
        redisUrl: redis.url,
        config,
        agents,
        calls: SETTINGS.calls,
        warmupCalls: SETTINGS.warmupCalls,
        concurrency: SETTINGS.concurrency,
        rounds: SETTINGS.rounds,
      });
      printEngine(engine);
    }

    let http: HttpBenchResult | undefined;
    if (runs('http')) {
      await admin.flushall();
      http = await runHttpBench({
        redisUrl: redis.url,
        admin,
        extraAgents: SETTINGS.extraAgents,
        connections: SETTINGS.connections,
        durationSec: SETTINGS.durationSec,
        warmupSec: SETTINGS.warmupSec,
        rounds: SETTINGS.rounds,
      });
      printHttp(http);
    }

    let sip: SipBenchResult | undefined;
    let sipSkipped: string | undefined;
    if (runs('sip')) {
      await admin.flushall();
      const r = await runSipBench({ redisUrl: redis.url, admin, agents: SETTINGS.sipAgents, concurrency: SETTINGS.sipConcurrency, durationSec: SETTINGS.sipDurationSec, rounds: SETTINGS.sipRounds });
      sipSkipped = r.skipped;
      if (r.skipped !== undefined) out(`\n3. SIP feature codes: SKIPPED (${r.skipped}; install drachtio-server and sipp to run it)\n`);
      else {
        sip = r;
        printSip(sip);
      }
    }

    let acd: AcdBenchResult | undefined;
    if (runs('acd')) {
      // Own key prefix and config: no flush needed.
      acd = await runAcdBench({ redisUrl: redis.url });
      printAcdBench(acd);
    }

    let queue: Awaited<ReturnType<typeof runQueueBench>> | undefined;
    if (runs('queue')) {
      await admin.flushall();
      queue = await runQueueBench({ redisUrl: redis.url, admin });
      printQueueBench(queue);
    }

    let modes: ModeBenchResult | undefined;
    let modesSkipped: string | undefined;
    if (runs('modes')) {
      await admin.flushall();
      const r = await runModeBench({ redisUrl: redis.url, admin });
      printModeBench(r);
      if (r.skipped !== undefined) modesSkipped = r.skipped;
      else modes = r;
    }

    let fanout: FanoutBenchResult | undefined;
    if (runs('fanout')) {
      // It logs in a1..a200 and expects them Ready to start with.
      await admin.flushall();
      fanout = await runFanoutBench({ redisUrl: redis.url, admin });
      printFanoutBench(fanout);
    }

    let memory: MemoryBenchResult | undefined;
    if (runs('memory')) {
      // Its own drachtio-server and redis-server (the SIP test stack).
      const r = await runMemoryBench();
      if (r.skipped !== undefined) out(`\n*** SKIPPED memory: ${r.skipped} ***\n`);
      else {
        memory = r;
        printMemoryBench(r);
      }
    }

    let vsCallcenter: VsCallcenterResult | undefined;
    if (runs('vs-callcenter')) {
      // ccswitch's side needs call center 'default' empty; mod_callcenter and the limit use no Redis.
      await admin.flushall();
      // CCS_BENCH_SYSTEMS=ccswitch,limit runs only those (the part takes minutes per system).
      const only = process.env.CCS_BENCH_SYSTEMS?.split(',').filter((x): x is SystemId => (SYSTEMS as readonly string[]).includes(x));
      // CCS_BENCH_RATES=10,15 replaces the steps (to profile one rate).
      const rates = process.env.CCS_BENCH_RATES?.split(',').map(Number).filter((x) => Number.isFinite(x) && x > 0);
      const r = await runVsCallcenterBench({
        redisUrl: redis.url, admin, ...(only !== undefined && only.length > 0 ? { systems: only } : {}), ...(rates !== undefined && rates.length > 0 ? { rates } : {}),
      });
      printVsCallcenterBench(r);
      if (r.skipped === undefined) vsCallcenter = r;
    }

    const valid =
      (fanout === undefined || fanout.valid) &&
      (acd === undefined || acd.refused === 0) &&
      (engine === undefined || engine.unchangedResults === 0) &&
      (http === undefined || (http.non200Total === 0 && http.unchangedTotal === 0 && http.errorsTotal === 0)) &&
      (sip === undefined || (sip.failedTotal === 0 && sip.retransmissionsTotal === 0 && sip.noopTotal === 0 && sip.errors.length === 0)) &&
      (modes === undefined ||
        (modes.non200Total === 0 && modes.missingEventsTotal === 0 && modes.unchangedTotal === 0 && modes.sanity.problems.length === 0 && modes.leftover.length === 0));
    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, parts.length === PARTS.length ? 'latest.json' : `latest-${parts.join('-')}.json`);
    const summary = {
      engineOverRaw: engine?.ratio,
      memoryPerCallKb: memory?.perCallKb,
      appOverBare: http?.ratio,
      facOverBaseline: sip?.ratio,
      facOverReject: sip?.rejectRatio,
      target: TARGET_RATIO,
      engineOpsPerSec: engine?.engine.median.opsPerSec,
      rawOpsPerSec: engine?.raw.median.opsPerSec,
      appRequestsPerSec: http?.app.median.requestsPerSec,
      bareRequestsPerSec: http?.bare.median.requestsPerSec,
      appP99Ms: http?.app.median.p99Ms,
      bareP99Ms: http?.bare.median.p99Ms,
      facInvitesPerSec: sip?.fac.median.invitesPerSec,
      baselineInvitesPerSec: sip?.baseline.median.invitesPerSec,
      baselineP99Ms: sip?.baseline.median.p99Ms,
      rejectInvitesPerSec: sip?.reject.median.invitesPerSec,
      facP99Ms: sip?.fac.median.p99Ms,
      rejectP99Ms: sip?.reject.median.p99Ms,
      facOverBaselineByCpu: sip?.cpuRatio,
      reservationP99Ratios: acd === undefined ? undefined : Object.fromEntries(acd.variants.map((v) => [`${v.strategy}${v.skillCondition ? '+cond' : ''}`, v.p99Ratio])),
      modesHandedOverLocalOpsPerSec: modes?.ratios.opsPerSec,
      modesHandedOverLocalRestP99: modes?.ratios.restP99,
      modesHandedOverLocalFlagsP99: modes?.ratios.flagsP99,
      modesLocalOpsPerSec: modes?.local.median.opsPerSec,
      modesHandedOpsPerSec: modes?.handed.median.opsPerSec,
      modesLocalFlagsP99Ms: modes?.local.median.flagsP99Ms,
      modesHandedFlagsP99Ms: modes?.handed.median.flagsP99Ms,
      sipSkipped,
      modesSkipped,
      fanoutP99Ratio: fanout?.p99Ratio,
      fanoutMeetsTarget: fanout?.meetsTarget,
      fanoutWsP99Ms: fanout?.median.wsP99Ms,
      fanoutXreadP99Ms: fanout?.median.xreadP99Ms,
      fanoutChangesPerSec: fanout?.median.changesPerSec,
      fanoutHeapBytesPerClient: fanout?.memory.perClient.heapUsed,
      vsCallcenterKnees: vsCallcenter === undefined ? undefined : Object.fromEntries(vsCallcenter.systems.map((x) => [x.id, x.knee?.rate ?? null])),
      vsCallcenterKneeOverModCallcenter: vsCallcenter?.kneeOverModCallcenter,
      vsCallcenterKneeOverLimit: vsCallcenter?.kneeOverLimit,
      vsCallcenterCommonP99: vsCallcenter?.common,
      valid,
    };
    const durationSec = (Date.now() - t0) / 1000;
    writeFileSync(file, JSON.stringify({ date, durationSec, env, parts, settings: SETTINGS, summary, engine, http, sip, acd, queue, modes, fanout, memory, vsCallcenter }, null, 2) + '\n');
    out(`\nTotal ${fmt(durationSec, 1)} s. Results: ${path.relative(process.cwd(), file)}${valid ? '' : '  (INVALID: errors or no-op transitions above)'}\n`);
    if (!valid) process.exitCode = 1;
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  // The run is over once its results are written. After the vs-callcenter part a listening
  // socket of drachtio-fsmrf's (an outbound event-socket server of a connection FreeSWITCH
  // dropped when it was stopped) can keep the event loop alive; not found yet which one.
  .finally(() => process.exit());
