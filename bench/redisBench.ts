/**
 * Part 1: the agent engine's state changes against a raw EVALSHA of `return 1`, both with
 * the same number of calls in flight over one ioredis connection (as the engine runs).
 *
 * The headline is the ratio engine/raw, not the absolute ops/s: both are measured in the
 * same process against the same redis-server, alternated round by round, so machine speed
 * and background noise largely cancel. The extra variants split an engine operation's cost
 * (arguments on the wire, the Lua script alone, the JS around it) and Redis' own
 * commandstats show which commands inside the script take the time.
 */
import type { Redis } from 'ioredis';
import { AgentEngine } from '../lib/agent/engine';
import { AgentEvent } from '../lib/agent/stateMachine';
import type { Config } from '../lib/config/schema';
import { createRedis } from '../lib/store/redis';
import { AGENT_APPLY } from '../lib/store/scripts';
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
 * Ready on odd ones, so every call is a real change. Shared by the engine and the direct
 * script variant, which move the same agents. Calls are issued in order on one connection,
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

/** A JSON value as a Lua table constructor (for the "literal tables" ablation). */
function toLua(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return `{${v.map(toLua).join(',')}}`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `[${JSON.stringify(k)}]=${toLua(x)}`).join(',')}}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`no Lua literal for ${typeof v}`);
}

const DECODE_LINE = /^(local \w+ = )cjson\.decode\(\[==\[(.*)\]==\]\)$/gm;
const SELF_HEAL_READ = "local last = redis.call('XREVRANGE', streamKey, '+', '-', 'COUNT', 1)";

/**
 * Variants of AGENT_APPLY with one cost removed, same behaviour on this workload:
 * the constant tables built by a Lua table constructor instead of `cjson.decode` of JSON
 * text on every call, and/or `nextSeq` without its self-healing XREVRANGE read.
 */
function ablations(): { id: string; label: string; lua: string }[] {
  const literal = AGENT_APPLY.replace(DECODE_LINE, (_m, lhs: string, json: string) => `${lhs}${toLua(JSON.parse(json))}`);
  const noRead = (lua: string): string => lua.replace(SELF_HEAL_READ, 'local last = {}');
  const out: { id: string; label: string; lua: string }[] = [];
  if (literal !== AGENT_APPLY) out.push({ id: 'literal', label: 'AGENT_APPLY, constant tables as Lua literals', lua: literal });
  if (noRead(AGENT_APPLY) !== AGENT_APPLY) out.push({ id: 'noXrevrange', label: 'AGENT_APPLY without nextSeq XREVRANGE', lua: noRead(AGENT_APPLY) });
  if (out.length === 2) out.push({ id: 'literalNoXrevrange', label: 'AGENT_APPLY, both of the above', lua: noRead(literal) });
  return out;
}

/** Measures part 1. */
export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const admin = createRedis(o.redisUrl);
  const scriptConn = createRedis(o.redisUrl);
  const engineConn = createRedis(o.redisUrl);
  const conns: Redis[] = [admin, scriptConn, engineConn];
  try {
    const returnOne = scriptCaller(scriptConn, 'benchReturnOne', 'return 1');
    // The constant tables AGENT_APPLY decodes on every call, cut from the script itself.
    const decodeLines = AGENT_APPLY.match(DECODE_LINE) ?? [];
    const decodeOnly = scriptCaller(scriptConn, 'benchDecodeTables', `${decodeLines.join('\n')}\nreturn 1`);

    const engine = new AgentEngine({ redis: engineConn, config: o.config });
    const cc = 'default';
    const k = engine.keys(cc);
    const cursor = new TransitionCursor(o.agents);
    let unchanged = 0;

    // The exact keys and spec the engine sends, precomputed, for the direct-script variants.
    const { config } = o;
    const keysOf = (agent: string, queues: string[]): string[] => [
      k.agent(agent), k.deadlines, k.deadlineClaims, k.events, k.eventSeq, k.oplog, k.oplogSeq, ...queues.map((q) => k.queueReady(q)),
    ];
    const specOf = (agent: string, notReady: boolean): string => {
      const queues = Object.keys(engine.agent(cc, agent).queues);
      return JSON.stringify({
        agent,
        mode: 'lenient',
        reason: notReady ? '4' : '',
        callId: '',
        token: '',
        instance: config.instanceId,
        evMax: config.streams.eventsMaxLen,
        opMax: config.streams.oplogMaxLen,
        items: queues.map((q) => {
          const qc = engine.callCenter(cc).queues[q]!;
          return { q, ev: notReady ? AgentEvent.NotReady : AgentEvent.Ready, auto: qc.autoReady, wrapMs: Math.round(qc.wrapUpSeconds * 1000) };
        }),
      });
    };
    const direct = new Map<string, { keys: string[]; notReady: string; ready: string }>();
    for (const a of o.agents) {
      direct.set(a, { keys: keysOf(a, Object.keys(engine.agent(cc, a).queues)), notReady: specOf(a, true), ready: specOf(a, false) });
    }
    const sample = direct.get(o.agents[0]!)!;
    /** One transition through a script with AGENT_APPLY's contract. */
    const applyVia = (call: (...args: (string | number)[]) => Promise<unknown>) => async (): Promise<void> => {
      const { agent, notReady } = cursor.next();
      const d = direct.get(agent)!;
      const res = await call(d.keys.length, ...d.keys, notReady ? d.notReady : d.ready);
      if (typeof res !== 'string' || !res.includes('"changed":true')) unchanged++;
    };

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
      { id: 'args', label: "`return 1` with the engine's keys + spec", op: async () => void (await returnOne(sample.keys.length, ...sample.keys, sample.notReady)) },
      { id: 'decode', label: 'only the 3 constant cjson.decode lines', op: async () => void (await decodeOnly(0)) },
      { id: 'direct', label: 'AGENT_APPLY direct (no engine JS)', op: applyVia((...a) => scriptConn.ccsAgentApply(...(a as [number, ...string[]]))) },
      ...ablations().map((v) => ({ id: v.id, label: v.label, op: applyVia(scriptCaller(scriptConn, `bench_${v.id}`, v.lua)) })),
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
