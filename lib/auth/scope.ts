/**
 * What a bearer token may act on (DESIGN.md section 12). Every REST route and WebSocket topic
 * asks its request's {@link Principal} before it touches anything; a refusal is a
 * {@link ForbiddenError} (403 `forbidden`), which names the token's role, never the token.
 *
 * - `admin`: everything.
 * - `supervisor`: agents that are members of one of its queues, those queues, conversations of
 *   them (task queue or an agent leg), the forced state changes on those agents, and — when the
 *   token acts as a configured supervisor — that supervisor's monitoring.
 * - `agent`: its own state, conversations, calls, offers, log entries and events.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { ApiTokenConfig, CallCenterConfig, Role } from '../config/schema';
import { ForbiddenError } from '../errors';

/** The parts of a conversation its scope is judged by. */
export interface ScopedConversation {
  queue?: string | undefined;
  legs: readonly { agent?: string | undefined }[];
}

/** The holder of one token. */
export class Principal {
  private readonly queueSet: ReadonlySet<string>;

  constructor(private readonly t: Omit<ApiTokenConfig, 'token'>) {
    this.queueSet = new Set(t.queues ?? []);
  }

  /** A principal that may do everything (internal callers, tests). */
  static admin(name = 'admin'): Principal {
    return new Principal({ name, role: 'admin' });
  }

  /** The token's name, for logs. */
  get name(): string {
    return this.t.name;
  }

  get role(): Role {
    return this.t.role;
  }

  /** The configured supervisor the token acts as, if any. */
  get supervisor(): string | undefined {
    return this.t.supervisor;
  }

  /** The call center a supervisor or agent token belongs to (undefined for admin tokens). */
  get callcenter(): string | undefined {
    return this.t.callcenter;
  }

  /** The agent an agent token acts as. */
  get agent(): string | undefined {
    return this.t.agent;
  }

  get isAdmin(): boolean {
    return this.t.role === 'admin';
  }

  private refuse(what: string): never {
    throw new ForbiddenError(`${this.article} token may not ${what}`);
  }

  /** "an agent", "an admin", "a supervisor": for messages. */
  get article(): string {
    return `${this.t.role === 'supervisor' ? 'a' : 'an'} ${this.t.role}`;
  }

  /** The call center itself (an admin-only view, e.g. the whole event stream). */
  requireAdmin(what: string): void {
    if (!this.isAdmin) this.refuse(what);
  }

  /** Whether the token belongs to call center `cc` at all. */
  inCallCenter(cc: string): boolean {
    return this.isAdmin || this.t.callcenter === cc;
  }

  /** Whether the token may see agent `agent` (its state, log entries, events). */
  seesAgent(cc: CallCenterConfig, agent: string): boolean {
    if (this.isAdmin) return true;
    if (this.t.callcenter !== cc.id) return false;
    if (this.t.role === 'agent') return this.t.agent === agent;
    const a = Object.hasOwn(cc.agents, agent) ? cc.agents[agent] : undefined;
    return a !== undefined && Object.keys(a.queues).some((q) => this.queueSet.has(q));
  }

  /** Whether the token may see queue `queue` (a supervisor's queue; an agent's own queues). */
  seesQueue(cc: CallCenterConfig, queue: string): boolean {
    if (this.isAdmin) return true;
    if (this.t.callcenter !== cc.id) return false;
    if (this.t.role === 'supervisor') return this.queueSet.has(queue);
    const a = cc.agents[this.t.agent ?? ''];
    return a !== undefined && Object.hasOwn(a.queues, queue);
  }

  /** Whether the token may see a conversation: its task's queue or one of its agents is in scope. */
  seesConversation(cc: CallCenterConfig, c: ScopedConversation): boolean {
    if (this.isAdmin) return true;
    if (this.t.callcenter !== cc.id) return false;
    if (this.t.role === 'agent') return c.legs.some((l) => l.agent === this.t.agent);
    return (c.queue !== undefined && this.queueSet.has(c.queue)) || c.legs.some((l) => l.agent !== undefined && this.seesAgent(cc, l.agent));
  }

  /** Whether the token may see supervisor `sup` (itself, or one sharing a queue with it). */
  seesSupervisor(cc: CallCenterConfig, sup: string): boolean {
    if (this.isAdmin) return true;
    if (this.t.callcenter !== cc.id || this.t.role !== 'supervisor') return false;
    const s = cc.supervisors[sup];
    return s !== undefined && (this.t.supervisor === sup || s.queues.some((q) => this.queueSet.has(q)));
  }

  /** Throws unless the token may read agent `agent`. */
  readAgent(cc: CallCenterConfig, agent: string): void {
    if (!this.seesAgent(cc, agent)) this.refuse(`see agent '${agent}'`);
  }

  /** Throws unless the token may act as agent `agent` (its own operations: states, calls, offers). */
  actAsAgent(cc: CallCenterConfig, agent: string): void {
    if (this.isAdmin) return;
    if (this.t.role !== 'agent' || this.t.callcenter !== cc.id || this.t.agent !== agent) this.refuse(`act as agent '${agent}'${this.t.role === 'supervisor' ? ' (supervisors use force_logout, force_ready, force_not_ready)' : ''}`);
  }

  /**
   * Throws unless the token may force agent `agent`'s state; returns the queues it may force
   * it in (undefined: all), so a supervisor never changes the agent in a queue it does not oversee.
   */
  forceAgent(cc: CallCenterConfig, agent: string): string[] | undefined {
    if (this.isAdmin) return undefined;
    if (this.t.role !== 'supervisor' || !this.seesAgent(cc, agent)) this.refuse(`force agent '${agent}'`);
    const a = cc.agents[agent]!;
    return Object.keys(a.queues).filter((q) => this.queueSet.has(q));
  }

  /** Throws unless the token may read queue `queue`. */
  readQueue(cc: CallCenterConfig, queue: string): void {
    if (!this.seesQueue(cc, queue)) this.refuse(`see queue '${queue}'`);
  }

  /** Throws unless the token may see the conversation. */
  readConversation(cc: CallCenterConfig, id: string, c: ScopedConversation): void {
    if (!this.seesConversation(cc, c)) this.refuse(`see conversation '${id}'`);
  }

  /** Throws unless the token may act as supervisor `sup` (monitoring). */
  actAsSupervisor(cc: CallCenterConfig, sup: string): void {
    if (this.isAdmin) return;
    if (this.t.role !== 'supervisor' || this.t.callcenter !== cc.id || this.t.supervisor !== sup) this.refuse(`act as supervisor '${sup}'`);
  }

  /** Throws unless the token belongs to call center `cc`. */
  useCallCenter(cc: string): void {
    if (!this.inCallCenter(cc)) this.refuse(`use call center '${cc}'`);
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The configured tokens, looked up through their SHA-256 digests with `timingSafeEqual` over
 * every entry, so neither a token's content nor its length leaks through timing.
 */
export class TokenTable {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(tokens: readonly ApiTokenConfig[]) {
    this.entries = tokens.map(({ token, ...rest }) => ({ digest: digest(token), principal: new Principal(rest) }));
  }

  /** True if there are no tokens at all (every request will be refused). */
  get empty(): boolean {
    return this.entries.length === 0;
  }

  /** The holder of `token`, or undefined. */
  lookup(token: string): Principal | undefined {
    if (token.length === 0 || token.length > 512) return undefined;
    const d = digest(token);
    let found: Principal | undefined;
    // Compare against all tokens, not stopping early, for constant work per request.
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found = e.principal;
    return found;
  }

  /** The holder of the token in an `Authorization: Bearer <token>` header, or undefined. */
  fromHeader(header: string | undefined): Principal | undefined {
    if (header === undefined) return undefined;
    const m = /^Bearer[ ]+([^\s]{1,512})\s*$/i.exec(header);
    return m === null ? undefined : this.lookup(m[1]!);
  }
}
