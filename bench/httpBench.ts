/**
 * Part 2: the full REST app (auth, validation, metrics, engine, Redis) against a bare
 * Fastify route answering `{ok:true}`, both in this process, both loaded over real HTTP
 * keep-alive by the same child-process loader with the same connections, duration,
 * paths, headers and bodies.
 *
 * The headline is the ratio app/bare: absolute requests/s on a shared 2-core machine
 * (where the loader, this process and redis-server compete for the cores) mean little,
 * but the two targets are measured alternately under identical conditions.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import { startApp } from '../test/helpers/app';
import type { LoadRequest, LoadResult } from './loader';
import { CpuMeter, median, redisCpuMeter } from './stats';

/** Settings of part 2. */
export interface HttpBenchOptions {
  redisUrl: string;
  admin: Redis;
  extraAgents: number;
  connections: number;
  durationSec: number;
  warmupSec: number;
  rounds: number;
}

/** One run against one target. */
export interface HttpRound extends LoadResult {
  /** CPU of this process (which serves both targets), % of one core. */
  serverCpuPct: number;
  redisCpuPct: number;
}

/** A target's rounds and medians. */
export interface HttpTargetResult {
  id: 'app' | 'bare';
  label: string;
  rounds: HttpRound[];
  median: { requestsPerSec: number; p50Ms: number; p99Ms: number; serverCpuPct: number; redisCpuPct: number; loaderCpuPct: number };
}

/** Everything part 2 measured. */
export interface HttpBenchResult {
  connections: number;
  durationSec: number;
  rounds: number;
  agents: number;
  app: HttpTargetResult;
  bare: HttpTargetResult;
  /** Median app requests/s over median bare requests/s. */
  ratio: number;
  /** Non-200 responses over every run, warm-up included. */
  non200Total: number;
  unchangedTotal: number;
  errorsTotal: number;
  badSamples: LoadResult['badSamples'];
}

/** Forks the loader and returns a function that runs one load through it. */
function startLoader(): { child: ChildProcess; run(req: LoadRequest): Promise<LoadResult>; stop(): Promise<void> } {
  const child = fork(path.join(__dirname, 'loader.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return {
    child,
    run(req) {
      return new Promise<LoadResult>((resolve, reject) => {
        const onMessage = (msg: { ok: true; result: LoadResult } | { ok: false; error: string }): void => {
          cleanup();
          if (msg.ok) resolve(msg.result);
          else reject(new Error(`loader failed: ${msg.error}`));
        };
        const onExit = (code: number | null): void => {
          cleanup();
          reject(new Error(`loader exited (${String(code)}) during a run`));
        };
        const cleanup = (): void => {
          child.off('message', onMessage);
          child.off('exit', onExit);
        };
        child.on('message', onMessage);
        child.on('exit', onExit);
        child.send(req);
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

/** Measures part 2. */
export async function runHttpBench(o: HttpBenchOptions): Promise<HttpBenchResult> {
  const agents = Array.from({ length: o.extraAgents }, (_, i) => `a${i + 1}`);
  const app = await startApp({ redisUrl: o.redisUrl, extraAgents: o.extraAgents });
  const bare = Fastify();
  bare.post('/callcenter/:cc/agent/:agent/:op', (_req, reply) => reply.send({ ok: true }));
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const bareAddr = bare.server.address();
  const bareBase = typeof bareAddr === 'object' && bareAddr !== null ? `http://127.0.0.1:${bareAddr.port}` : '';
  const loader = startLoader();
  try {
    for (const a of agents) {
      const r = await app.call('POST', `/callcenter/default/agent/${a}/login`, { json: {} });
      if (r.status !== 200) throw new Error(`login ${a}: ${r.status} ${JSON.stringify(r.body)}`);
    }

    // Puts every agent back to Ready: the loader assumes it at the start of each run, and
    // requests cut off when a run's time is up may still have been applied.
    const restoreReady = async (): Promise<void> => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      await Promise.all(agents.map((a) => app.app.engine.ready('default', a)));
    };

    const badSamples: LoadResult['badSamples'] = [];
    let non200Total = 0;
    let unchangedTotal = 0;
    let errorsTotal = 0;
    const measure = async (target: 'app' | 'bare', durationSec: number): Promise<HttpRound> => {
      const cpu = new CpuMeter();
      const rcpu = await redisCpuMeter(o.admin);
      const r = await loader.run({
        kind: 'run',
        url: target === 'app' ? app.base : bareBase,
        token: app.token,
        agents,
        connections: o.connections,
        durationSec,
        expectChanged: target === 'app',
      });
      const serverCpuPct = cpu.pct();
      const redisCpuPct = await rcpu.pct();
      non200Total += r.non200;
      unchangedTotal += r.unchanged;
      errorsTotal += r.errors;
      for (const s of r.badSamples) if (badSamples.length < 10) badSamples.push(s);
      if (target === 'app') await restoreReady();
      return { ...r, serverCpuPct, redisCpuPct };
    };

    await measure('app', o.warmupSec);
    await measure('bare', o.warmupSec);
    const rounds: Record<'app' | 'bare', HttpRound[]> = { app: [], bare: [] };
    for (let i = 0; i < o.rounds; i++) {
      rounds.bare.push(await measure('bare', o.durationSec));
      rounds.app.push(await measure('app', o.durationSec));
    }

    const summarize = (id: 'app' | 'bare', label: string): HttpTargetResult => {
      const rs = rounds[id];
      const med = (f: (r: HttpRound) => number): number => median(rs.map(f));
      return {
        id,
        label,
        rounds: rs,
        median: {
          requestsPerSec: med((r) => r.requestsPerSec),
          p50Ms: med((r) => r.p50Ms),
          p99Ms: med((r) => r.p99Ms),
          serverCpuPct: med((r) => r.serverCpuPct),
          redisCpuPct: med((r) => r.redisCpuPct),
          loaderCpuPct: med((r) => r.loaderCpuPct),
        },
      };
    };
    const appRes = summarize('app', 'app POST not_ready/ready');
    const bareRes = summarize('bare', 'bare fastify POST {ok:true}');
    return {
      connections: o.connections,
      durationSec: o.durationSec,
      rounds: o.rounds,
      agents: agents.length,
      app: appRes,
      bare: bareRes,
      ratio: appRes.median.requestsPerSec / bareRes.median.requestsPerSec,
      non200Total,
      unchangedTotal,
      errorsTotal,
      badSamples,
    };
  } finally {
    await loader.stop();
    await bare.close();
    await app.close();
  }
}
