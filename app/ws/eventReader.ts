/**
 * The one reader of the event streams on an instance (DESIGN.md section 7): a blocking `XREAD`
 * loop on a connection of its own over every call center's stream, handing each event, in
 * sequence order, to one listener (the WebSocket hub). Sequence numbers are gap-free, so a
 * jump tells the listener that it missed something (a stream trimmed while Redis was away).
 */
import type { Redis } from 'ioredis';
import { parseEvent, seqOf, type CcsEvent } from '../../lib/events';
import type { Logger } from '../../lib/logger';

/** What the reader hands on for each event. */
export type EventListener = (cc: string, event: CcsEvent, json: string) => void;

/** Called around each batch one XREAD returned (the hub corks its clients' sockets meanwhile). */
export interface BatchHooks {
  begin(): void;
  end(): void;
}

/** How long one XREAD blocks, so stop() is prompt. */
const BLOCK_MS = 1000;
/** Most entries one XREAD returns. */
const COUNT = 1000;
/** Pause after a failed read (Redis away) before the next try. */
const RETRY_MS = 250;
/** How often the streams' sequence counters are compared with the positions read. */
const RESET_CHECK_MS = 1000;

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

/** Reads every call center's event stream once for the whole instance. */
export class EventReader {
  private readonly last = new Map<string, string>();
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      /** A connection for this loop alone (XREAD BLOCK holds it). */
      blocking: Redis;
      /** Stream key of each call center. */
      streams: ReadonlyMap<string, string>;
      logger: Logger;
      onEvent: EventListener;
      batch?: BatchHooks;
      /**
       * A call center's stream started again from 1 (Redis lost its data: a restart without
       * persistence, a flush): the reader reads it from the start; its clients' positions are
       * meaningless now.
       */
      onReset?: (cc: string, seq: number) => void;
    },
  ) {}

  private lastResetCheck = 0;

  /**
   * Sequence numbers only grow while Redis keeps its data; a counter below the position read
   * means the stream was lost and begun again, and XREAD after the old position would wait
   * until the new numbers pass it. Checked at most once a second.
   */
  private async checkReset(): Promise<void> {
    const now = Date.now();
    if (now - this.lastResetCheck < RESET_CHECK_MS) return;
    this.lastResetCheck = now;
    const ccs = [...this.deps.streams.keys()];
    const counters = await this.deps.blocking.mget(...ccs.map((cc) => `${this.deps.streams.get(cc)!}:seq`));
    ccs.forEach((cc, i) => {
      const seq = Number(counters[i] ?? 0);
      if (seq >= this.position(cc)) return;
      this.deps.logger.warn({ cc, position: this.position(cc), seq }, 'event stream begun again (Redis lost its data); reading it from the start');
      this.last.set(cc, '0-0');
      this.deps.onReset?.(cc, seq);
    });
  }

  /** The sequence number of the last event read for `cc` (0 before any). */
  position(cc: string): number {
    const id = this.last.get(cc);
    return id === undefined ? 0 : seqOf(id);
  }

  /** Starts reading from the current end of every stream; resolves once those ends are known. */
  async start(): Promise<void> {
    if (this.running !== undefined) return;
    for (const [cc, key] of this.deps.streams) {
      const tail = (await this.deps.blocking.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
      this.last.set(cc, tail[0]?.[0] ?? '0-0');
    }
    this.running = this.loop();
  }

  /** Stops after the read in progress (at most one block). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    const ccs = [...this.deps.streams.keys()];
    const keys = ccs.map((cc) => this.deps.streams.get(cc)!);
    const byKey = new Map(ccs.map((cc) => [this.deps.streams.get(cc)!, cc]));
    while (!this.stopped) {
      let reply: XReadReply;
      try {
        await this.checkReset();
        reply = (await this.deps.blocking.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ccs.map((cc) => this.last.get(cc)!)));
      } catch (err) {
        if (this.stopped) return;
        this.deps.logger.warn({ err }, 'event stream read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
        continue;
      }
      if (reply === null) continue;
      this.deps.batch?.begin();
      try {
        for (const [key, entries] of reply) {
          const cc = byKey.get(key)!;
          for (const entry of entries) {
            this.last.set(cc, entry[0]);
            const event = parseEvent(entry);
            try {
              this.deps.onEvent(cc, event, JSON.stringify(event));
            } catch (err) {
              this.deps.logger.error({ err, cc, seq: event.seq }, 'event fan-out failed');
            }
          }
        }
      } finally {
        this.deps.batch?.end();
      }
    }
  }
}
