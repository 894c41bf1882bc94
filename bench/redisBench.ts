/**
 * Part 1: the agent engine's state changes against a raw EVALSHA of `return 1`, both with
 * the same number of calls in flight over one ioredis connection (as the engine runs).
 *
 * The headline is the ratio engine/raw, not the absolute ops/s: both are measured in the
 * same process against the same redis-server, alternated round by round, so machine speed
 * and background noise largely cancel. Redis' own commandstats show which commands inside
 * the script take the time.
 */
import type { Redis } from 'ioredis';
import { AgentEngine } from '../lib/agent/engine';
import type { Config } from '../lib/config/schema';
import { createRedis } from '../lib/store/redis';
import { CpuMeter, median, redisCpuMeter } from './stats';

/** Settings of part 1. */
export interface EngineBenchOptions {
  redisUrl: string;
  config: Config;
  agents: readonly string[];
  calls: number;
  warmupCalls: number;
  concurrency: number;
  rounds: number;
}

/** One measured round of a variant. */
export interface RoundSample {
  opsPerSec: number;
  ms: number;
  /** CPU of this (client) process, % of one core. */
  nodeCpuPct: number;
  /** CPU of redis-server, % of one core. */
  redisCpuPct: number;
  /** Redis' own execution time per EVALSHA (INFO commandstats), inner commands included. */
  redisUsecPerCall: number;
}

/** A variant's rounds and their medians. */
export interface VariantResult {
  id: string;
  label: string;
  rounds: RoundSample[];
  median: RoundSample;
}

/** Redis commandstats of one engine round, per engine operation. */
export interface CommandCost {
  command: string;
  callsPerOp: number;
  usecPerCall: number;
  usecPerOp: number;
}

/** Everything part 1 measured. */
export interface EngineBenchResult {
  calls: number;
  concurrency: number;
  rounds: number;
  agents: number;
  raw: VariantResult;
  engine: VariantResult;
  /** Median engine ops/s over median raw ops/s. */
  ratio: number;
  breakdown: VariantResult[];
  /** Transitions that were not a change (would mean the bench measured no-ops). */
  unchangedResults: number;
  /** Redis time per engine op: EVALSHA total and the commands run inside the script. */
  commandstats: { evalshaUsecPerOp: number; innerUsecPerOp: number; commands: CommandCost[] } | null;
}

/** Runs `total` calls of `op`, `concurrency` at a time; resolves with the elapsed ms. */
export async function runConcurrent(total: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  let issued = 0;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * The sequence of transitions: agent n mod N, Not Ready on even passes over the agents and
 * Ready on odd ones, so every call is a real change. Calls are issued in order on one connection,
 * so a later call on an agent always runs after the earlier one.
 */
class TransitionCursor {
  private n = 0;
  constructor(private readonly agents: readonly string[]) {}

  next(): { agent: string; notReady: boolean } {
    const n = this.n++;
    return { agent: this.agents[n % this.agents.length]!, notReady: Math.floor(n / this.agents.length) % 2 === 0 };
  }
}

/** Parses INFO commandstats into command → {calls, usec}. */
function parseCommandstats(info: string): Map<string, { calls: number; usec: number }> {
  const m = new Map<string, { calls: number; usec: number }>();
  for (const line of info.split('\n')) {
    const r = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (r !== null) m.set(r[1]!, { calls: Number(r[2]), usec: Number(r[3]) });
  }
  return m;
}

/** Defines a script on a connection and returns a caller: (numKeys, ...keys, ...args). */
function scriptCaller(conn: Redis, name: string, lua: string): (...args: (string | number)[]) => Promise<unknown> {
  conn.defineCommand(name, { lua });
  const fn = (conn as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]!;
  return (...args) => fn.apply(conn, args);
}

/** Measures part 1. */
export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const admin = createRedis(o.redisUrl);
  const scriptConn = createRedis(o.redisUrl);
  const engineConn = createRedis(o.redisUrl);
  const conns: Redis[] = [admin, scriptConn, engineConn];
  try {
    const returnOne = scriptCaller(scriptConn, 'benchReturnOne', 'return 1');
    const engine = new AgentEngine({ redis: engineConn, config: o.config });
    const cc = 'default';
    const cursor = new TransitionCursor(o.agents);
    let unchanged = 0;

    await Promise.all(o.agents.map((a) => engine.login(cc, a)));

    const variants: { id: string; label: string; op: () => Promise<void> }[] = [
      { id: 'raw', label: 'raw EVALSHA `return 1` (no keys/args)', op: async () => void (await returnOne(0)) },
      {
        id: 'engine',
        label: 'engine notReady/ready (AgentEngine)',
        op: async () => {
          const { agent, notReady } = cursor.next();
          const r = notReady ? await engine.notReady(cc, agent, { reason: 4 }) : await engine.ready(cc, agent);
          if (r.results.length !== 1 || r.results[0]?.changed !== true) unchanged++;
        },
      },
    ];

    // Warm-up: loads the scripts, warms V8 and Redis.
    for (const v of variants) await runConcurrent(o.warmupCalls, o.concurrency, v.op);
    unchanged = 0;

    const rounds = new Map<string, RoundSample[]>(variants.map((v) => [v.id, []]));
    let stats: EngineBenchResult['commandstats'] = null;
    for (let r = 0; r < o.rounds; r++) {
      for (const v of variants) {
        await admin.config('RESETSTAT');
        const cpu = new CpuMeter();
        const rcpu = await redisCpuMeter(admin);
        const ms = await runConcurrent(o.calls, o.concurrency, v.op);
        const nodeCpuPct = cpu.pct();
        const redisCpuPct = await rcpu.pct();
        const cs = parseCommandstats(await admin.info('commandstats'));
        const ev = cs.get('evalsha');
        const redisUsecPerCall = ev === undefined || ev.calls === 0 ? NaN : ev.usec / ev.calls;
        rounds.get(v.id)!.push({ opsPerSec: (o.calls / ms) * 1000, ms, nodeCpuPct, redisCpuPct, redisUsecPerCall });
        if (v.id === 'engine') stats = engineCommandstats(cs, o.calls);
      }
    }

    const result = (id: string): VariantResult => {
      const v = variants.find((x) => x.id === id)!;
      const rs = rounds.get(id)!;
      const med = (f: (s: RoundSample) => number): number => median(rs.map(f));
      return {
        id,
        label: v.label,
        rounds: rs,
        median: {
          opsPerSec: med((s) => s.opsPerSec),
          ms: med((s) => s.ms),
          nodeCpuPct: med((s) => s.nodeCpuPct),
          redisCpuPct: med((s) => s.redisCpuPct),
          redisUsecPerCall: med((s) => s.redisUsecPerCall),
        },
      };
    };
    const raw = result('raw');
    const eng = result('engine');
    return {
      calls: o.calls,
      concurrency: o.concurrency,
      rounds: o.rounds,
      agents: o.agents.length,
      raw,
      engine: eng,
      ratio: eng.median.opsPerSec / raw.median.opsPerSec,
      breakdown: variants.filter((v) => v.id !== 'raw' && v.id !== 'engine').map((v) => result(v.id)),
      unchangedResults: unchanged,
      commandstats: stats,
    };
  } finally {
    for (const c of conns) c.disconnect();
  }
}

/** Per engine operation: EVALSHA's Redis time and the time of each command the script ran. */
function engineCommandstats(m: Map<string, { calls: number; usec: number }>, ops: number): EngineBenchResult['commandstats'] {
  const ev = m.get('evalsha');
  if (ev === undefined) return null;
  const commands: CommandCost[] = [];
  for (const [command, s] of m) {
    if (command === 'evalsha' || command === 'eval' || command.startsWith('config') || command === 'info' || s.calls === 0) continue;
    commands.push({ command, callsPerOp: s.calls / ops, usecPerCall: s.usec / s.calls, usecPerOp: s.usec / ops });
  }
  commands.sort((a, b) => b.usecPerOp - a.usecPerOp);
  return { evalshaUsecPerOp: ev.usec / ops, innerUsecPerOp: commands.reduce((t, c) => t + c.usecPerOp, 0), commands };
}
