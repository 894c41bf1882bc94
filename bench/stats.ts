/**
 * Small helpers shared by the benchmarks: medians, percentiles, CPU accounting and a plain
 * text table. The benchmarks report ratios measured in the same run on the same machine
 * (engine vs raw EVALSHA, app vs bare route) rather than absolute numbers, because absolute
 * rates on a shared 2-core box swing with whatever else runs; a ratio of two alternated
 * measurements mostly cancels that noise out.
 */
import type { Redis } from 'ioredis';

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile `p` (0-100) of an ascending-sorted list. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** A process's CPU use over an interval, as a percentage of one core. */
export class CpuMeter {
  private readonly start = process.cpuUsage();
  private readonly t0 = process.hrtime.bigint();

  /** CPU percent of one core used by this process since construction. */
  pct(): number {
    const d = process.cpuUsage(this.start);
    const wallUs = Number(process.hrtime.bigint() - this.t0) / 1000;
    return wallUs > 0 ? ((d.user + d.system) / wallUs) * 100 : 0;
  }
}

/** redis-server's own CPU seconds (user + sys), from INFO cpu. */
export async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const get = (name: string): number => {
    const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info);
    return m === null ? 0 : Number(m[1]);
  };
  return get('used_cpu_user') + get('used_cpu_sys');
}

/** Measures redis-server CPU over an interval, as a percentage of one core. */
export async function redisCpuMeter(admin: Redis): Promise<{ pct(): Promise<number> }> {
  const c0 = await redisCpuSeconds(admin);
  const t0 = process.hrtime.bigint();
  return {
    async pct() {
      const c1 = await redisCpuSeconds(admin);
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      return wallS > 0 ? ((c1 - c0) / wallS) * 100 : 0;
    },
  };
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Renders rows as an aligned text table: first column left-aligned, the others right. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), sep, ...rows.map(line)].map((l) => `  ${l}`).join('\n') + '\n';
}

/** Writes to stdout (the project's lint forbids console). */
export function out(text: string): void {
  process.stdout.write(text);
}
