/** Runs sipp scenarios from test/scenarios against a drachtio-server and reports how they ended. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Result of one sipp run. */
export interface SippResult {
  /** 0: every call succeeded; 1: at least one failed (see sipp's docs). */
  code: number | null;
  output: string;
  errors: string;
}

/**
 * Runs `scenario` (a file in test/scenarios; `__STATUS__` in it is replaced by `status`)
 * once, dialing `service`, authenticating as `user`/`password`.
 */
export async function runSipp(o: {
  scenario: string;
  target: string;
  service: string;
  user: string;
  password?: string;
  status?: number;
  /** Placeholders in the scenario text replaced before the run (e.g. `__ENQUEUE__`). */
  replace?: Record<string, string>;
  /** Local address sipp sends from (another loopback address plays a trunk). */
  localIp?: string;
  extra?: string[];
  /** Aborting it kills sipp (a far end that stops answering); the run then resolves with its output. */
  signal?: AbortSignal;
}): Promise<SippResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  let xml = readFileSync(join(__dirname, '../scenarios', o.scenario), 'utf8').replace(/__STATUS__/g, String(o.status ?? 0));
  for (const [k, v] of Object.entries(o.replace ?? {})) xml = xml.split(k).join(v);
  const file = join(dir, o.scenario);
  writeFileSync(file, xml);
  const args = [o.target, '-sf', file, '-s', o.service, '-key', 'agent', o.user, '-au', o.user, '-ap', o.password ?? 'password', '-i', o.localIp ?? '127.0.0.1', '-t', 'u1', '-m', '1', '-nostdin', '-timeout', '15s', '-timeout_error', '-recv_timeout', '8000', '-trace_err', '-error_file', join(dir, 'errors.log'), ...(o.extra ?? [])];
  const proc = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], ...(o.signal ? { signal: o.signal, killSignal: 'SIGKILL' as const } : {}) });
  let output = '';
  proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
  // An abort (the caller ending the run) is reported as an 'error' event too: not a failure.
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('exit', (c) => resolve(c));
    proc.once('error', (err) => {
      if (o.signal?.aborted !== true) reject(err);
    });
  });
  let errors = '';
  try {
    errors = readFileSync(join(dir, 'errors.log'), 'utf8');
  } catch {
    // no unexpected messages
  }
  return { code, output, errors };
}

/**
 * Resolves once something has bound UDP `ip:port` (sipp started as a UAS there), read from
 * the kernel's socket table (/proc/net/udp, Linux) so the probe never holds the port itself;
 * rejects if `run` ends first or after 10 s.
 */
export async function udpPortTaken(ip: string, port: number, run: Promise<unknown>): Promise<void> {
  let over = false;
  void run.finally(() => (over = true));
  const want = `${ip.split('.').reverse().map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase()}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const table = readFileSync('/proc/net/udp', 'utf8');
    if (table.split('\n').some((line) => line.trim().split(/\s+/)[1] === want)) return;
    if (over) throw new Error(`sipp ended before binding ${ip}:${port}`);
    if (Date.now() > deadline) throw new Error(`nothing bound ${ip}:${port} within 10 s`);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }
}
