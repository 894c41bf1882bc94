/**
 * The WebSocket event stream of an instance (DESIGN.md section 7): the clients connected to
 * it, which topics each wants, and the one stream reader whose events are handed to the
 * clients of each event's topics. Every instance serves its own clients from the same Redis.
 */
import type { Redis } from 'ioredis';
import type { WebSocket } from 'ws';
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { keysCache } from '../../lib/store/keys';
import { Snapshots } from '../../lib/stream/snapshots';
import { topicsOf } from '../../lib/stream/topics';
import { isSilentMonitor } from '../../lib/conversation/model';
import type { Metrics } from '../metrics';
import { EventReader } from './eventReader';
import type { Principal, ScopedConversation } from '../../lib/auth/scope';
import { EventSession, eventFrame, type BatchBuffers } from './session';

/** What the hub needs. */
export interface EventHubDeps {
  config: Config;
  redis: Redis;
  /** A connection for the stream reader alone. */
  blocking: Redis;
  logger: Logger;
  metrics: Metrics;
  /** The holder of a bearer token, or undefined. */
  checkToken: (token: string) => Principal | undefined;
  /** What a non-admin token's `conversation:<id>` subscription is judged by (undefined: no such live conversation). */
  conversationScope: (cc: string, id: string) => Promise<ScopedConversation | undefined>;
}

/** The clients of one call center by topic. */
type Index = Map<string, Set<EventSession>>;

/** Every event client of the instance and their stream reader. */
export class EventHub {
  private readonly reader: EventReader;
  private readonly snapshots: Snapshots;
  private readonly indexes = new Map<string, Index>();
  private readonly sessions = new Set<EventSession>();
  private readonly eventsKey: (cc: string) => string;

  constructor(private readonly deps: EventHubDeps) {
    const keys = keysCache(deps.config.redis.keyPrefix);
    this.eventsKey = (cc) => keys(cc).events;
    this.snapshots = new Snapshots({ redis: deps.redis, config: deps.config });
    const streams = new Map(Object.keys(deps.config.callcenters).map((cc) => [cc, this.eventsKey(cc)]));
    this.reader = new EventReader({
      blocking: deps.blocking,
      streams,
      logger: deps.logger,
      onEvent: (cc, event, json) => this.fanOut(cc, event.seq, topicsOf(event), json, event.type === 'conversation' && isSilentMonitor(event)),
      // One write per client per batch instead of one send per event per client.
      batch: { begin: () => this.inBatch.clear(), end: () => this.endBatch() },
      // Clients whose cursors are past the new numbers get fresh snapshots of their topics.
      onReset: (cc, seq) => {
        for (const s of this.sessions) if (s.cc === cc) s.resync(seq);
      },
    });
  }

  /** Starts the stream reader. */
  start(): Promise<void> {
    return this.reader.start();
  }

  /** Stops the reader and closes every client (1001 going away). */
  async stop(): Promise<void> {
    for (const s of [...this.sessions]) s.fail('unavailable', 'the instance is stopping; reconnect', 1001);
    await this.reader.stop();
  }

  /** Clients connected now. */
  get clients(): number {
    return this.sessions.size;
  }

  /** Whether `cc` is a call center of this deployment (checked before the upgrade). */
  knows(cc: string): boolean {
    return Object.hasOwn(this.deps.config.callcenters, cc);
  }

  /** Takes a new client of call center `cc` (one it {@link knows}); `authorization` is the upgrade request's header, if any. */
  accept(ws: WebSocket, cc: string, authorization: string | undefined, onAuthFailure?: () => void): void {
    const logger = this.deps.logger.child({ cc });
    const center = this.deps.config.callcenters[cc]!;
    let index = this.indexes.get(cc);
    if (index === undefined) this.indexes.set(cc, (index = new Map<string, Set<EventSession>>()));
    const idx = index;
    const session = new EventSession(
      ws,
      {
        config: this.deps.config,
        cc: center,
        eventsKey: this.eventsKey(cc),
        redis: this.deps.redis,
        snapshots: this.snapshots,
        logger,
        metrics: this.deps.metrics,
        instance: this.deps.config.instanceId,
        checkToken: this.deps.checkToken,
        conversationScope: (id) => this.deps.conversationScope(cc, id),
        ...(onAuthFailure === undefined ? {} : { onAuthFailure }),
        position: () => this.reader.position(cc),
        index: (s, topics, on) => {
          for (const t of topics) {
            let set = idx.get(t);
            if (on) {
              if (set === undefined) idx.set(t, (set = new Set()));
              set.add(s);
            } else if (set !== undefined) {
              set.delete(s);
              if (set.size === 0) idx.delete(t);
            }
          }
        },
        closed: (s) => this.sessions.delete(s),
      },
      authorization,
    );
    this.sessions.add(session);
  }

  /** Sessions that got frames of the batch being handed out. */
  private readonly inBatch = new Set<EventSession>();

  private endBatch(): void {
    const shared: BatchBuffers = new Map();
    for (const s of this.inBatch) s.endBatch(shared);
    this.inBatch.clear();
  }

  /** Hands one event to every client of one of its topics (or of `callcenter`), once each. */
  private fanOut(cc: string, seq: number, topics: string[], json: string, quiet: boolean): void {
    const idx = this.indexes.get(cc);
    if (idx === undefined) return;
    const all = idx.get('callcenter');
    if (topics.length === 0 && all === undefined) return;
    const targets = new Set<EventSession>(all);
    for (const t of topics) for (const s of idx.get(t) ?? []) targets.add(s);
    if (targets.size === 0) return;
    const frame = eventFrame(json);
    for (const s of targets) {
      if (!this.inBatch.has(s)) {
        s.beginBatch();
        this.inBatch.add(s);
      }
      s.live(seq, frame, quiet);
    }
  }
}
