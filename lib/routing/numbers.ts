/**
 * Inbound numbers (issue "trunk routing"): how a trunk's called number becomes the form the
 * call center's number map is written in, and which entry of that map a number selects.
 */

/** How a trunk writes numbers (`sip.trunks.<name>.numberFormat`). */
export interface NumberFormat {
  /** The trunk's country calling code without `+` (e.g. `49`); needed for national numbers. */
  countryCode?: string | undefined;
  /** What national numbers start with instead of the country code (e.g. `0`). */
  nationalPrefix?: string | undefined;
  /** What international numbers start with instead of `+` (e.g. `00`, `011`). */
  internationalPrefix: string;
}

/** Visual separators of RFC 3966 plus spaces: people and some PBXs write them, the map does not. */
const SEPARATORS = /[-.\s()]/g;
const DIGITS = /^[0-9]+$/;

/**
 * A called number (a SIP user part) in the form the number map uses.
 *
 * 1. Separators (`-`, `.`, spaces, `(`, `)`) are removed; nothing else is changed without a
 *    `format`.
 * 2. A number starting with `+` is already international and is kept (`+` and its digits).
 * 3. With a `format`, only when the rest of the number is digits (at least one):
 *    - a number starting with `internationalPrefix` becomes `+` and what follows it
 *      (`0049301234` with `00` → `+49301234`), and is never read as national;
 *    - otherwise a number starting with `nationalPrefix` becomes `+`, `countryCode` and what
 *      follows it (`0301234` with `0` and `49` → `+49301234`); without a `countryCode`
 *      nothing is converted, as the country is unknown.
 *    The international prefix is tried first because it usually starts with the national one
 *    (`00` / `0`).
 * 4. Anything else (extensions, `*`/`#` codes, names) is returned with only separators removed.
 */
export function normaliseNumber(raw: string, format?: NumberFormat): string {
  const n = raw.replace(SEPARATORS, '');
  if (n.startsWith('+') || format === undefined) return n;
  const intl = format.internationalPrefix;
  if (intl !== '' && n.startsWith(intl)) {
    // Never read as national: `00` alone is an incomplete international number, not `+490`.
    const rest = n.slice(intl.length);
    return DIGITS.test(rest) ? `+${rest}` : n;
  }
  const national = format.nationalPrefix;
  if (national !== undefined && national !== '' && format.countryCode !== undefined && n.startsWith(national)) {
    const rest = n.slice(national.length);
    if (DIGITS.test(rest)) return `+${format.countryCode}${rest}`;
  }
  return n;
}

/** A key of the number map: an exact number, or a prefix (the text before a trailing `*`). */
interface ParsedKey {
  kind: 'exact' | 'prefix';
  /** The number or prefix, separators removed; `''` for the catch-all `*`. */
  value: string;
}

/** What a key may look like once separators are removed: `+`, digits, then an optional `*`. */
const KEY = /^(\+?[0-9]+\*?|\+?\*)$/;

function parseKey(key: string): ParsedKey | undefined {
  const k = key.replace(SEPARATORS, '');
  if (!KEY.test(k)) return undefined;
  return k.endsWith('*') ? { kind: 'prefix', value: k.slice(0, -1) } : { kind: 'exact', value: k };
}

/** The entry a number selects, with the key it was configured under. */
export interface NumberMatch<T> {
  key: string;
  entry: T;
}

/**
 * A call center's inbound numbers (`callcenters.<cc>.numbers`): keys are exact numbers
 * (`+14155550100`) or prefixes ending in `*` (`+1415555*`). An exact key wins over every
 * prefix; among prefixes the longest the number starts with wins. `*` alone is a catch-all
 * (every number) and `+*` one for every international number; being the shortest prefixes,
 * they only take what nothing else does.
 *
 * Keys are compared without separators; when two keys are the same after that (see
 * {@link numberMapProblems}) the first in the record's order is used. A key that is not a
 * number or prefix never matches.
 *
 * A lookup is one map access per prefix length of the number (at most its length plus one),
 * however many entries there are.
 */
export class NumberMap<T> {
  private readonly exact = new Map<string, NumberMatch<T>>();
  private readonly prefixes = new Map<string, NumberMatch<T>>();
  /** The longest prefix configured: shorter slices of a number are all that need looking up. */
  private readonly longestPrefix: number = -1;

  constructor(entries: Record<string, T>) {
    for (const [key, entry] of Object.entries(entries)) {
      const p = parseKey(key);
      if (p === undefined) continue;
      const into = p.kind === 'exact' ? this.exact : this.prefixes;
      if (into.has(p.value)) continue;
      into.set(p.value, { key, entry });
      if (p.kind === 'prefix') this.longestPrefix = Math.max(this.longestPrefix, p.value.length);
    }
  }

  /** The entry for `number` (already normalised, see {@link normaliseNumber}), if any. */
  match(number: string): NumberMatch<T> | undefined {
    const exact = this.exact.get(number);
    if (exact !== undefined) return exact;
    for (let len = Math.min(number.length, this.longestPrefix); len >= 0; len--) {
      const hit = this.prefixes.get(number.slice(0, len));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}

/**
 * Problems of a number map that its schema cannot express, each as `${at}.<key>: ...`:
 *
 * - a key that is not a number (`+`, digits) or a prefix (the same with a trailing `*`) once
 *   separators are removed; `*` and `+*` are accepted as catch-alls;
 * - two keys that are the same number, or the same prefix, once separators are removed
 *   (`+49 30 123` and `+4930123`): which one a call gets would depend on the file's order.
 *   The later key is reported.
 *
 * Not problems, because the match rules decide them: an exact number and a prefix covering it
 * (the exact one wins), nested prefixes (the longest wins), the same digits with and without
 * `+` (different numbers: a trunk without `numberFormat` delivers them as received).
 */
export function numberMapProblems(numbers: Record<string, unknown>, at: string): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const key of Object.keys(numbers)) {
    const p = parseKey(key);
    if (p === undefined) {
      problems.push(`${at}.${key}: not a number or a prefix ending in '*'`);
      continue;
    }
    const id = `${p.kind}:${p.value}`;
    const first = seen.get(id);
    if (first !== undefined) problems.push(`${at}.${key}: the same ${p.kind === 'exact' ? 'number' : 'prefix'} as '${first}' once separators are removed`);
    else seen.set(id, key);
  }
  return problems;
}
