/**
 * sipp as a background process with its statistics (-trace_stat), errors and response-time
 * samples read back when it exits: for the benchmarks (bench/) and the overload test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SippRun {
  code: number | null;
  output: string;
  errors: string;
  /** Last line of the -trace_stat file, by column. */
  stats: Record<string, number>;
  /** rtd name → [Date_ms, response_ms] samples. */
  rtt: Map<string, [number, number][]>;
  /** What the scenario's `<log>` actions wrote (sipp -trace_logs), '' without. */
  logs: string;
}

/**
 * Reads what a finished sipp left in its scratch directory `dir`: the last `-trace_stat` line
 * (stat.csv), the `-trace_rtt` samples and the error file.
 */
export function readSippRun(dir: string, code: number | null, output: string): SippRun {
  const read = (file: string): string => {
    try {
      return readFileSync(path.join(dir, file), 'utf8');
    } catch {
      return '';
    }
  };
  const statLines = read('stat.csv').trim().split('\n');
  const header = (statLines[0] ?? '').split(';');
  const last = (statLines[statLines.length - 1] ?? '').split(';');
  const stats: Record<string, number> = {};
  header.forEach((h, i) => {
    if (h !== '') stats[h] = Number(last[i]);
  });
  const rtt = new Map<string, [number, number][]>();
  const rttFile = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  for (const line of (rttFile === undefined ? '' : read(rttFile)).split('\n').slice(1)) {
    const [date, ms, name] = line.split(';');
    if (name === undefined || name === '') continue;
    let list = rtt.get(name);
    if (list === undefined) rtt.set(name, (list = []));
    list.push([Number(date), Number(ms)]);
  }
  const logFile = readdirSync(dir).find((f) => f.endsWith('_logs.log'));
  return { code, output, errors: read('errors.log').slice(0, 4000), stats, rtt, logs: logFile === undefined ? '' : read(logFile) };
}

/** A sipp process started in its own scratch directory. */
export interface Sipp {
  proc: ChildProcess;
  /** Resolves when it has exited, with its statistics; the directory is removed. */
  done: Promise<SippRun>;
}

/** Starts sipp with `args` (the stat, error and rtt trace options are added here). */
export function startSipp(args: string[]): Sipp {
  const dir = mkdtempSync(path.join(tmpdir(), 'ccs-sipp-'));
  const full = [...args, '-nostdin', '-trace_stat', '-stf', path.join(dir, 'stat.csv'), '-fd', '1', '-trace_err', '-error_file', path.join(dir, 'errors.log')];
  const proc = spawn('sipp', full, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => {
    output = (output + b.toString()).slice(-4000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const done = (async (): Promise<SippRun> => {
    try {
      const [code] = await exited;
      return readSippRun(dir, code, output);
    } finally {
      // CCS_SIPP_KEEP=1 keeps sipp's traces (errors.log in full, stat.csv) to look at.
      if (process.env.CCS_SIPP_KEEP === '1') process.stderr.write(`sipp traces kept in ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    }
  })();
  // Whoever awaits `done` sees its failure; this only keeps it from being an unhandled rejection meanwhile.
  done.catch(() => undefined);
  return { proc, done };
}

/**
 * Stops a sipp gracefully (SIGUSR1: no new calls, finish the open ones); after `ms` with calls
 * still open, SIGKILL, and `open` is how many it still had (its last once-a-second dump).
 */
export async function stopSipp(s: Sipp, ms: number): Promise<{ run: SippRun; open: number }> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGUSR1');
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    s.proc.kill('SIGKILL');
  }, ms);
  try {
    const run = await s.done;
    return { run, open: killed ? (run.stats.CurrentCall ?? NaN) : 0 };
  } finally {
    clearTimeout(timer);
  }
}

