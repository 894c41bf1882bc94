/**
 * The event stream as a page uses it (README: Event stream): connect, authenticate with the
 * first frame (a browser cannot set an Authorization header on a WebSocket, and the token
 * never goes in the URL), subscribe, apply snapshots and events, and after any disconnect
 * reconnect and resume with `since` = the last sequence applied, so nothing is missed and
 * nothing applied twice. While not live the page is told so (`reconnecting`): it never shows
 * stale figures as if they were current.
 *
 * Base topics are subscribed first, with `since` on a resume; extra topics (conversations
 * that come and go) each get a subscribe of their own afterwards, with a fresh snapshot, so
 * one that is gone or refused does not take the others with it.
 */
import type { ServerClock } from './clock';
import type { WireEvent } from './wire';

/** Where the connection is. */
export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/** What a page does with the stream. */
export interface StreamHandlers {
  /** A topic's snapshot: replace what is known of it. */
  snapshot(topic: string, data: unknown, seq: number): void;
  /** One event, in sequence order. */
  event(e: WireEvent): void;
  /** The connection's state changed. */
  status(s: StreamStatus, detail: string): void;
  /** The server refused the token (4001) or the call center (4003): the page signs out. */
  refused?(error: string, message: string): void;
  /** An error frame about one topic (e.g. a conversation that ended: forbidden / unknown). */
  topicError?(topic: string, error: string, message: string): void;
}

/** Timing of the stream client (tests and pages keep the defaults). */
export interface StreamTiming {
  /** Silence after which the client pings. */
  pingAfterMs: number;
  /** Silence after which the connection is taken for dead and replaced. */
  deadAfterMs: number;
  /** First reconnect delay; doubles up to {@link StreamTiming.maxBackoffMs}. */
  backoffMs: number;
  maxBackoffMs: number;
}

const DEFAULT_TIMING: StreamTiming = { pingAfterMs: 10_000, deadAfterMs: 20_000, backoffMs: 250, maxBackoffMs: 5_000 };

interface Frame {
  op: string;
  [k: string]: unknown;
}

/** One page's connection to `/callcenter/{cc}/events`. */
export class EventStream {
  private ws: WebSocket | undefined;
  private lastSeq = -1;
  private readonly extra = new Set<string>();
  private stopped = false;
  private backoff: number;
  private lastRx = 0;
  private watchdog: number | undefined;
  private retry: number | undefined;
  private readonly timing: StreamTiming;
  private everLive = false;

  constructor(
    private readonly o: { cc: string; token: string; topics: string[]; clock: ServerClock; handlers: StreamHandlers; timing?: Partial<StreamTiming> },
  ) {
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.backoff = this.timing.backoffMs;
  }

  /** The last sequence number applied (where a resume starts). */
  get seq(): number {
    return this.lastSeq;
  }

  /** Opens the connection (and keeps it open until {@link stop}). */
  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Closes for good. */
  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retry);
    window.clearInterval(this.watchdog);
    this.ws?.close(1000, 'page closed');
    this.o.handlers.status('stopped', 'closed');
  }

  /** Adds a topic beside the base topics (a conversation), subscribed at once when live. */
  addTopic(topic: string): void {
    if (this.o.topics.includes(topic) || this.extra.has(topic)) return;
    this.extra.add(topic);
    if (this.everLive && this.ws?.readyState === WebSocket.OPEN) this.send({ op: 'subscribe', topics: [topic] });
  }

  /** Drops an extra topic. */
  removeTopic(topic: string): void {
    if (!this.extra.delete(topic)) return;
    if (this.ws?.readyState === WebSocket.OPEN) this.send({ op: 'unsubscribe', topics: [topic] });
  }

  private url(): string {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/callcenter/${encodeURIComponent(this.o.cc)}/events`;
  }

  private send(frame: unknown): void {
    this.ws?.send(JSON.stringify(frame));
  }

  private connect(): void {
    if (this.stopped) return;
    this.o.handlers.status(this.lastSeq < 0 ? 'connecting' : 'reconnecting', this.lastSeq < 0 ? 'connecting…' : 'reconnecting…');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.lastRx = Date.now();
    let subscribed = false;
    ws.onopen = () => {
      this.lastRx = Date.now();
      this.send({ op: 'auth', token: this.o.token });
    };
    ws.onmessage = (m: MessageEvent<unknown>) => {
      if (ws !== this.ws) return;
      this.lastRx = Date.now();
      let f: Frame;
      try {
        f = JSON.parse(String(m.data)) as Frame;
      } catch {
        return;
      }
      switch (f.op) {
        case 'hello': {
          const resume = this.lastSeq >= 0;
          this.send({ op: 'subscribe', topics: this.o.topics, ...(resume ? { since: this.lastSeq } : {}) });
          return;
        }
        case 'snapshot':
          if (typeof f.now === 'number') this.o.clock.sample(f.now);
          this.o.handlers.snapshot(String(f.topic), f.data, Number(f.seq));
          return;
        case 'subscribed': {
          const topics = Array.isArray(f.topics) ? (f.topics as string[]) : [];
          if (!subscribed && this.o.topics.every((t) => topics.includes(t))) {
            subscribed = true;
            this.lastSeq = Math.max(this.lastSeq, Number(f.seq));
            this.live();
            for (const t of this.extra) this.send({ op: 'subscribe', topics: [t] });
          }
          return;
        }
        case 'event': {
          const e = f.event as WireEvent;
          if (e.seq <= this.lastSeq && subscribed) return;
          if (subscribed) this.o.clock.sample(e.ts);
          this.lastSeq = Math.max(this.lastSeq, e.seq);
          this.o.handlers.event(e);
          return;
        }
        case 'error': {
          const error = typeof f.error === 'string' ? f.error : 'error';
          if (typeof f.topic === 'string') {
            this.extra.delete(f.topic);
            this.o.handlers.topicError?.(f.topic, error, typeof f.message === 'string' ? f.message : '');
          }
          return;
        }
        default:
          return;
      }
    };
    ws.onclose = (c: CloseEvent) => {
      if (ws !== this.ws || this.stopped) return;
      if (c.code === 4001 || c.code === 4003) {
        this.stopped = true;
        window.clearInterval(this.watchdog);
        this.o.handlers.status('stopped', c.code === 4001 ? 'the token was refused' : 'the token belongs to another call center');
        this.o.handlers.refused?.(c.code === 4001 ? 'unauthorized' : 'forbidden', c.reason);
        return;
      }
      this.drop(ws, `connection lost (${c.code})`);
    };
    window.clearInterval(this.watchdog);
    this.watchdog = window.setInterval(() => this.watch(ws), Math.min(1000, this.timing.pingAfterMs));
  }

  /** Gives up on `ws` (closed, or silent too long) and schedules the next connection. */
  private drop(ws: WebSocket, why: string): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    window.clearInterval(this.watchdog);
    ws.onclose = null;
    ws.onmessage = null;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(4000, 'replaced');
    this.o.handlers.status('reconnecting', `${why}; reconnecting…`);
    window.clearTimeout(this.retry);
    this.retry = window.setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, this.timing.maxBackoffMs);
  }

  /** Pings a quiet connection and replaces a dead one (a half-open socket never says it closed). */
  private watch(ws: WebSocket): void {
    if (ws !== this.ws) return;
    const quiet = Date.now() - this.lastRx;
    if (ws.readyState === WebSocket.CONNECTING) {
      if (quiet > this.timing.deadAfterMs) this.drop(ws, 'the server did not answer');
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) return;
    if (quiet > this.timing.deadAfterMs) this.drop(ws, 'the server stopped answering');
    else if (quiet > this.timing.pingAfterMs) this.send({ op: 'ping' });
  }

  private live(): void {
    this.everLive = true;
    this.backoff = this.timing.backoffMs;
    this.o.handlers.status('live', 'live');
  }
}
