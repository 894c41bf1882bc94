/**
 * The server's clock as seen from the page. Every time the server sends (`since`, `ts`,
 * waits) is Redis time; the browser's clock may be off by any amount, so the page keeps the
 * smallest observed difference between its clock and a server timestamp at arrival (the
 * offset plus the least delivery delay) and counts waits against that.
 */
export class ServerClock {
  private offset: number | undefined;

  /** A server time that was current when it arrived (a snapshot's `now`, a live event's `ts`). */
  sample(serverMs: number): void {
    if (!Number.isFinite(serverMs)) return;
    const d = Date.now() - serverMs;
    if (this.offset === undefined || d < this.offset) this.offset = d;
  }

  /** The server's time now, as well as it is known. */
  now(): number {
    return Date.now() - (this.offset ?? 0);
  }
}
