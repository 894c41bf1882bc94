/**
 * Spawns a real FreeSWITCH for one suite with the project's config (config/freeswitch/) on
 * free loopback ports (DESIGN.md section 10, test/media layer). Ports reach the config through
 * environment variables (config/freeswitch/vars.xml); every writable directory is a fresh
 * temp dir, so suites never share state. Readiness is FreeSWITCH's own log lines in its log
 * file ("FreeSWITCH Started" and the drachtio_mrf profile started), not a sleep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eslApi, type FreeswitchAddress } from '../../media/fsmrf';
import { freePort } from './redisServer';

/** A running FreeSWITCH. */
export interface FreeSwitchServer {
  /** Event socket address, as config.freeswitch. */
  esl: FreeswitchAddress;
  /** SIP port of the drachtio_mrf profile. */
  sipPort: number;
  /** Everything FreeSWITCH printed so far. */
  log(): string;
  /** Runs an api command over a fresh event socket connection (independent of the adapter). */
  api(command: string): Promise<string>;
  stop(): Promise<void>;
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
 * ports of a stopped instance to start it again where clients expect it.
 */
export async function startFreeSwitch(ports: { sipPort?: number; eslPort?: number } = {}): Promise<FreeSwitchServer> {
  const sipPort = ports.sipPort ?? (await freePort());
  const eslPort = ports.eslPort ?? (await freePort());
  const [rtpStart, rtpEnd] = await rtpRange();
  const secret = 'ClueCon';
  const conf = join(__dirname, '../../config/freeswitch');
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
      if (text.includes('FreeSWITCH Started') && text.includes('Started Profile drachtio_mrf')) {
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
  return { esl, sipPort, log: () => out + fileLog(), api: (command) => eslApi(esl, command), stop };
}
