/**
 * The HTTP load generator of part 2, run as a child process (its own event loop, so it
 * does not steal time from the servers it measures). It drives autocannon over keep-alive
 * connections and answers each `run` message with requests/s, exact latency percentiles
 * and every non-200 response.
 *
 * Only ratios between targets loaded the same way in the same run are meaningful (the
 * loader itself takes CPU on the same small machine), hence the identical request stream
 * for the app and the bare route.
 *
 * Requests: each connection owns the agents whose index ≡ its own (mod connections) and
 * cycles over them, toggling each between Not Ready (`{"reason":4}`) and Ready (`{}`), so
 * no two connections touch the same agent and every request is a real state change. All
 * agents are assumed Ready when a run starts (the parent restores that between runs).
 */
import autocannon from 'autocannon';
import { CpuMeter, percentile } from './stats';

/** A run request from the parent. */
export interface LoadRequest {
  kind: 'run';
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string;
  token: string;
  agents: string[];
  connections: number;
  durationSec: number;
  /** Check that each 200 body reports `"changed":true` (the app does; the bare route does not). */
  expectChanged: boolean;
}

/** A run's outcome, sent back to the parent. */
export interface LoadResult {
  responses: number;
  elapsedMs: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  statusCounts: Record<string, number>;
  non200: number;
  /** Up to 10 non-200 (or not-a-change) responses, for the report. */
  badSamples: { status: number; path: string; body: string }[];
  /** 200 responses whose body did not report a change (only with expectChanged). */
  unchanged: number;
  errors: number;
  timeouts: number;
  loaderCpuPct: number;
}

const BODY_NOT_READY = '{"reason":4}';
const BODY_READY = '{}';

async function runLoad(req: LoadRequest): Promise<LoadResult> {
  const ready = new Map<string, boolean>(req.agents.map((a) => [a, true]));
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  const badSamples: LoadResult['badSamples'] = [];
  let unchanged = 0;
  let nextClient = 0;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${req.token}` };

  const setupClient = (client: autocannon.Client): void => {
    const idx = nextClient++;
    const owned = req.agents.filter((_, i) => i % req.connections === idx);
    let cursor = 0;
    let pending: { agent: string; notReady: boolean; path: string } | null = null;
    client.setRequests([
      {
        method: 'POST',
        setupRequest: (r) => {
          const agent = owned[cursor++ % owned.length]!;
          const notReady = ready.get(agent)!;
          const path = `/callcenter/default/agent/${agent}/${notReady ? 'not_ready' : 'ready'}`;
          pending = { agent, notReady, path };
          return { ...r, method: 'POST', path, headers, body: notReady ? BODY_NOT_READY : BODY_READY };
        },
        onResponse: (status, body) => {
          const p = pending;
          if (p === null) return;
          pending = null;
          if (status === 200) {
            ready.set(p.agent, !p.notReady);
            if (req.expectChanged && !body.includes('"changed":true')) {
              unchanged++;
              if (badSamples.length < 10) badSamples.push({ status, path: p.path, body: body.slice(0, 300) });
            }
          } else if (badSamples.length < 10) {
            badSamples.push({ status, path: p.path, body: body.slice(0, 300) });
          }
        },
      },
    ]);
  };

  const cpu = new CpuMeter();
  const t0 = performance.now();
  let tLast = t0;
  const instance = autocannon({
    url: req.url,
    connections: req.connections,
    duration: req.durationSec,
    pipelining: 1,
    timeout: 10,
    setupClient,
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    tLast = performance.now();
  });
  const res = await instance;
  const loaderCpuPct = cpu.pct();
  const sorted = Float64Array.from(latencies).sort();
  const elapsedMs = tLast - t0;
  const non200 = Object.entries(statusCounts).reduce((t, [s, n]) => (s === '200' ? t : t + n), 0);
  return {
    responses: latencies.length,
    elapsedMs,
    requestsPerSec: (latencies.length / elapsedMs) * 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    p999Ms: percentile(sorted, 99.9),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : NaN,
    statusCounts,
    non200,
    badSamples,
    unchanged,
    errors: res.errors,
    timeouts: res.timeouts,
    loaderCpuPct,
  };
}

process.on('message', (msg: LoadRequest) => {
  if (msg.kind !== 'run') return;
  runLoad(msg).then(
    (r) => process.send?.({ ok: true, result: r }),
    (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});

// The parent closes the IPC channel when it is done: leave then.
process.on('disconnect', () => process.exit(0));
