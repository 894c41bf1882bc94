/**
 * Part "memory" (issue "performance", item 5): what a queue call held open costs in memory.
 * 200 agents (sipp: digest REGISTER, then one UAS that answers every offer and waits) and
 * 1,200 trunk callers (sipp, talking 10 minutes) through a real drachtio-server: 200 end up on
 * calls with agents, 1,000 wait in the queue. Measured once the calls are up and stable,
 * against the same process and Redis with the agents registered and Ready but no calls:
 * RSS and V8 heap of this process (which runs ccswitch; after a full GC on both sides) and
 * Redis `used_memory`, each divided by the calls held.
 *
 * The media port is the SIP tests' static-SDP fake (no FreeSWITCH): the figures are
 * ccswitch's own (dialogs, conversations, tasks, guard entries, events), not a media
 * server's, whose memory per channel is its own matter.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { callCenterKeys } from '../lib/store/keys';
import { freePort } from '../test/helpers/redisServer';
import { startSipStack } from '../test/helpers/sipStack';
import { startSipp, stopSipp, type Sipp } from '../test/helpers/sippProcess';
import { onPath } from './sipBench';
import { fmt, out, table } from './stats';

const SCENARIOS = path.join(__dirname, 'scenarios');

/** Settings of the memory part. */
export interface MemoryBenchOptions {
  agents?: number;
  waiting?: number;
  /** Caller arrival rate while the calls are built up (calls/s). */
  rate?: number;
}

/** What the memory part measured. */
export interface MemoryBenchResult {
  skipped?: undefined;
  agents: number;
  calls: number;
  onAgents: number;
  waiting: number;
  before: { rssMb: number; heapMb: number; redisMb: number };
  after: { rssMb: number; heapMb: number; redisMb: number };
  perCallKb: { rss: number; heap: number; redis: number };
}

/** Forces a full V8 collection (so heap and RSS compare like with like). */
function fullGc(): void {
  v8.setFlagsFromString('--expose_gc');
  (runInNewContext('gc') as () => void)();
}

const mb = (bytes: number): number => bytes / 1024 / 1024;

/** Runs part "memory"; skipped without drachtio-server and sipp. */
export async function runMemoryBench(o: MemoryBenchOptions = {}): Promise<MemoryBenchResult | { skipped: string }> {
  const missing = ['drachtio', 'sipp'].filter((b) => !onPath(b));
  if (missing.length > 0) return { skipped: `${missing.join(' and ')} not on PATH` };
  const agentsN = o.agents ?? 200;
  const waitingN = o.waiting ?? 1000;
  const calls = agentsN + waitingN;
  const stack = await startSipStack({
    extraAgents: agentsN,
    wrapUpSeconds8000: 0,
    sip: { dialogKeepaliveSeconds: 0, trunks: { load: { addresses: ['127.0.0.1'], callcenter: 'default' } } },
    queues: { '8000': { ringSeconds: 20, maxWaitSeconds: 3600 } },
  });
  const sipps: Sipp[] = [];
  try {
    const { drachtio, app, raw } = stack;
    const keys = callCenterKeys('ccs', 'default');
    const target = `127.0.0.1:${drachtio.sipPort}`;
    const agents = Array.from({ length: agentsN }, (_, i) => `a${i + 1}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'ccs-bench-mem-'));
    const users = path.join(dir, 'agents.csv');
    writeFileSync(users, ['SEQUENTIAL', ...agents.map((a) => `${a};secret-aaaa`)].join('\n') + '\n');
    const uasPort = await freePort();
    const reg = await startSipp([target, '-sf', path.join(SCENARIOS, 'queue-register.xml'), '-inf', users, '-key', 'uas_port', String(uasPort), '-i', '127.0.0.1', '-p', String(await freePort()), '-t', 'u1', '-r', '100', '-m', String(agentsN), '-timeout', '60s', '-timeout_error']).done;
    if (reg.stats['SuccessfulCall(C)'] !== agentsN) throw new Error(`memory bench: ${reg.stats['SuccessfulCall(C)']} of ${agentsN} agents registered`);
    for (const a of agents) await app.engine.login('default', a);
    const uas = startSipp([target, '-sf', path.join(SCENARIOS, 'queue-agent-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-mp', String(await freePort()), '-t', 'u1', '-recv_timeout', '900000', '-buff_size', '8388608']);
    sipps.push(uas);

    const redisMb = async (): Promise<number> => mb(Number(/used_memory:(\d+)/.exec(await raw.info('memory'))?.[1] ?? NaN));
    const sample = async (): Promise<MemoryBenchResult['before']> => {
      fullGc();
      const m = process.memoryUsage();
      return { rssMb: mb(m.rss), heapMb: mb(m.heapUsed), redisMb: await redisMb() };
    };
    const before = await sample();

    const callers = startSipp([target, '-sf', path.join(SCENARIOS, 'queue-caller.xml'), '-s', '8000', '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()), '-t', 'u1', '-r', String(o.rate ?? 100), '-m', String(calls), '-l', String(calls), '-d', '600000', '-timeout', '900s', '-recv_timeout', '900000', '-buff_size', '8388608']);
    sipps.push(callers);
    // Up and stable: every agent on a call, the rest waiting, every call in a conversation.
    const deadline = Date.now() + 120_000;
    let onAgents = 0;
    let waiting = 0;
    for (;;) {
      onAgents = Number((await raw.hget(keys.queueStats('8000'), 'answered')) ?? 0);
      waiting = await raw.zcard(keys.queueTasks('8000'));
      if ((onAgents >= agentsN && waiting >= waitingN && app.hub.size >= calls) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (app.hub.size < calls) throw new Error(`memory bench: only ${app.hub.size} of ${calls} calls up (${onAgents} answered, ${waiting} waiting)`);
    const after = await sample();
    const kb = (a: number, b: number): number => ((a - b) * 1024) / calls;
    return {
      agents: agentsN,
      calls,
      onAgents,
      waiting,
      before,
      after,
      perCallKb: { rss: kb(after.rssMb, before.rssMb), heap: kb(after.heapMb, before.heapMb), redis: kb(after.redisMb, before.redisMb) },
    };
  } finally {
    for (const s of sipps) await stopSipp(s, 1000).catch(() => undefined);
    await stack.close();
  }
}

/** Prints part "memory". */
export function printMemoryBench(r: MemoryBenchResult): void {
  out(`\nmemory. Queue calls held open: ${fmt(r.onAgents)} on agents, ${fmt(r.waiting)} waiting (${fmt(r.calls)} calls, ${fmt(r.agents)} agents), static-SDP media; after a full GC\n\n`);
  out(
    table(
      ['', 'RSS MB', 'V8 heap MB', 'Redis used_memory MB'],
      [
        ['agents Ready, no calls', fmt(r.before.rssMb, 1), fmt(r.before.heapMb, 1), fmt(r.before.redisMb, 2)],
        [`${fmt(r.calls)} calls up`, fmt(r.after.rssMb, 1), fmt(r.after.heapMb, 1), fmt(r.after.redisMb, 2)],
        ['per call (KB)', fmt(r.perCallKb.rss, 1), fmt(r.perCallKb.heap, 1), fmt(r.perCallKb.redis, 2)],
      ],
    ),
  );
}
