/**
 * One WebSocket client of the event stream (DESIGN.md section 7): authentication, its
 * subscriptions, and delivery that never loses or repeats an event.
 *
 * Delivery runs on one cursor per client. A subscribe first takes the new topics' snapshot at
 * sequence S (or starts from the client's `since`), then catches up from the Redis stream
 * while live events from the instance's reader are held back, then plays the held-back ones it
 * has not read yet and goes live. A topic's event is sent only if its sequence is above the
 * topic's start (S or `since`), and an event is sent at most once (the cursor only moves
 * forward), so a change racing the subscription is either in the snapshot or sent after it.
 */
import type { Redis } from 'ioredis';
import { Sender, WebSocket } from 'ws';
import type { CallCenterConfig, Config } from '../../lib/config/schema';
import { parseEvent, type CcsEvent } from '../../lib/events';
import type { Logger } from '../../lib/logger';
import type { Principal, ScopedConversation } from '../../lib/auth/scope';
import type { Snapshots, TopicSnapshot } from '../../lib/stream/snapshots';
import { isSilentMonitor, withoutSilentMonitors } from '../../lib/conversation/model';
import { parseTopic, topicKey, topicsOf, TopicError, type Topic } from '../../lib/stream/topics';
import type { Metrics } from '../metrics';

/** Close codes of the event socket. */
export const CloseCode = {
  /** No valid token (header, or auth frame in time). */
  Unauthorized: 4001,
  /** The token belongs to another call center. */
  Forbidden: 4003,
  /** The client did not read fast enough; resume with `since`. */
  SlowConsumer: 4008,
} as const;

/** Error codes of `{"op":"error"}` frames. */
export type StreamErrorCode =
  | 'unauthorized'
  | 'malformed_json'
  | 'bad_request'
  | 'unknown_op'
  | 'unknown_topic'
  | 'forbidden'
  | 'too_many_subscriptions'
  | 'frame_too_large'
  | 'bad_since'
  | 'slow_consumer'
  | 'unavailable';

/** What a session needs from its instance. */
export interface SessionDeps {
  config: Config;
  cc: CallCenterConfig;
  /** Stream key of the call center's events. */
  eventsKey: string;
  redis: Redis;
  snapshots: Snapshots;
  logger: Logger;
  metrics: Metrics;
  instance: string;
  /** The holder of a bearer token, or undefined. */
  checkToken: (token: string) => Principal | undefined;
  /** A wrong token was presented (counted against the source's brute-force limit). */
  onAuthFailure?: () => void;
  /** A live conversation's queue and agents, for a non-admin token's `conversation:<id>` topic. */
  conversationScope: (id: string) => Promise<ScopedConversation | undefined>;
  /** The reader's position (last sequence read) for the call center. */
  position: () => number;
  /** Tells the hub which topics this session wants live events of. */
  index: (session: EventSession, topics: readonly string[], on: boolean) => void;
  /** The session is over. */
  closed: (session: EventSession) => void;
}

let nextFrameId = 0;

/**
 * The frame of one event (its JSON as read from the stream), built once for every client: its
 * text, and the WebSocket frame as it goes on the wire (server frames are not masked and no
 * compression is negotiated, so those bytes are the same for every client).
 */
export function eventFrame(json: string): EventFrame {
  const text = Buffer.from(`{"op":"event","event":${json}}`);
  const parts = Sender.frame(text, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true });
  return { id: nextFrameId++, text, wire: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
}

/** An event frame ready to send. */
export interface EventFrame {
  /** Tells frames apart within a batch (the key of a shared batch buffer). */
  id: number;
  text: Buffer;
  wire: Buffer;
}

/** Batch buffers shared by the clients that get the same frames of one batch. */
export type BatchBuffers = Map<string, Buffer>;

/** Events read per XRANGE while catching up. */
const CATCH_UP_CHUNK = 500;
/** How long a closing slow client may take to drain before it is cut off. */
const CLOSE_GRACE_MS = 10_000;

/** One client of the event stream. */
export class EventSession {
  private authed = false;
  /** Who the token belongs to, once authenticated. */
  private principal: Principal | undefined;
  private readonly subs = new Map<string, number>();
  /** Last sequence handled in order (sent or not of interest). */
  private cursor = -1;
  /** Last event sequence actually sent: where a client closed for slowness resumes. */
  private lastSent = 0;
  private syncing = 0;
  private held: { seq: number; frame: EventFrame }[] = [];
  /** While the hub hands out a batch: the frames for this client, written at its end in one piece. */
  private batch: { seq: number; frame: EventFrame }[] | undefined;
  private closing = false;
  private alive = true;
  private authTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** Serialises subscribe / unsubscribe so two catch-ups never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: SessionDeps,
    header: string | undefined,
  ) {
    deps.metrics.wsClients.inc();
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => deps.logger.debug({ err }, 'event socket error'));
    ws.on('pong', () => (this.alive = true));
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const who = m === null ? undefined : deps.checkToken(m[1]!);
      if (who === undefined) {
        deps.onAuthFailure?.();
        this.fail('unauthorized', 'invalid bearer token', CloseCode.Unauthorized);
        return;
      }
      this.welcome(who);
    } else {
      this.authTimer = setTimeout(() => this.fail('unauthorized', `no auth frame within ${deps.config.events.authTimeoutMs} ms`, CloseCode.Unauthorized), deps.config.events.authTimeoutMs);
    }
  }

  /** The call center of this client. */
  get cc(): string {
    return this.deps.cc.id;
  }

  /** The topics this session is subscribed to. */
  get topics(): string[] {
    return [...this.subs.keys()];
  }

  private welcome(who: Principal): void {
    if (!who.inCallCenter(this.deps.cc.id)) {
      this.deps.logger.warn({ token: who.name, role: who.role }, 'event stream of another call center refused');
      this.fail('forbidden', `this token does not belong to call center '${this.deps.cc.id}'`, CloseCode.Forbidden);
      return;
    }
    this.principal = who;
    this.authed = true;
    clearTimeout(this.authTimer);
    this.pingTimer = setInterval(() => {
      if (!this.alive) {
        this.deps.logger.info('event client did not answer the ping; dropped');
        this.ws.terminate();
        return;
      }
      this.alive = false;
      this.ws.ping();
    }, this.deps.config.events.pingMs);
    this.send(JSON.stringify({ op: 'hello', cc: this.deps.cc.id, instance: this.deps.instance, seq: this.deps.position() }));
  }

  /**
   * Sends a text frame unless the client is too far behind, in which case it is closed (4008).
   * Event frames come as one Buffer shared by every client (no conversion per client).
   */
  private send(frame: string | Buffer): boolean {
    if (this.closing) return false;
    if (this.ws.bufferedAmount + frame.length > this.deps.config.events.maxBufferedBytes) {
      this.deps.metrics.wsSlowClosed.inc();
      this.deps.logger.info({ buffered: this.ws.bufferedAmount, lastSeq: this.lastSent }, 'event client too slow; closed');
      this.closing = true;
      this.ws.send(JSON.stringify({ op: 'error', error: 'slow_consumer', message: 'the client did not read fast enough; reconnect and subscribe with since', lastSeq: this.lastSent }));
      this.ws.close(CloseCode.SlowConsumer, 'slow consumer');
      setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
      return false;
    }
    this.ws.send(frame, { binary: false });
    return true;
  }

  private error(error: StreamErrorCode, message: string, extra: Record<string, unknown> = {}): void {
    this.send(JSON.stringify({ op: 'error', error, message, ...extra }));
  }

  /** Error frame, then close. */
  fail(error: StreamErrorCode, message: string, code: number): void {
    if (this.closing) return;
    this.error(error, message);
    this.closing = true;
    this.ws.close(code, error);
  }

  /** Starts collecting this client's live frames of a batch (the hub writes them at its end). */
  beginBatch(): void {
    this.batch = [];
  }

  /**
   * Writes the batch's frames in one write: the wire bytes of every frame, back to back, from a
   * buffer shared with every client that got the same frames (the fan-out benchmark spent the
   * server's time on one send per client per event). ws writes its own frames in one piece
   * too, so frames never interleave on the socket.
   */
  endBatch(shared: BatchBuffers): void {
    const batch = this.batch;
    this.batch = undefined;
    if (batch === undefined || batch.length === 0 || this.closing) return;
    const socket = (this.ws as unknown as { _socket?: { write(b: Buffer): boolean } })._socket;
    const key = batch.map((b) => b.frame.id).join(',');
    let buf = shared.get(key);
    if (buf === undefined) shared.set(key, (buf = batch.length === 1 ? batch[0]!.frame.wire : Buffer.concat(batch.map((b) => b.frame.wire))));
    if (socket === undefined || this.ws.readyState !== WebSocket.OPEN || this.ws.bufferedAmount + buf.length > this.deps.config.events.maxBufferedBytes) {
      // Not writable as a whole: one by one, the slow-client check closing it if need be.
      for (const b of batch) if (this.send(b.frame.text)) this.sent(b.seq);
      return;
    }
    socket.write(buf);
    this.lastSent = batch[batch.length - 1]!.seq;
    this.deps.metrics.wsEventsSent.inc(batch.length);
  }

  private sent(seq: number): void {
    this.lastSent = seq;
    this.deps.metrics.wsEventsSent.inc();
  }

  /**
   * A live event from the reader, as its ready event frame (built once for every client; only
   * events of a topic of this session reach here). `quiet`: it tells of a supervisor listening
   * in or whispering, which agent tokens do not get.
   */
  live(seq: number, frame: EventFrame, quiet = false): void {
    // An agent is not told of a supervisor listening in or whispering (DESIGN.md section 12).
    if (quiet && this.principal?.role === 'agent') return;
    if (this.syncing > 0) {
      this.held.push({ seq, frame });
      return;
    }
    this.deliver(seq, frame);
  }

  private deliver(seq: number, frame: EventFrame): void {
    if (seq <= this.cursor) return;
    this.cursor = seq;
    if (this.batch !== undefined) this.batch.push({ seq, frame });
    else if (this.send(frame.text)) this.sent(seq);
  }

  /** Whether `e` belongs to a subscribed topic started before it. */
  private wants(e: CcsEvent): boolean {
    const cc = this.subs.get('callcenter');
    if (cc !== undefined && e.seq > cc) return true;
    for (const t of topicsOf(e)) {
      const from = this.subs.get(t);
      if (from !== undefined && e.seq > from) return true;
    }
    return false;
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closing) return;
    if (data.length > this.deps.config.events.maxFrameBytes) {
      if (!this.authed) return this.fail('unauthorized', 'authenticate first', CloseCode.Unauthorized);
      return this.error('frame_too_large', `frames are at most ${this.deps.config.events.maxFrameBytes} bytes`);
    }
    let msg: unknown;
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      if (!this.authed) return this.fail('unauthorized', 'authenticate first', CloseCode.Unauthorized);
      return this.error('malformed_json', 'frames are JSON text');
    }
    const m = (typeof msg === 'object' && msg !== null && !Array.isArray(msg) ? msg : {}) as Record<string, unknown>;
    if (!this.authed) {
      const who = m.op === 'auth' && typeof m.token === 'string' ? this.deps.checkToken(m.token) : undefined;
      if (who !== undefined) return this.welcome(who);
      if (m.op === 'auth') this.deps.onAuthFailure?.();
      return this.fail('unauthorized', m.op === 'auth' ? 'invalid token' : 'authenticate first: {"op":"auth","token":"..."}', CloseCode.Unauthorized);
    }
    switch (m.op) {
      case 'subscribe':
        void this.serial(() => this.subscribe(m));
        return;
      case 'unsubscribe':
        void this.serial(() => Promise.resolve(this.unsubscribe(m)));
        return;
      case 'ping':
        this.send(JSON.stringify({ op: 'pong', seq: this.deps.position() }));
        return;
      case 'auth':
        return this.error('bad_request', 'already authenticated');
      default:
        return this.error('unknown_op', `unknown op ${JSON.stringify(m.op ?? null).slice(0, 40)} (subscribe, unsubscribe, ping)`);
    }
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn).catch((err: unknown) => {
      this.deps.logger.warn({ err }, 'event subscription failed');
      this.error('unavailable', 'the state store is unavailable; try again');
    });
    this.queue = run;
    return run;
  }

  private parseTopics(m: Record<string, unknown>): Topic[] | undefined {
    if (!Array.isArray(m.topics) || m.topics.length === 0) {
      this.error('bad_request', 'topics must be a non-empty list');
      return undefined;
    }
    try {
      return [...new Map(m.topics.map((raw) => parseTopic(raw, this.deps.cc)).map((t) => [topicKey(t), t])).values()];
    } catch (err) {
      if (!(err instanceof TopicError)) throw err;
      this.error('unknown_topic', err.message, { topic: err.topic });
      return undefined;
    }
  }

  /** A snapshot as this token may see it: an agent's conversation snapshot without silent monitors. */
  private shown(data: TopicSnapshot | undefined): TopicSnapshot | undefined {
    if (this.principal?.role !== 'agent' || data === undefined || !('conversation' in data) || data.conversation === null) return data;
    return { conversation: withoutSilentMonitors(data.conversation) };
  }

  /** The first topic outside the token's scope (DESIGN.md section 12), if any. */
  private async outOfScope(topics: readonly Topic[]): Promise<Topic | undefined> {
    const who = this.principal!;
    if (who.isAdmin) return undefined;
    const cc = this.deps.cc;
    for (const t of topics) {
      if (t.kind === 'callcenter') return t;
      if (t.kind === 'queue' && !who.seesQueue(cc, t.id)) return t;
      if (t.kind === 'agent' && !who.seesAgent(cc, t.id)) return t;
      if (t.kind === 'conversation') {
        const c = await this.deps.conversationScope(t.id);
        if (c === undefined || !who.seesConversation(cc, c)) return t;
      }
    }
    return undefined;
  }

  private async subscribe(m: Record<string, unknown>): Promise<void> {
    const topics = this.parseTopics(m);
    if (topics === undefined || this.closing) return;
    const refused = await this.outOfScope(topics);
    if (refused !== undefined) {
      const who = this.principal!;
      this.deps.logger.warn({ token: who.name, role: who.role, topic: topicKey(refused) }, 'subscription outside the token\'s scope refused');
      return this.error('forbidden', `${who.article} token may not subscribe to ${topicKey(refused)}`, { topic: topicKey(refused) });
    }
    const fresh = topics.filter((t) => !this.subs.has(topicKey(t)));
    if (this.subs.size + fresh.length > this.deps.config.events.maxSubscriptions) {
      return this.error('too_many_subscriptions', `at most ${this.deps.config.events.maxSubscriptions} topics per connection`);
    }
    const since = m.since;
    if (since !== undefined && (typeof since !== 'number' || !Number.isInteger(since) || since < 0)) return this.error('bad_since', 'since must be a sequence number');
    if (since !== undefined && this.cursor >= 0) return this.error('bad_since', 'since is accepted on the first subscribe of a connection only');
    if (fresh.length === 0) {
      this.send(JSON.stringify({ op: 'subscribed', topics: topics.map(topicKey), seq: this.cursor }));
      return;
    }
    // From here on live events of the new topics are held back until the catch-up is done.
    // Every event the reader has read so far reached this session already (the hub hands them
    // on as they are read), so the topics it had are complete up to the reader's position.
    const live = this.cursor >= 0 || this.subs.size > 0 ? this.deps.position() : undefined;
    this.syncing += 1;
    const keys = fresh.map(topicKey);
    for (const k of keys) this.subs.set(k, Number.MAX_SAFE_INTEGER);
    this.deps.index(this, keys, true);
    try {
      let start = typeof since === 'number' ? since : 0;
      const reason = typeof since !== 'number' ? 'subscribe' : (await this.hasGapAfter(since)) ? 'gap' : undefined;
      if (reason !== undefined) {
        // The snapshot's sequence S is read after `live`: S >= live.
        const snap = await this.deps.snapshots.take(this.deps.cc, fresh);
        start = snap.seq;
        this.sendSnapshots(fresh, snap, reason);
      }
      for (const k of keys) this.subs.set(k, start);
      this.send(JSON.stringify({ op: 'subscribed', topics: topics.map(topicKey), seq: start }));
      await this.catchUp(live === undefined ? start : Math.min(live, start));
    } finally {
      this.syncing -= 1;
    }
    this.releaseHeld();
  }

  /** Once no catch-up runs any more: the live events held back meanwhile, those not sent yet. */
  private releaseHeld(): void {
    if (this.syncing !== 0) return;
    const held = this.held;
    this.held = [];
    for (const h of held) this.deliver(h.seq, h.frame);
  }

  /**
   * One snapshot frame per topic, as this token may see them, with the Redis time it was read
   * at (`now`: a client's reference for the `since` and wait fields, whatever its own clock).
   */
  private sendSnapshots(topics: readonly Topic[], snap: { seq: number; now: number; snapshots: (TopicSnapshot | undefined)[] }, reason: string): void {
    topics.forEach((t, i) => this.send(JSON.stringify({ op: 'snapshot', topic: topicKey(t), seq: snap.seq, now: snap.now, reason, data: this.shown(snap.snapshots[i]) })));
  }

  /**
   * The stream began again at 1 (Redis lost its data) and is now at `seq`: a client whose
   * cursor is past that gets a fresh snapshot of every topic it has (`reason: "reset"`) and
   * goes on from the snapshot's sequence; live events are held meanwhile, as in a subscribe.
   */
  resync(seq: number): void {
    if (this.cursor <= seq || this.closing || !this.authed) return;
    void this.serial(async () => {
      if (this.closing || this.subs.size === 0) {
        this.cursor = -1;
        this.lastSent = 0;
        return;
      }
      this.syncing += 1;
      try {
        const topics = [...this.subs.keys()].map((k) => parseTopic(k, this.deps.cc));
        const snap = await this.deps.snapshots.take(this.deps.cc, topics);
        this.sendSnapshots(topics, snap, 'reset');
        for (const k of this.subs.keys()) this.subs.set(k, snap.seq);
        this.cursor = snap.seq;
        this.lastSent = snap.seq;
        this.held = this.held.filter((h) => h.seq > snap.seq);
      } finally {
        this.syncing -= 1;
      }
      this.releaseHeld();
    });
  }

  /** True when events after `since` are no longer all in the stream (trimmed), or `since` is ahead of it. */
  private async hasGapAfter(since: number): Promise<boolean> {
    const [first, seq] = await Promise.all([
      this.deps.redis.xrange(this.deps.eventsKey, `(${since}-0`, '+', 'COUNT', 1) as Promise<[string, string[]][]>,
      this.deps.redis.get(`${this.deps.eventsKey}:seq`),
    ]);
    const last = Number(seq ?? 0);
    if (since > last) return true;
    if (since === last) return false;
    return first.length === 0 || parseEvent(first[0]!).seq !== since + 1;
  }

  /** Sends, in order, the stream's events after `from` that this session wants; the cursor ends at the last one read. */
  private async catchUp(from: number): Promise<void> {
    let after = from;
    for (;;) {
      const chunk = (await this.deps.redis.xrange(this.deps.eventsKey, `(${after}-0`, '+', 'COUNT', CATCH_UP_CHUNK)) as [string, string[]][];
      for (const entry of chunk) {
        const e = parseEvent(entry);
        after = e.seq;
        if (this.closing) return;
        if (this.wants(e) && !(this.principal?.role === 'agent' && e.type === 'conversation' && isSilentMonitor(e))) this.deliver(e.seq, eventFrame(JSON.stringify(e)));
      }
      if (chunk.length < CATCH_UP_CHUNK) break;
    }
    this.cursor = Math.max(this.cursor, after);
  }

  private unsubscribe(m: Record<string, unknown>): void {
    const topics = this.parseTopics(m);
    if (topics === undefined) return;
    const keys = topics.map(topicKey).filter((k) => this.subs.delete(k));
    this.deps.index(this, keys, false);
    this.send(JSON.stringify({ op: 'unsubscribed', topics: keys }));
  }

  private onClose(): void {
    this.closing = true;
    clearTimeout(this.authTimer);
    clearInterval(this.pingTimer);
    this.deps.index(this, [...this.subs.keys()], false);
    this.subs.clear();
    this.held = [];
    this.deps.metrics.wsClients.dec();
    this.deps.closed(this);
  }
}
