/**
 * Arming and disarming one-off deadlines (DESIGN.md section 6): a member of the call center's
 * deadline ZSET, due on Redis's clock, fired by whichever instance's {@link DeadlineWorker}
 * claims it, so the limit holds when the instance that armed it is gone.
 *
 * Members are `<kind>|<arg>|<arg>…`; arguments must not contain `|`.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import { keysCache, type CallCenterKeys } from '../store/keys';

/** Arms and disarms deadlines of any call center. */
export class Deadlines {
  private readonly keys: (cc: string) => CallCenterKeys;

  constructor(private readonly deps: { redis: Redis; config: Config }) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
  }

  /** The member of a deadline of `kind` with `args`. */
  static member(kind: string, ...args: string[]): string {
    for (const a of args) if (a.includes('|')) throw new Error(`deadline argument '${a}' contains '|'`);
    return [kind, ...args].join('|');
  }

  /** Arms `member` to come due `ms` from now (Redis time); re-arming moves it. Returns the due time. */
  async arm(cc: string, member: string, ms: number): Promise<number> {
    const k = this.keys(cc);
    return Number(await this.deps.redis.ccsDeadlineSet(k.deadlines, k.deadlineClaims, member, Math.max(0, Math.round(ms))));
  }

  /** Disarms `member`; true if it was armed. */
  async disarm(cc: string, member: string): Promise<boolean> {
    const k = this.keys(cc);
    return (await this.deps.redis.ccsDeadlineClear(k.deadlines, k.deadlineClaims, member)) === 1;
  }
}
