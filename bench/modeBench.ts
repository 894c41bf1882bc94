/**
 * Part `modes` (issue 6): mode changes per second through REST — pause / resume alternating on
 * live conversations on a real FreeSWITCH — and the time from the REST request to FreeSWITCH
 * reporting the member's new flags, with the request sent to the owning instance (`local`) or
 * to another instance that hands it to the owner through Redis (`handed`), in the same run.
 *
 * - Instance A (this process) owns every conversation: createApp with a drachtio-srf
 *   connected to a drachtio-server of its own and the drachtio-fsmrf adapter on a FreeSWITCH of
 *   its own (config/freeswitch/, RTP range widened for ~300 channels), as
 *   test/helpers/sipStack.ts wires them. Instance B (this process too) shares the Redis and
 *   serves REST only (no SIP, no media): every request it gets goes to A over the command bus
 *   (lib/conversation/commandBus.ts).
 * - Each conversation is opened on A's hub with a caller leg and an agent leg (agent a<i> of
 *   queue 8000): both real FreeSWITCH channels (fsmrf createEndpoint with an SDP whose RTP goes
 *   to a loopback port nobody listens on) in a real mod_conference conference; their SIP side
 *   is a stand-in dialog (as in test/redis/conversationsRest.test.ts), not measured. The mode
 *   change itself is all real: REST, Redis, the conference's mute / deaf api commands and the
 *   caller's hold music (played while its only peer is on hold, stopped on resume). Every
 *   channel is created before any is joined (see the set-up below for why), and the adapter's
 *   member ids are checked against FreeSWITCH's. Every other agent starts on hold, so half of
 *   them are on hold at any time while the ops go round.
 * - FreeSWITCH's own account of the change is read on an event socket of the bench's own
 *   (`CUSTOM conference::maintenance`): a probe first records which member actions a pause
 *   and a resume fire for the agent's channel (Unique-ID = the agent endpoint's uuid); the
 *   measurement then waits for those (filtered on that socket, so the bench does not parse
 *   every other maintenance event).
 * - Each op picks the next conversation (round-robin) and toggles its agent: pause when
 *   active, resume (mode 1) when on hold; `concurrency` ops in flight, an op done when both
 *   the 200 and the events are in (or the events' timeout passed). REST latency is request
 *   written → 200 read; flags latency is request written → the later of the op's events read
 *   off the event socket. Rounds (bounded in ops and in time) alternate local / handed (ABBA)
 *   after a warm-up of each.
 *
 * CPU: % of one core over each round, for this process (both instances, the HTTP client and
 * the event tap), FreeSWITCH (/proc/<pid>/stat) and redis-server (INFO cpu); machine busy
 * over all cores. Before the rounds, FreeSWITCH's CPU with every channel up and nothing going
 * on is sampled, with its api round trip on an event socket meanwhile: 300 channels are not
 * free, and on a small machine that baseline is most of what a round competes with.
 */
import { createSocket } from 'node:dgram';
import { once, type EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createConnection } from 'node:net';
import { performance } from 'node:perf_hooks';
import Srf from 'drachtio-srf';
import type { Redis } from 'ioredis';
import type { Conversation } from '../app/conversation/conversation';
import { createApp, type App } from '../app/createApp';
import { Leg } from '../app/sip/leg';
import type { SipDialog, SrfLike } from '../app/sip/types';
import { HOLD, LegKind, type Mode } from '../lib/conversation/model';
import { createLogger } from '../lib/logger';
import { createRedis } from '../lib/store/redis';
import { createFsmrfMediaServer, EslFrameReader, type FreeswitchAddress, type FsmrfMediaServer } from '../media/fsmrf';
import type { Endpoint } from '../media/port';
import { testConfig } from '../test/helpers/config';
import { startFreeSwitch, subscribeFsEvents, type FreeSwitchServer, type FsEvent } from '../test/helpers/freeswitch';
import { onPath, procCpu, startQuietDrachtio, type Drachtio } from './sipBench';
import { CpuMeter, fmt, median, out, percentile, redisCpuMeter, table } from './stats';

/** Defaults of {@link ModeBenchOptions}. */
export const MODE_BENCH_DEFAULTS = {
  conversations: 100,
  opsPerRound: 1000,
  warmupOps: 200,
  concurrency: 10,
  rounds: 6,
  /** How long an op waits for its FreeSWITCH events before it counts as missing them. */
  eventTimeoutMs: 5000,
  /** Upper bound of one round (and of one warm-up): no new op starts after it. */
  roundBudgetMs: 8000,
  warmupBudgetMs: 5000,
  /** FreeSWITCH RTP range: 2 ports per channel, 2 channels per conversation (caller, agent). */
  rtpPorts: 1500,
  /** Conversations set up at once. */
  setupConcurrency: 10,
  /** How long FreeSWITCH's CPU is sampled with every channel up and nothing going on. */
  idleSampleMs: 3000,
} as const;

/** Settings of part `modes`. */
export interface ModeBenchOptions {
  redisUrl: string;
  /** A connection for the bench's own reads (Redis CPU). */
  admin: Redis;
  conversations?: number;
  opsPerRound?: number;
  warmupOps?: number;
  concurrency?: number;
  rounds?: number;
  eventTimeoutMs?: number;
  roundBudgetMs?: number;
  warmupBudgetMs?: number;
  rtpPorts?: number;
  setupConcurrency?: number;
  idleSampleMs?: number;
}

type VariantId = 'local' | 'handed';

/** One round of one variant. */
export interface ModeRound {
  variant: VariantId;
  /** Ops completed (fewer than asked when the round's budget ran out). */
  ops: number;
  pauses: number;
  resumes: number;
  wallSec: number;
  opsPerSec: number;
  restP50Ms: number;
  restP99Ms: number;
  /** Over the ops whose events all came. */
  flagsP50Ms: number;
  flagsP99Ms: number;
  /** Ops whose REST answer came before the last of their events (the rest: events first). */
  restFirst: number;
  non200: number;
  /** Ops answered 200 whose events did not all come within the timeout. */
  missingEvents: number;
  /** 200s that were no change (prev = mode). */
  unchanged: number;
  nodeCpuPct: number;
  freeswitchCpuPct: number;
  redisCpuPct: number;
  /** The whole machine's CPU busy, % of all cores (other work on the box included). */
  machineCpuPct: number;
}

/** A variant's rounds and their medians. */
export interface ModeVariantResult {
  id: VariantId;
  label: string;
  rounds: ModeRound[];
  median: Pick<ModeRound, 'opsPerSec' | 'restP50Ms' | 'restP99Ms' | 'flagsP50Ms' | 'flagsP99Ms' | 'nodeCpuPct' | 'freeswitchCpuPct' | 'redisCpuPct' | 'machineCpuPct'>;
}

/** What the probe saw FreeSWITCH report for one pause and one resume of one agent. */
export interface ModeProbe {
  /** Maintenance actions for the agent's channel, in arrival order. */
  pauseAgentActions: string[];
  resumeAgentActions: string[];
  /** Maintenance actions for the caller's channel (its hold music). */
  pauseCallerActions: string[];
  resumeCallerActions: string[];
}

/** Everything part `modes` measured. */
export interface ModeBenchResult {
  skipped?: undefined;
  freeswitch: string;
  drachtio: string;
  conversations: number;
  channels: number;
  opsPerRound: number;
  roundBudgetMs: number;
  warmupOps: number;
  concurrency: number;
  rounds: number;
  eventTimeoutMs: number;
  rtpPorts: number;
  setupSec: number;
  /**
   * Legs found after the parallel set-up with a member id in the adapter other than
   * FreeSWITCH's (their conversations were set up again), as `agent (attempt) leg: ids`.
   */
  memberIdMismatches: string[];
  /** With every channel up and no mode change: FreeSWITCH CPU (% of one core) and machine busy (% of all cores). */
  idle: { freeswitchCpuPct: number; machineCpuPct: number; apiP50Ms: number; apiP99Ms: number; apiSamples: number };
  probe: ModeProbe;
  /** The actions each op waits for (the flag actions the probe saw for the agent). */
  measuredOn: { pause: string[]; resume: string[] };
  /** Flag actions expected but not seen in the probe. */
  notFired: string[];
  local: ModeVariantResult;
  handed: ModeVariantResult;
  /** handed / local of the medians. */
  ratios: { opsPerSec: number; restP99: number; flagsP99: number };
  /** Over every run, warm-up included. */
  non200Total: number;
  missingEventsTotal: number;
  unchangedTotal: number;
  badSamples: string[];
  /** After the run: each agent's mode in Redis and in FreeSWITCH (json_list flags) as the bench expects. */
  sanity: { checked: number; problems: string[] };
  /** App log lines at warn and above, by message. */
  appLog: Record<string, number>;
  /** Processes this part started that were still alive after it stopped them. */
  leftover: string[];
}

/** Why part `modes` did not run. */
export interface ModeBenchSkipped {
  skipped: string;
}

const CC = 'default';
const QUEUE = '8000';
const PAUSE_ACTIONS = ['mute-member', 'deaf-member'];
const RESUME_ACTIONS = ['unmute-member', 'undeaf-member'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A stand-in SIP dialog: nobody hangs up, and a BYE is a no-op. */
function standInDialog(): SipDialog {
  return {
    on: () => undefined,
    destroy: () => Promise.resolve(),
    modify: () => Promise.reject(new Error('the bench does not re-INVITE')),
    remote: { sdp: '' },
    sip: { callId: `bench-${Math.random().toString(36).slice(2)}` },
  };
}

/** A loopback UDP port nobody listens on (bound, read, closed). */
async function deadUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

/** An SDP offer: PCMU audio from/to `port` on loopback. */
const offerSdp = (port: number): string =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n`;

/** The pid of this process's child whose command is `comm` (from /proc), if any. */
function childPid(comm: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (name === comm && ppid === process.pid) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Busy and total jiffies of all cores together, from /proc/stat (zeros where unavailable). */
function machineCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total }; // idle + iowait
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** The member id the media adapter holds for an endpoint in a conference (media/fsmrf.ts FsEndpoint.membership). */
const adapterMemberId = (ep: Endpoint): number | undefined => (ep as Endpoint & { membership?: { memberId?: number } }).membership?.memberId;

/** True while a process exists (and is not a zombie). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** An event socket that hands every event to `onEvent` with the time its bytes were read. */
interface FsTap {
  /** Runs an api command on this connection (FreeSWITCH answers a connection's api commands one at a time, as the adapter's). */
  api(command: string): Promise<string>;
  close(): void;
}

/**
 * A lean event subscription for the measurement: unlike subscribeFsEvents it keeps nothing
 * (no list of every event, no scan of it per wait) and sends `commands` (`event json ...`,
 * `filter ...`) one after the other, resolving once FreeSWITCH accepted the last.
 */
function tapFsEvents(esl: FreeswitchAddress, commands: readonly string[], onEvent: (e: FsEvent, at: number) => void, timeoutMs = 10000): Promise<FsTap> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: esl.host, port: esl.port });
    sock.setNoDelay(true);
    const frames = new EslFrameReader();
    let next = -1; // -1: not authenticated yet
    let live = false;
    const apiWaiters: { resolve: (body: string) => void; reject: (err: Error) => void }[] = [];
    sock.on('close', () => {
      for (const w of apiWaiters.splice(0)) w.reject(new Error('event tap closed'));
    });
    const timer = setTimeout(() => fail(new Error(`event tap ${esl.host}:${esl.port}: not subscribed within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.on('error', (err) => (live ? undefined : fail(err)));
    sock.on('data', (chunk: Buffer) => {
      const at = performance.now();
      for (const { headers, body } of frames.push(chunk)) {
        const type = headers['Content-Type'];
        if (type === 'auth/request') {
          sock.write(`auth ${esl.secret}\n\n`);
        } else if (type === 'command/reply' && !live) {
          const reply = headers['Reply-Text'] ?? '';
          if (!reply.startsWith('+OK')) return fail(new Error(`event tap: "${next < 0 ? 'auth' : commands[next]}" refused: ${reply}`));
          next += 1;
          if (next < commands.length) sock.write(`${commands[next]}\n\n`);
          else {
            live = true;
            clearTimeout(timer);
            resolve({
              api: (command) =>
                new Promise<string>((res, rej) => {
                  apiWaiters.push({ resolve: res, reject: rej });
                  sock.write(`api ${command}\n\n`);
                }),
              close: () => sock.destroy(),
            });
          }
        } else if (type === 'text/event-json') {
          onEvent(JSON.parse(body) as FsEvent, at);
        } else if (type === 'api/response') {
          apiWaiters.shift()?.resolve(body);
        }
      }
    });
  });
}

/** A keep-alive JSON POST; resolves with the status and body. */
function post(agent: http.Agent, port: number, path: string, token: string, json: unknown): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(json);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A conversation under test and what the bench believes its agent's mode is. */
interface BenchConversation {
  conv: Conversation;
  agent: string;
  agentEp: Endpoint;
  callerEp: Endpoint;
  mode: number;
}

/** A pino destination counting the app's log lines by message. */
class LogTally {
  readonly counts: Record<string, number> = {};
  write(line: string): void {
    let key = 'unparsable log line';
    try {
      const j = JSON.parse(line) as { msg?: string; err?: { message?: string } | string };
      const err = typeof j.err === 'string' ? j.err : j.err?.message;
      key = err !== undefined ? `${j.msg ?? ''}: ${err}` : (j.msg ?? '');
    } catch {
      // counted as unparsable
    }
    this.counts[key] = (this.counts[key] ?? 0) + 1;
  }
}

/** Measures mode changes through REST on a real FreeSWITCH, owner-local vs handed over, or says why it cannot run here. */
export async function runModeBench(opts: ModeBenchOptions): Promise<ModeBenchResult | ModeBenchSkipped> {
  const o = { ...MODE_BENCH_DEFAULTS, ...opts };
  const missing = ['drachtio', 'freeswitch'].filter((b) => !onPath(b));
  if (missing.length > 0) return { skipped: `${missing.join(' and ')} not on PATH` };

  const tSetup = Date.now();
  let drachtio: Drachtio | undefined;
  let fs: FreeSwitchServer | undefined;
  let fsPid: number | undefined;
  let fsmrf: FsmrfMediaServer | undefined;
  let appA: App | undefined;
  let appB: App | undefined;
  let tap: FsTap | undefined;
  const connA = createRedis(o.redisUrl);
  const connB = createRedis(o.redisUrl);
  const agentA = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const agentB = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const tally = new LogTally();
  const leftover: string[] = [];
  try {
    [drachtio, fs] = await Promise.all([startQuietDrachtio(), startFreeSwitch({ rtpPorts: o.rtpPorts })]);
    fsPid = childPid('freeswitch');
    const fsVersion = /FreeSWITCH Version (\S+)/.exec(await fs.api('version'))?.[1] ?? '?';
    const base = { redisUrl: o.redisUrl, extraAgents: o.conversations };
    const configA = {
      ...testConfig({ ...base, instanceId: 'bench-a', drachtio: { host: '127.0.0.1', port: drachtio.adminPort, secret: drachtio.secret } }),
      freeswitch: fs.esl,
    };
    const configB = testConfig({ ...base, instanceId: 'bench-b' });
    const logger = createLogger('warn', {}, tally);

    // Instance A: SIP and media, as sipStack / app/main.ts.
    const srf = new Srf() as unknown as SrfLike & EventEmitter;
    fsmrf = createFsmrfMediaServer({ srf, freeswitch: configA.freeswitch, logger });
    const media = fsmrf;
    const connected = once(srf, 'connect') as Promise<[Error | null]>;
    appA = await createApp(configA, { redis: connA, logger, srf, media, probes: { media: () => media.health() } });
    const { port: portA } = await appA.start();
    const [err] = await connected;
    if (err) throw err;
    await media.whenAvailable(30000);
    // Instance B: REST only.
    appB = await createApp(configB, { redis: connB, logger });
    const { port: portB } = await appB.start();
    const token = configA.apiTokens[0]!.token;

    // The conversations: caller + agent a<i>, both real FreeSWITCH channels in mode 1.
    const rtpPort = await deadUdpPort();
    const sdp = offerSdp(rtpPort);
    const hub = appA.hub;
    const fsApi = fs.api;
    /** A conversation and its two channels, not joined yet. */
    interface Unjoined {
      conv: Conversation;
      agent: string;
      callerEp: Endpoint;
      agentEp: Endpoint;
    }
    const create = async (i: number): Promise<Unjoined> => {
      const agent = `a${i + 1}`;
      const conv = await hub.open({ cc: CC, queue: QUEUE, task: `bench-task-${agent}` });
      return { conv, agent, callerEp: await media.createEndpoint({ remoteSdp: sdp }), agentEp: await media.createEndpoint({ remoteSdp: sdp }) };
    };
    // Every other agent starts on hold, so that toggling round-robin keeps half of them on
    // hold at any time (and half of the callers hearing hold music): the load FreeSWITCH
    // carries does not swing with where in the cycle a round starts.
    const initialMode = (i: number): Mode => (i % 2 === 0 ? 1 : HOLD);
    const join = async (u: Unjoined, i: number): Promise<BenchConversation> => {
      const mode = initialMode(i);
      await u.conv.add({ kind: LegKind.Caller, ep: u.callerEp, sip: new Leg(standInDialog()), mode: 1 });
      await u.conv.add({ kind: LegKind.Agent, agent: u.agent, ep: u.agentEp, sip: new Leg(standInDialog()), mode });
      return { ...u, mode };
    };
    const openOne = async (i: number): Promise<BenchConversation> => join(await create(i), i);
    /** Runs `fn` on 0..n-1, `o.setupConcurrency` at a time. */
    const parallel = async <T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> => {
      const results = new Array<T>(n);
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(o.setupConcurrency, n) }, async () => {
          for (let i = next++; i < n; i = next++) results[i] = await fn(i);
        }),
      );
      return results;
    };
    /** Legs whose member id in the adapter is not FreeSWITCH's member id of that channel. */
    const wrongMemberIds = async (c: BenchConversation): Promise<string[]> => {
      const members = (JSON.parse(await fsApi(`conference ccs-${c.conv.id} json_list`)) as { members?: { id?: number; uuid?: string }[] }[])[0]?.members ?? [];
      return [c.callerEp, c.agentEp].flatMap((ep) => {
        const held = adapterMemberId(ep);
        const real = members.find((m) => m.uuid === ep.id)?.id;
        return held === real ? [] : [`${ep === c.agentEp ? 'agent' : 'caller'} ${ep.id}: adapter member ${String(held)}, FreeSWITCH member ${String(real)}`];
      });
    };
    // Every leg's member id in the adapter is checked against FreeSWITCH's: drachtio-fsmrf's
    // join used to report another channel's id under parallel set-up (media/fsmrf.ts now reads
    // mod_conference's own); a wrong one would make every mode change of that leg fail.
    const unjoined = await parallel(o.conversations, create);
    const convs = await parallel(o.conversations, (i) => join(unjoined[i]!, i));
    const memberIdMismatches: string[] = [];
    for (let i = 0; i < convs.length; i++) {
      for (let attempt = 0; ; attempt++) {
        const wrong = await wrongMemberIds(convs[i]!);
        if (wrong.length === 0) break;
        memberIdMismatches.push(...wrong.map((w) => `${convs[i]!.agent} (attempt ${attempt + 1}) ${w}`));
        if (attempt >= 3) throw new Error(`conversation of ${convs[i]!.agent}: the adapter's member ids stay wrong: ${wrong.join('; ')}`);
        await convs[i]!.conv.end('bench: wrong member id');
        convs[i] = await openOne(i);
      }
    }
    // B hands commands to A only while A's presence key is there.
    const presence = `${configA.redis.keyPrefix}:{${CC}}:presence:${appA.guard.incarnation}`;
    for (let i = 0; (await connA.exists(presence)) !== 1; i++) {
      if (i > 500) throw new Error(`instance A's command bus presence ${presence} never appeared`);
      await sleep(10);
    }
    const channels = Number(/(\d+) total/.exec(await fs.api('show channels count'))?.[1] ?? NaN);
    const setupSec = (Date.now() - tSetup) / 1000;
    // The measurement's event tap: only the flag actions, matched to the op waiting on that channel.
    interface Pending {
      need: Set<string>;
      done: (at: number) => void;
    }
    const pending = new Map<string, Pending>();
    const tapped = await tapFsEvents(
      fs.esl,
      ['event json CUSTOM conference::maintenance', ...[...PAUSE_ACTIONS, ...RESUME_ACTIONS].map((a) => `filter Action ${a}`)],
      (e, at) => {
        const uuid = e['Unique-ID'];
        const p = uuid === undefined ? undefined : pending.get(uuid);
        if (p === undefined || !p.need.delete(e.Action ?? '')) return;
        if (p.need.size === 0) {
          pending.delete(uuid!);
          p.done(at);
        }
      },
    );
    tap = tapped;
    // What FreeSWITCH costs with every channel up and no mode change going on, and how soon
    // it answers an api command on an event socket meanwhile (one every 20 ms, sequential).
    const idle = await (async () => {
      const f0 = fsPid === undefined ? NaN : procCpu(fsPid).self;
      const m0 = machineCpu();
      const t0 = performance.now();
      const rtt: number[] = [];
      while (performance.now() - t0 < o.idleSampleMs) {
        const sent = performance.now();
        await tapped.api('uptime');
        rtt.push(performance.now() - sent);
        await sleep(20);
      }
      const wallSec = (performance.now() - t0) / 1000;
      const m1 = machineCpu();
      rtt.sort((a, b) => a - b);
      return {
        freeswitchCpuPct: fsPid === undefined ? NaN : ((procCpu(fsPid).self - f0) / wallSec) * 100,
        machineCpuPct: m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 : NaN,
        apiP50Ms: percentile(rtt, 50),
        apiP99Ms: percentile(rtt, 99),
        apiSamples: rtt.length,
      };
    })();

    const pathOf = (agent: string, op: 'pause' | 'resume'): string => `/callcenter/${CC}/agent/${agent}/${op}`;
    const bodyOf = (c: BenchConversation, pause: boolean): unknown => (pause ? { conversation_id: c.conv.id } : { conversation_id: c.conv.id, mode: 1 });
    const badSamples: string[] = [];
    const bad = (what: string): void => {
      if (badSamples.length < 8) badSamples.push(what.slice(0, 400));
    };

    // Probe: which maintenance actions does FreeSWITCH fire for a pause and a resume?
    const probe = await (async (): Promise<ModeProbe> => {
      const c = convs[0]!;
      const sub = await subscribeFsEvents(fs.esl, 'CUSTOM conference::maintenance');
      try {
        const step = async (pause: boolean): Promise<{ agent: string[]; caller: string[] }> => {
          const from = sub.received.length;
          const res = await post(agentA, portA, pathOf(c.agent, pause ? 'pause' : 'resume'), token, bodyOf(c, pause));
          if (res.status !== 200) throw new Error(`probe ${pause ? 'pause' : 'resume'}: ${res.status} ${res.body}`);
          c.mode = pause ? HOLD : 1;
          await sleep(500); // whatever the change fires has come by then
          const evs = sub.received.slice(from);
          return {
            agent: evs.filter((e) => e['Unique-ID'] === c.agentEp.id).map((e) => e.Action ?? '?'),
            caller: evs.filter((e) => e['Unique-ID'] === c.callerEp.id).map((e) => e.Action ?? '?'),
          };
        };
        const p = await step(true);
        const r = await step(false);
        return { pauseAgentActions: p.agent, resumeAgentActions: r.agent, pauseCallerActions: p.caller, resumeCallerActions: r.caller };
      } finally {
        sub.close();
      }
    })();
    const measuredOn = { pause: PAUSE_ACTIONS.filter((a) => probe.pauseAgentActions.includes(a)), resume: RESUME_ACTIONS.filter((a) => probe.resumeAgentActions.includes(a)) };
    const notFired = [...PAUSE_ACTIONS.filter((a) => !measuredOn.pause.includes(a)), ...RESUME_ACTIONS.filter((a) => !measuredOn.resume.includes(a))];

    /** Resolves with the time the last of `actions` for `uuid` arrived, or undefined after the timeout. */
    const awaitFlags = (uuid: string, actions: readonly string[]): { at: Promise<number | undefined>; cancel(): void } => {
      let cancel = (): void => undefined;
      const at = new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(uuid);
          resolve(undefined);
        }, o.eventTimeoutMs);
        pending.set(uuid, {
          need: new Set(actions),
          done: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
        });
        cancel = () => {
          clearTimeout(timer);
          pending.delete(uuid);
          resolve(undefined);
        };
      });
      return { at, cancel };
    };

    let cursor = 1; // the probe used conversation 0
    let non200Total = 0;
    let missingEventsTotal = 0;
    let unchangedTotal = 0;

    /** Runs `ops` ops against `variant` with `concurrency` in flight; stops early at the round budget. */
    const runRound = async (variant: VariantId, ops: number, budgetMs: number): Promise<ModeRound> => {
      const [port, agent] = variant === 'local' ? [portA, agentA] : [portB, agentB];
      const rest: number[] = [];
      const flags: number[] = [];
      let done = 0;
      let started = 0;
      let pauses = 0;
      let resumes = 0;
      let restFirst = 0;
      let non200 = 0;
      let missingEvents = 0;
      let unchanged = 0;
      const deadline = performance.now() + budgetMs;
      const node = new CpuMeter();
      const rcpu = await redisCpuMeter(o.admin);
      const fs0 = fsPid === undefined ? NaN : procCpu(fsPid).self;
      const m0 = machineCpu();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (started < ops && performance.now() < deadline) {
            started += 1;
            const c = convs[cursor % convs.length]!;
            cursor += 1;
            const pause = c.mode !== HOLD;
            const actions = pause ? measuredOn.pause : measuredOn.resume;
            const wait = actions.length > 0 ? awaitFlags(c.agentEp.id, actions) : undefined;
            const sent = performance.now();
            let res: { status: number; body: string };
            try {
              res = await post(agent, port, pathOf(c.agent, pause ? 'pause' : 'resume'), token, bodyOf(c, pause));
            } catch (e) {
              res = { status: 0, body: e instanceof Error ? e.message : String(e) };
            }
            const answered = performance.now();
            if (pause) pauses += 1;
            else resumes += 1;
            if (res.status !== 200) {
              non200 += 1;
              wait?.cancel();
              bad(`${variant} ${pause ? 'pause' : 'resume'} ${c.agent}: ${res.status} ${res.body}`);
            } else {
              rest.push(answered - sent);
              const r = JSON.parse(res.body) as { prev?: number; mode?: number };
              if (r.prev === r.mode) unchanged += 1;
              if (typeof r.mode === 'number') c.mode = r.mode;
              if (wait !== undefined) {
                const at = await wait.at;
                if (at === undefined) {
                  missingEvents += 1;
                  bad(`${variant} ${pause ? 'pause' : 'resume'} ${c.agent}: 200 but no ${actions.join(' + ')} for ${c.agentEp.id} within ${o.eventTimeoutMs} ms`);
                } else {
                  flags.push(at - sent);
                  if (answered < at) restFirst += 1;
                }
              }
            }
            done += 1;
          }
        }),
      );
      const wallSec = (performance.now() - t0) / 1000;
      const nodeCpuPct = node.pct();
      const redisCpuPct = await rcpu.pct();
      const freeswitchCpuPct = fsPid === undefined ? NaN : ((procCpu(fsPid).self - fs0) / wallSec) * 100;
      const m1 = machineCpu();
      const machineCpuPct = m1.total > m0.total ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 : NaN;
      rest.sort((a, b) => a - b);
      flags.sort((a, b) => a - b);
      non200Total += non200;
      missingEventsTotal += missingEvents;
      unchangedTotal += unchanged;
      return {
        variant,
        ops: done,
        pauses,
        resumes,
        wallSec,
        opsPerSec: done / wallSec,
        restP50Ms: percentile(rest, 50),
        restP99Ms: percentile(rest, 99),
        flagsP50Ms: percentile(flags, 50),
        flagsP99Ms: percentile(flags, 99),
        restFirst,
        non200,
        missingEvents,
        unchanged,
        nodeCpuPct,
        freeswitchCpuPct,
        redisCpuPct,
        machineCpuPct,
      };
    };

    await runRound('local', o.warmupOps, o.warmupBudgetMs);
    await runRound('handed', o.warmupOps, o.warmupBudgetMs);
    const rounds: Record<VariantId, ModeRound[]> = { local: [], handed: [] };
    for (let r = 0; r < o.rounds; r++) {
      const order: VariantId[] = r % 2 === 0 ? ['local', 'handed'] : ['handed', 'local'];
      for (const v of order) rounds[v].push(await runRound(v, o.opsPerRound, o.roundBudgetMs));
    }
    tap.close();
    tap = undefined;

    const variant = (id: VariantId, label: string): ModeVariantResult => {
      const rs = rounds[id];
      const m = (f: (x: ModeRound) => number): number => median(rs.map(f));
      return {
        id,
        label,
        rounds: rs,
        median: {
          opsPerSec: m((x) => x.opsPerSec),
          restP50Ms: m((x) => x.restP50Ms),
          restP99Ms: m((x) => x.restP99Ms),
          flagsP50Ms: m((x) => x.flagsP50Ms),
          flagsP99Ms: m((x) => x.flagsP99Ms),
          nodeCpuPct: m((x) => x.nodeCpuPct),
          freeswitchCpuPct: m((x) => x.freeswitchCpuPct),
          redisCpuPct: m((x) => x.redisCpuPct),
          machineCpuPct: m((x) => x.machineCpuPct),
        },
      };
    };
    const local = variant('local', 'local (REST to the owner A)');
    const handed = variant('handed', 'handed (REST to B → Redis → A)');

    // After the run: the record and FreeSWITCH's member flags say what the bench last set.
    const problems: string[] = [];
    for (const c of convs) {
      const rec = await appA.conversations.get(CC, c.conv.id);
      const recMode = rec?.legs.find((l) => l.agent === c.agent)?.mode;
      if (recMode !== c.mode) problems.push(`${c.agent}: record mode ${String(recMode)}, expected ${c.mode}`);
      const listed = JSON.parse(await fs.api(`conference ccs-${c.conv.id} json_list`)) as { members?: { uuid?: string; flags?: { can_hear?: boolean; can_speak?: boolean } }[] }[];
      const member = listed[0]?.members?.find((mb) => mb.uuid === c.agentEp.id);
      const want = c.mode === HOLD ? { can_hear: false, can_speak: false } : { can_hear: true, can_speak: true };
      if (member?.flags?.can_hear !== want.can_hear || member.flags.can_speak !== want.can_speak) {
        problems.push(`${c.agent}: FreeSWITCH flags ${JSON.stringify(member?.flags ?? null)}, expected mode ${c.mode}`);
      }
    }

    return {
      freeswitch: fsVersion,
      drachtio: drachtio.version,
      conversations: o.conversations,
      channels,
      opsPerRound: o.opsPerRound,
      roundBudgetMs: o.roundBudgetMs,
      warmupOps: o.warmupOps,
      concurrency: o.concurrency,
      rounds: o.rounds,
      eventTimeoutMs: o.eventTimeoutMs,
      rtpPorts: o.rtpPorts,
      setupSec,
      memberIdMismatches,
      idle,
      probe,
      measuredOn,
      notFired,
      local,
      handed,
      ratios: {
        opsPerSec: handed.median.opsPerSec / local.median.opsPerSec,
        restP99: handed.median.restP99Ms / local.median.restP99Ms,
        flagsP99: handed.median.flagsP99Ms / local.median.flagsP99Ms,
      },
      non200Total,
      missingEventsTotal,
      unchangedTotal,
      badSamples,
      sanity: { checked: convs.length, problems },
      appLog: tally.counts,
      leftover,
    };
  } finally {
    tap?.close();
    // Every conversation ends: stand-in BYEs, conferences and channels hung up on FreeSWITCH.
    await appA?.hub.endAll('bench over').catch(() => undefined);
    await appB?.stop().catch(() => undefined);
    await appA?.stop().catch(() => undefined);
    await fsmrf?.stop();
    agentA.destroy();
    agentB.destroy();
    connA.disconnect();
    connB.disconnect();
    await fs?.stop();
    await drachtio?.stop();
    if (fsPid !== undefined && alive(fsPid)) leftover.push(`freeswitch ${fsPid}`);
    if (drachtio !== undefined && alive(drachtio.pid)) leftover.push(`drachtio ${drachtio.pid}`);
  }
}

/** Prints part `modes` (or a loud line when it was skipped). */
export function printModeBench(r: ModeBenchResult | ModeBenchSkipped): void {
  if (r.skipped !== undefined) {
    out(`\n6. Mode changes: SKIPPED (${r.skipped}; install drachtio-server and FreeSWITCH to run it)\n`);
    return;
  }
  out(
    `\n6. Mode changes through REST on FreeSWITCH ${r.freeswitch} (drachtio-server ${r.drachtio}): pause / resume (mode 1) alternating on ${r.conversations} live conversations ` +
      `(caller + agent, ${fmt(r.channels)} FreeSWITCH channels), ${r.concurrency} in flight, ${fmt(r.opsPerRound)} ops or ${fmt(r.roundBudgetMs / 1000)} s per round, median of ${r.rounds} alternated rounds ` +
      `after ${fmt(r.warmupOps)} warm-up ops per variant; setup ${fmt(r.setupSec, 1)} s\n`,
  );
  out(
    `  idle with every channel up: FreeSWITCH ${fmt(r.idle.freeswitchCpuPct)}% of a core, machine ${fmt(r.idle.machineCpuPct)}% busy (all cores, other work included); ` +
      `FreeSWITCH api round trip (\`api uptime\` on an event socket, ${r.idle.apiSamples} sequential) p50 ${fmt(r.idle.apiP50Ms, 2)} / p99 ${fmt(r.idle.apiP99Ms, 2)} ms\n`,
  );
  out(
    `  flags = REST request sent → the later of FreeSWITCH's conference::maintenance events for the agent's channel: pause ${r.measuredOn.pause.join(' + ') || '(none fired)'}, ` +
      `resume ${r.measuredOn.resume.join(' + ') || '(none fired)'}\n\n`,
  );
  const pct = (n: number): string => `${fmt(n)}%`;
  const row = (v: ModeVariantResult): string[] => [
    v.label,
    fmt(v.median.opsPerSec),
    `${fmt(v.median.restP50Ms, 2)} / ${fmt(v.median.restP99Ms, 2)}`,
    `${fmt(v.median.flagsP50Ms, 2)} / ${fmt(v.median.flagsP99Ms, 2)}`,
    pct(v.median.nodeCpuPct),
    pct(v.median.freeswitchCpuPct),
    pct(v.median.redisCpuPct),
    pct(v.median.machineCpuPct),
    v.rounds.map((s) => `${fmt(s.opsPerSec)}${s.ops < r.opsPerRound ? '*' : ''}`).join(' / '),
  ];
  out(table(['variant', 'ops/s', 'REST p50 / p99 ms', 'flags p50 / p99 ms', 'node CPU', 'FreeSWITCH CPU', 'redis CPU', 'machine busy', 'rounds (ops/s)'], [row(r.local), row(r.handed)]));
  out('  (node CPU: this process, both instances, the HTTP client and the event tap; CPU: % of one core; machine busy: % of all cores, other work on the box included; *: round stopped at its time budget)\n');
  out(
    `\n  ratio handed/local: ops/s ${r.ratios.opsPerSec.toFixed(3)}, REST p99 ${r.ratios.restP99.toFixed(3)}, flags p99 ${r.ratios.flagsP99.toFixed(3)}\n`,
  );
  const all = [...r.local.rounds, ...r.handed.rounds];
  const withFlags = all.reduce((n, x) => n + x.ops - x.non200 - x.missingEvents, 0);
  out(`  ops whose 200 came before their last flag event: ${fmt(all.reduce((n, x) => n + x.restFirst, 0))} of ${fmt(withFlags)} (measured rounds)\n`);
  const p = r.probe;
  out(
    `  probe (one pause, one resume): agent channel pause [${p.pauseAgentActions.join(', ')}], resume [${p.resumeAgentActions.join(', ')}]; ` +
      `caller channel pause [${p.pauseCallerActions.join(', ')}], resume [${p.resumeCallerActions.join(', ')}]${r.notFired.length > 0 ? `; NOT FIRED: ${r.notFired.join(', ')}` : ''}\n`,
  );
  if (r.memberIdMismatches.length > 0) {
    out(`  set-up: ${r.memberIdMismatches.length} legs had a member id in the adapter other than FreeSWITCH's (drachtio-fsmrf took another channel's add-member); their conversations were set up again, e.g.\n`);
    for (const m of r.memberIdMismatches.slice(0, 3)) out(`    ${m}\n`);
  }
  out(`  non-200 responses: ${r.non200Total}; ops without their events within ${fmt(r.eventTimeoutMs)} ms: ${r.missingEventsTotal}; 200s that were no change: ${r.unchangedTotal} (all runs, warm-up included)\n`);
  for (const s of r.badSamples) out(`    ${s}\n`);
  out(`  after the run: ${r.sanity.checked} agents' modes in Redis and FreeSWITCH's member flags ${r.sanity.problems.length === 0 ? 'as expected' : `NOT as expected (${r.sanity.problems.length}): ${r.sanity.problems.slice(0, 3).join('; ')}`}\n`);
  const log = Object.entries(r.appLog);
  if (log.length > 0) out(`  app log (warn and above): ${log.map(([m, n]) => `${n} × ${m}`).join('; ').slice(0, 600)}\n`);
  out(`  processes left after stopping: ${r.leftover.length === 0 ? 'none' : r.leftover.join(', ')}\n`);
}
