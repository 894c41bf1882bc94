/**
 * Dial-string grammar and classification (DESIGN.md section 4): what a dialed number means
 * for one call center. Feature codes are `<code>[<queue>][*<reason>]`, e.g. `*38`,
 * `*388000`, `*37*4`, `*378000*4`.
 */
import type { CallCenterConfig } from '../lib/config/schema';
import { MalformedDialStringError } from '../lib/errors';

/** The agent-state feature codes, and `status` (reads the state back, changes nothing). */
export type FacAction = 'ready' | 'notReady' | 'login' | 'logout' | 'status';

/** Feature codes as configured (`fac` in the config; `status` may be absent). */
export type FacCodes = Readonly<Record<Exclude<FacAction, 'status'>, string> & { status?: string | undefined; monitor?: string | undefined }>;

/** `<extension>[*<mode>]` after the monitor code. */
const MONITOR_SUFFIX = /^([0-9]{2,16})(?:\*([1-4]))?$/;

/** What a dialed string addresses. */
export type Destination =
  | { kind: 'fac'; action: FacAction; queue?: string; reason?: number }
  /** `*63<extension>[*<mode 1-4>]`: a supervisor monitors the agent with that extension. */
  | { kind: 'monitor'; extension: string; mode?: number }
  | { kind: 'queue'; queue: string }
  | { kind: 'agent'; agent: string }
  | { kind: 'unknown'; dial: string };

/** Longest dial string looked at; anything longer is refused before any parsing. */
export const MAX_DIAL_LENGTH = 32;

/** Actions whose code may carry `*<reason>`: not ready (busy reason) and log out (sign-out reason). */
const TAKES_REASON: ReadonlySet<FacAction> = new Set<FacAction>(['notReady', 'logout']);

/** `<queue>` is 1-16 digits (queue numbers are validated against the config later, 404 if unknown). */
const SUFFIX = /^([0-9]{1,16})?(?:\*([0-9]{1,3}))?$/;

/** Classifies dial strings for one call center. */
export class DialPlan {
  private readonly byExtension = new Map<string, string>();
  private readonly codes: [FacAction, string][];
  private readonly monitor: string | undefined;

  constructor(
    private readonly cc: CallCenterConfig,
    codes: FacCodes,
  ) {
    this.monitor = codes.monitor;
    for (const a of Object.values(cc.agents)) this.byExtension.set(a.extension, a.id);
    // Longest code first, so a site that configures `*3` and `*36`... cannot happen (the config
    // refuses prefixes), but the order still makes the match deterministic.
    const actions: FacAction[] = ['ready', 'notReady', 'login', 'logout', 'status'];
    this.codes = actions
      .map((a): [FacAction, string | undefined] => [a, codes[a]])
      .filter((e): e is [FacAction, string] => typeof e[1] === 'string')
      .sort((x, y) => y[1].length - x[1].length);
  }

  /**
   * What `dial` (the user part of the Request-URI) addresses. Throws
   * {@link MalformedDialStringError} for a feature code that is incomplete or malformed
   * (`*3`, `*3612a`, a 30-digit queue, a reason on a code that takes none).
   */
  classify(dial: string): Destination {
    if (dial.length === 0) return { kind: 'unknown', dial };
    const featureLike = dial.startsWith('*') || dial.startsWith('#');
    if (dial.length > MAX_DIAL_LENGTH) {
      if (featureLike) throw new MalformedDialStringError(dial.slice(0, MAX_DIAL_LENGTH) + '…', `longer than ${MAX_DIAL_LENGTH} characters`);
      return { kind: 'unknown', dial: dial.slice(0, MAX_DIAL_LENGTH) };
    }
    if (this.monitor !== undefined && dial.startsWith(this.monitor)) {
      const m = MONITOR_SUFFIX.exec(dial.slice(this.monitor.length));
      if (m === null) throw new MalformedDialStringError(dial, `expected ${this.monitor}<extension>[*<mode 1-4>]`);
      return m[2] === undefined ? { kind: 'monitor', extension: m[1]! } : { kind: 'monitor', extension: m[1]!, mode: Number(m[2]) };
    }
    for (const [action, code] of this.codes) {
      if (!dial.startsWith(code)) continue;
      const m = SUFFIX.exec(dial.slice(code.length));
      if (m === null) throw new MalformedDialStringError(dial, `expected ${code}[<queue>]${TAKES_REASON.has(action) ? '[*<reason>]' : ''}`);
      const [, queue, reason] = m;
      if (reason !== undefined && !TAKES_REASON.has(action)) throw new MalformedDialStringError(dial, `${code} takes no reason`);
      const out: Destination = { kind: 'fac', action };
      if (queue !== undefined) out.queue = queue;
      if (reason !== undefined) out.reason = Number(reason);
      return out;
    }
    if (featureLike) {
      if (this.codes.some(([, code]) => code.startsWith(dial)) || this.monitor?.startsWith(dial) === true) throw new MalformedDialStringError(dial, 'incomplete feature code');
      return { kind: 'unknown', dial };
    }
    if (Object.hasOwn(this.cc.queues, dial)) return { kind: 'queue', queue: dial };
    const agent = this.byExtension.get(dial);
    if (agent !== undefined) return { kind: 'agent', agent };
    return { kind: 'unknown', dial };
  }
}
