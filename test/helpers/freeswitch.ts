/**
 * Spawns a real FreeSWITCH for one suite with the project's config (config/freeswitch/) on
 * free loopback ports (DESIGN.md section 10, test/media layer). Ports reach the config through
 * environment variables (config/freeswitch/vars.xml); every writable directory is a fresh
 * temp dir, so suites never share state. Readiness is FreeSWITCH's own log lines in its log
 * file ("FreeSWITCH Started" and the drachtio_mrf profile started), not a sleep.
 *
 * Also here, to see what FreeSWITCH did without asking the adapter under test: a
 * subscription to its events on an event socket of its own ({@link subscribeFsEvents}), and
 * an RTP port standing in for a leg's far end that decodes what FreeSWITCH sends it
 * ({@link listenRtp}, {@link toneShare}).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EslFrameReader, eslApi, type FreeswitchAddress } from '../../media/fsmrf';
import { freePort } from './redisServer';

/** A running FreeSWITCH. */
export interface FreeSwitchServer {
  /** Event socket address, as config.freeswitch. */
  esl: FreeswitchAddress;
  /** SIP port of the drachtio_mrf profile. */
  sipPort: number;
  /** Its process id (the benchmarks read its CPU time). */
  pid: number;
  /** Everything FreeSWITCH printed so far. */
  log(): string;
  /** Runs an api command over a fresh event socket connection (independent of the adapter). */
  api(command: string): Promise<string>;
  stop(): Promise<void>;
  /** SIGKILL: FreeSWITCH dies at once, hanging up nothing (a crash); resolves once it exited. */
  kill(): Promise<void>;
  /** The ports it used, to start another on them (`startFreeSwitch(server.ports)`). */
  readonly ports: { sipPort: number; eslPort: number };
}

/** A block of `size` RTP ports starting at a free port; FreeSWITCH binds them lazily. */
async function rtpRange(size = 200): Promise<[number, number]> {
  const start = await freePort();
  // Keep the range even-aligned and below 65535; collisions only cost a retried bind.
  const base = Math.min(start - (start % 2), 65534 - size);
  return [base, base + size];
}

/**
 * Starts FreeSWITCH and resolves once its SIP profile and event socket are up. Pass the
 * ports of a stopped instance to start it again where clients expect it; `rtpPorts` is the
 * size of its RTP port range (default 200, enough for a test's few channels; a channel
 * takes two).
 */
export async function startFreeSwitch(
  ports: { sipPort?: number; eslPort?: number; rtpPorts?: number; conf?: string; profile?: string; env?: Readonly<Record<string, string>> } = {},
): Promise<FreeSwitchServer> {
  const sipPort = ports.sipPort ?? (await freePort());
  const eslPort = ports.eslPort ?? (await freePort());
  const [rtpStart, rtpEnd] = await rtpRange(ports.rtpPorts);
  const secret = 'ClueCon';
  // Another configuration directory (bench/callcenter/: mod_callcenter) reads the same variables.
  const conf = ports.conf ?? join(__dirname, '../../config/freeswitch');
  const profile = ports.profile ?? 'drachtio_mrf';
  const base = mkdtempSync(join(tmpdir(), 'ccs-fs-'));
  const dirs = ['log', 'db', 'run', 'temp', 'storage', 'cache', 'recordings', 'sounds', 'certs', 'scripts', 'grammar'];
  for (const d of dirs) mkdirSync(join(base, d));
  const args = [
    '-nf', // stay in the foreground: we own the process
    '-nc', // no interactive console (stdin is not a terminal)
    '-nonat', // no NAT discovery: nothing leaves the machine
    '-nort', // no real-time clock or scheduling: this machine is shared
    '-np', // normal priority, likewise
    '-nocal', // skip clock calibration: faster start
    '-conf',
    conf,
    ...dirs.flatMap((d) => [`-${d}`, join(base, d)]),
  ];
  const proc: ChildProcess = spawn('freeswitch', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      CCS_FS_IP: '127.0.0.1',
      CCS_FS_SIP_PORT: String(sipPort),
      CCS_FS_ESL_IP: '127.0.0.1',
      CCS_FS_ESL_PORT: String(eslPort),
      CCS_FS_ESL_PASSWORD: secret,
      CCS_FS_RTP_START: String(rtpStart),
      CCS_FS_RTP_END: String(rtpEnd),
      // More of config/freeswitch/vars.xml's variables (the benchmarks raise the session limits).
      ...ports.env,
    },
  });
  let out = '';
  // With -nc FreeSWITCH's console logger writes nowhere: its log lines are in <log>/freeswitch.log.
  const logFile = join(base, 'log', 'freeswitch.log');
  const fileLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let watcher: FSWatcher | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`freeswitch not ready after 30 s:\n${(out + fileLog()).slice(-4000)}`)), 30000);
    const check = (): void => {
      const text = fileLog();
      if (text.includes('FreeSWITCH Started') && text.includes(`Started Profile ${profile}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    watcher = watch(join(base, 'log'), check);
    check();
    // Keep draining the pipes (start-up errors are printed there) so FreeSWITCH never blocks.
    proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`freeswitch exited with ${code}:\n${(out + fileLog()).slice(-4000)}`));
    });
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`freeswitch could not start: ${err.message}`));
    });
  }).finally(() => watcher?.close());
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      // SIGTERM is FreeSWITCH's orderly shutdown; it hangs up what is left.
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(base, { recursive: true, force: true });
  };
  try {
    await ready;
  } catch (err) {
    await stop();
    throw err;
  }
  const esl = { host: '127.0.0.1', port: eslPort, secret };
  return { esl, sipPort, pid: proc.pid!, log: () => out + fileLog(), api: (command) => eslApi(esl, command), stop, kill, ports: { sipPort, eslPort } };
}

/** One FreeSWITCH event as `event json` delivers it: header name → value. */
export type FsEvent = Record<string, string | undefined>;

/** A live subscription to FreeSWITCH events on its own event socket. */
export interface FsEvents {
  /** Every event received since subscribing, oldest first. */
  readonly received: readonly FsEvent[];
  /**
   * Resolves with the first event since subscribing that matches `pred` (one already
   * received, or the next to arrive); rejects after `timeoutMs` naming `what`.
   */
  next(what: string, pred: (e: FsEvent) => boolean, timeoutMs?: number): Promise<FsEvent>;
  close(): void;
}

/**
 * Subscribes to `events` (the argument of ESL's `event json`, e.g.
 * `CHANNEL_CREATE CHANNEL_DESTROY CUSTOM conference::maintenance`) on a connection of its
 * own, independent of the adapter under test. Resolves once FreeSWITCH confirmed the
 * subscription, so nothing that happens afterwards is missed.
 */
export function subscribeFsEvents(esl: FreeswitchAddress, events: string, timeoutMs = 10000): Promise<FsEvents> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: esl.host, port: esl.port });
    const received: FsEvent[] = [];
    const waiters = new Set<(e: FsEvent) => void>();
    let step: 'auth' | 'authed' | 'subscribing' | 'live' = 'auth';
    const frames = new EslFrameReader();
    const timer = setTimeout(() => fail(new Error(`event socket ${esl.host}:${esl.port}: no subscription within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const subscription: FsEvents = {
      received,
      next(what, pred, waitMs = 15000) {
        const seen = received.find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((res, rej) => {
          const t = setTimeout(() => {
            waiters.delete(check);
            rej(new Error(`no FreeSWITCH event "${what}" within ${waitMs} ms`));
          }, waitMs);
          const check = (e: FsEvent): void => {
            if (!pred(e)) return;
            clearTimeout(t);
            waiters.delete(check);
            res(e);
          };
          waiters.add(check);
        });
      },
      close() {
        sock.destroy();
      },
    };
    sock.on('error', (err) => (step === 'live' ? undefined : fail(new Error(`event socket ${esl.host}:${esl.port}: ${err.message}`))));
    sock.on('data', (chunk: Buffer) => {
      for (const { headers, body } of frames.push(chunk)) {
        const type = headers['Content-Type'];
        if (type === 'auth/request' && step === 'auth') {
          sock.write(`auth ${esl.secret}\n\n`);
          step = 'authed';
        } else if (type === 'command/reply' && step !== 'live') {
          const reply = headers['Reply-Text'] ?? '';
          if (!reply.startsWith('+OK')) return fail(new Error(`event socket ${esl.host}:${esl.port} refused "${step === 'authed' ? 'auth' : events}": ${reply}`));
          if (step === 'authed') {
            sock.write(`event json ${events}\n\n`);
            step = 'subscribing';
          } else {
            step = 'live';
            clearTimeout(timer);
            resolve(subscription);
          }
        } else if (type === 'text/event-json') {
          const e = JSON.parse(body) as FsEvent;
          received.push(e);
          for (const w of [...waiters]) w(e);
        }
      }
    });
  });
}

/** G.711 µ-law byte → 16-bit linear sample. */
function ulawToLinear(u: number): number {
  const x = ~u & 0xff;
  const t = (((x & 0x0f) << 3) + 0x84) << ((x & 0x70) >> 4);
  return x & 0x80 ? 0x84 - t : t - 0x84;
}

/**
 * Share (0..1) of a frame's energy at `hz` (Goertzel): about 1 for a pure tone at `hz`,
 * near 0 for silence, noise or other tones.
 */
export function toneShare(samples: Int16Array, hz: number, rate = 8000): number {
  const n = samples.length;
  if (n === 0) return 0;
  const w = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  if (energy === 0) return 0;
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * power) / (n * energy);
}

/** 16-bit linear sample → G.711 µ-law byte (ITU-T G.711, with the usual bias and clip). */
function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let s = Math.max(-CLIP, Math.min(CLIP, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent -= 1;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** The far end of a leg: a UDP port that decodes the PCMU RTP sent to it, and may speak a tone. */
export interface RtpListener {
  readonly ip: string;
  readonly port: number;
  /** Packets received so far. */
  readonly packets: number;
  /** Packets sent so far (with `toneHz`). */
  readonly sent: number;
  /** The telephone-event payload type its phone offers (made with `telephoneEvent`). */
  readonly telephoneEvent?: number | undefined;
  /**
   * Sends one DTMF digit in the media as RFC 4733 events (needs `telephoneEvent` and a far end
   * it is talking to): the audio pauses for the event, as a desk phone's does.
   */
  sendDtmf(digit: string): Promise<void>;
  /**
   * Starts sending the tone to `to` now, as a desk phone does from the answer on (by default
   * the tone starts only once FreeSWITCH has sent a first packet).
   */
  talkTo(to: { address: string; port: number }): void;
  /** Calls `fn` with every frame received from now on; returns the unsubscribe. */
  onFrame(fn: (samples: Int16Array) => void): () => void;
  /**
   * Resolves once `count` consecutive frames arriving from now on satisfy `pred`; rejects
   * after `timeoutMs` naming `what` (and how many packets came meanwhile).
   */
  frames(what: string, pred: (samples: Int16Array) => boolean, count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Samples per 20 ms PCMU frame. */
const FRAME_SAMPLES = 160;

/**
 * Binds a UDP port on loopback for a leg's RTP (audio/PCMU, as the test scenarios offer).
 * With `toneHz` it is a talking phone too: from the first packet FreeSWITCH sends it on, it
 * sends a steady tone at that frequency every 20 ms back to where that packet came from
 * (symmetric RTP, as FreeSWITCH itself sends from the port it receives on), so what the other
 * party of a conversation hears can be checked for this leg's tone.
 */
export async function listenRtp(o: { ip?: string; toneHz?: number; telephoneEvent?: number } = {}): Promise<RtpListener> {
  const ip = o.ip ?? '127.0.0.1';
  const sock = createSocket('udp4');
  sock.bind(0, ip);
  await once(sock, 'listening');
  const listeners = new Set<(samples: Int16Array) => void>();
  let packets = 0;
  let sent = 0;
  let sender: NodeJS.Timeout | undefined;
  const ssrc = Math.floor(Math.random() * 0xffffffff);
  let seq = Math.floor(Math.random() * 0xffff);
  let timestamp = Math.floor(Math.random() * 0xffffffff);
  let phase = 0;
  let dest: { address: string; port: number } | undefined;
  /** While an RFC 4733 event is being sent, the tone's packets are left out (same stream, one sender). */
  let inEvent = false;
  const startTone = (hz: number, to: { address: string; port: number }): void => {
    const step = (2 * Math.PI * hz) / 8000;
    dest = to;
    sender = setInterval(() => {
      if (inEvent) return;
      const pkt = Buffer.alloc(12 + FRAME_SAMPLES);
      pkt[0] = 0x80; // RTP v2
      pkt[1] = 0; // PCMU
      pkt.writeUInt16BE(seq & 0xffff, 2);
      pkt.writeUInt32BE(timestamp >>> 0, 4);
      pkt.writeUInt32BE(ssrc, 8);
      for (let i = 0; i < FRAME_SAMPLES; i++) {
        pkt[12 + i] = linearToUlaw(8000 * Math.sin(phase));
        phase += step;
      }
      phase %= 2 * Math.PI;
      seq += 1;
      timestamp += FRAME_SAMPLES;
      sent += 1;
      sock.send(pkt, dest!.port, dest!.address);
    }, 20);
  };
  sock.on('message', (msg: Buffer, rinfo) => {
    if (msg.length < 12 || msg[0]! >> 6 !== 2 || (msg[1]! & 0x7f) !== 0) return; // RTP v2, PCMU only
    if (o.toneHz !== undefined && sender === undefined) startTone(o.toneHz, rinfo);
    const csrc = msg[0]! & 0x0f;
    let offset = 12 + 4 * csrc;
    if (msg[0]! & 0x10) offset += 4 + 4 * msg.readUInt16BE(offset + 2); // header extension
    const payload = msg.subarray(offset, msg[0]! & 0x20 ? msg.length - msg[msg.length - 1]! : msg.length);
    packets += 1;
    const samples = Int16Array.from(payload, ulawToLinear);
    for (const l of [...listeners]) l(samples);
  });
  return {
    ip,
    port: sock.address().port,
    get packets() {
      return packets;
    },
    get sent() {
      return sent;
    },
    telephoneEvent: o.telephoneEvent,
    async sendDtmf(digit) {
      const code = '0123456789*#'.indexOf(digit);
      if (o.telephoneEvent === undefined || code < 0) throw new Error(`sendDtmf: no telephone-event payload type, or '${digit}' is not a digit`);
      if (dest === undefined) throw new Error('sendDtmf: the phone is not talking to anyone yet');
      const to = dest;
      inEvent = true;
      const start = timestamp;
      // RFC 4733 2.5: the first packet has the marker bit; every packet of the event keeps its
      // start timestamp and grows the duration; the end packet (E bit) is sent three times.
      const packet = (duration: number, end: boolean, marker: boolean): Buffer => {
        const pkt = Buffer.alloc(16);
        pkt[0] = 0x80;
        pkt[1] = (marker ? 0x80 : 0) | o.telephoneEvent!;
        pkt.writeUInt16BE(seq & 0xffff, 2);
        pkt.writeUInt32BE(start >>> 0, 4);
        pkt.writeUInt32BE(ssrc, 8);
        pkt[12] = code;
        pkt[13] = (end ? 0x80 : 0) | 10; // volume -10 dBm0
        pkt.writeUInt16BE(duration, 14);
        seq += 1;
        return pkt;
      };
      const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));
      for (let i = 1; i <= 8; i++) {
        sock.send(packet(i * FRAME_SAMPLES, false, i === 1), to.port, to.address);
        await tick();
      }
      for (let i = 0; i < 3; i++) sock.send(packet(9 * FRAME_SAMPLES, true, false), to.port, to.address);
      timestamp += 9 * FRAME_SAMPLES;
      inEvent = false;
    },
    talkTo(to) {
      if (o.toneHz === undefined) throw new Error('talkTo needs a listener made with toneHz');
      if (sender === undefined) startTone(o.toneHz, to);
      else dest = to; // the next call: the same phone talks to its new far end
    },
    onFrame(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    frames(what, pred, count, timeoutMs = 10000) {
      const start = packets;
      return new Promise((resolve, reject) => {
        let run = 0;
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${count} consecutive RTP frames "${what}" within ${timeoutMs} ms (${packets - start} packets came)`));
        }, timeoutMs);
        const check = (samples: Int16Array): void => {
          run = pred(samples) ? run + 1 : 0;
          if (run < count) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
      });
    },
    close() {
      clearInterval(sender);
      sock.close();
    },
  };
}
