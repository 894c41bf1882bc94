/**
 * The command hand-off between instances (DESIGN.md 5.1, "Any instance serves any REST call").
 *
 * A conversation is owned by one process, named by its incarnation (random per process start).
 * A REST request may reach any instance; when that instance is not the owner it hands the
 * command to the owner over Redis and answers with the owner's result:
 *
 * - Each incarnation has one command LIST per call center (`keys.commands(incarnation)`) and a
 *   presence key (`keys.presence(incarnation)`, a PX expiry renewed every beat). A sender
 *   pushes the command only while the presence key exists (one script, so nothing is queued
 *   for an instance known to be gone) and BRPOPs the reply from `keys.commandReply(id)`.
 * - The owner BRPOPs its command lists, executes each command (concurrently: one slow command
 *   does not hold up the others) and pushes the outcome JSON to the reply key, which expires
 *   after {@link REPLY_TTL_MS} if nobody collects it.
 * - A command that is not answered within the timeout is withdrawn with an atomic LREM of its
 *   exact entry. The owner's BRPOP and that LREM each take the entry atomically, so exactly
 *   one of them gets it: a withdrawn command is never executed (503 owner_unreachable, nothing
 *   applied). When the owner had taken it already, the sender waits one more timeout for the
 *   reply and then gives up with the outcome unknown; the idempotency key makes a retry safe.
 * - With an idempotency key, the executing side (the owner, or the sender itself when it is
 *   the owner) claims `keys.idempotency(digest)` with `SET NX` (a pending marker) before
 *   executing and records the outcome there for {@link IDEMPOTENCY_TTL_MS}: a retry replays the
 *   recorded value or error without executing again.
 *
 * The commands of one call center share its hash tag. The reader waits on the lists of all
 * its call centers in one BRPOP, which is fine on a single Redis; on Redis Cluster, keys of
 * different call centers live in different slots and each call center would need a loop of
 * its own.
 */
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema';
import { CcsError, ConflictError, InvalidRequestError, OwnerUnreachableError, type ErrorCode } from '../errors';
import type { Logger } from '../logger';
import { keysCache, type CallCenterKeys } from '../store/keys';
import { blockingConnection, pipelineReplies } from '../store/redis';

/** Largest command entry (its JSON, in bytes) that may be handed to an instance. */
export const MAX_COMMAND_BYTES = 64 * 1024;
/** How long the outcome of an idempotent command is remembered. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** How long an uncollected reply stays in Redis. */
export const REPLY_TTL_MS = 60_000;
/** How often a retry polls for the outcome of a first attempt that is still running. */
const PENDING_POLL_MS = 20;
/** How long the reader's BRPOP blocks, so that stop() is prompt. */
const READ_BLOCK_SECONDS = 1;
/** Pause of the reader after a failed BRPOP (Redis down), so it does not spin. */
const READ_RETRY_MS = 250;
/** Shortest expiry of a command list (refreshed on every push). */
const LIST_TTL_MIN_MS = 60_000;
/** Idle reply connections kept for reuse. */
const POOL_MAX = 16;
/** Idempotency record of a first attempt that has not finished. */
const PENDING = '{"pending":true}';

/** A command for the instance owning a conversation. */
export interface Command {
  /** What to do (the executor's dispatch key). */
  op: string;
  /** Its arguments; JSON-serialisable. */
  args: Record<string, unknown>;
}

/**
 * Runs a command on the owning instance. Returns a JSON-serialisable value (sent back to the
 * sender as JSON); a thrown {@link CcsError} reaches the sender with its code, message and
 * details, any other error as `owner failed: <message>`.
 */
export type CommandExecutor = (cc: string, cmd: Command) => Promise<unknown>;

/** Dependencies of {@link CommandBus}. */
export interface CommandBusDeps {
  /** Normal connection with ccswitch's scripts defined (createRedis / defineScripts). */
  redis: Redis;
  /** A dedicated connection the reader loop blocks on (BRPOP); used for nothing else. */
  blocking: Redis;
  config: Config;
  /** This process's incarnation id. */
  incarnation: string;
  logger: Logger;
  /** Executes the commands this incarnation owns. */
  execute: CommandExecutor;
}

/** Options of {@link CommandBus.send}. */
export interface SendOptions {
  /** Makes a retry with the same key (in the same call center) replay the first outcome. */
  idempotencyKey?: string;
  /** How long to wait for the owner (ms); defaults to `config.timers.commandTimeoutMs`. */
  timeoutMs?: number;
}

/** What a command list entry carries. */
interface Entry {
  id: string;
  cmd: Command;
  idem?: string;
  timeoutMs: number;
}

/** The outcome of a command as it travels and as it is recorded (JSON). */
type Outcome = { ok: true; value?: unknown } | { ok: false; message: string; code?: ErrorCode; details?: Record<string, unknown> };

/** What an executor did, with the original value or error. */
type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The digest an idempotency key is stored under: sha256 hex of `<cc>|<key>`, 40 characters. */
export function idempotencyDigest(cc: string, key: string): string {
  return createHash('sha256').update(`${cc}|${key}`).digest('hex').slice(0, 40);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toOutcome(s: Settled): Outcome {
  if (s.ok) return { ok: true, value: s.value };
  const err = s.error;
  if (err instanceof CcsError) return { ok: false, code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) };
  return { ok: false, message: errorMessage(err) };
}

/** The outcome as JSON; one that does not serialise becomes a failure saying so. */
function serialise(o: Outcome): string {
  try {
    return JSON.stringify(o);
  } catch (err) {
    return JSON.stringify({ ok: false, message: `the result could not be serialised: ${errorMessage(err)}` } satisfies Outcome);
  }
}

function parseOutcome(json: string): Outcome {
  const o = JSON.parse(json) as unknown;
  if (typeof o !== 'object' || o === null || typeof (o as { ok?: unknown }).ok !== 'boolean') throw new Error(`malformed command outcome: ${json.slice(0, 200)}`);
  const out = o as Outcome;
  if (!out.ok && typeof out.message !== 'string') throw new Error(`malformed command outcome: ${json.slice(0, 200)}`);
  return out;
}

/** Returns the recorded value or throws the recorded error. */
function settle(o: Outcome): unknown {
  if (o.ok) return o.value;
  if (typeof o.code === 'string') throw new CcsError(o.code, o.message, o.details);
  throw new Error(`owner failed: ${o.message}`);
}

function parseEntry(raw: string): Entry {
  const e = JSON.parse(raw) as Partial<Entry> | null;
  if (
    typeof e !== 'object' || e === null || typeof e.id !== 'string' || typeof e.timeoutMs !== 'number' ||
    typeof e.cmd !== 'object' || e.cmd === null || typeof e.cmd.op !== 'string' || typeof e.cmd.args !== 'object' || e.cmd.args === null ||
    (e.idem !== undefined && typeof e.idem !== 'string')
  ) {
    throw new Error(`malformed command entry: ${raw.slice(0, 200)}`);
  }
  return e as Entry;
}

/**
 * Hands commands to the instance owning a conversation and executes the commands handed to
 * this one (see the module comment).
 *
 * Replies are awaited with BRPOP on connections of their own, never on `deps.blocking` (the
 * reader's) nor `deps.redis`, since a blocking command holds its whole connection: each send
 * in flight takes one from a small pool of `deps.redis.duplicate()` connections, created on
 * demand and kept (up to 16 idle) for reuse. Call {@link CommandBus.stop} at shutdown even
 * when {@link CommandBus.start} was never called, to close them.
 */
export class CommandBus {
  private readonly keys: (cc: string) => CallCenterKeys;
  private readonly beatMs: number;
  private readonly ccs = new Set<string>();
  private readonly ccByListKey = new Map<string, string>();
  private running = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly beats = new Set<Promise<void>>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly idle: Redis[] = [];
  private poolOpen = true;

  /** Nothing starts until {@link CommandBus.start}; sending works right away. */
  constructor(private readonly deps: CommandBusDeps) {
    this.keys = keysCache(deps.config.redis.keyPrefix);
    this.beatMs = Math.max(100, Math.floor(deps.config.timers.commandTimeoutMs / 3));
  }

  /**
   * Starts reading this incarnation's command lists for the given call centers and beating its
   * presence key (every max(100 ms, commandTimeoutMs / 3), with an expiry of three beats). The
   * first beat is sent at once; {@link CommandBus.beat} resolves once presence is written.
   * Calling it again adds call centers (the reader picks them up within a second).
   */
  start(ccs: string[]): void {
    for (const cc of ccs) {
      this.ccs.add(cc);
      this.ccByListKey.set(this.keys(cc).commands(this.deps.incarnation), cc);
    }
    this.poolOpen = true;
    if (!this.running) {
      this.running = true;
      this.timer = setInterval(() => {
        if (this.beats.size === 0) this.beat().catch((err: unknown) => this.deps.logger.warn({ err }, 'command bus presence beat failed'));
      }, this.beatMs);
    }
    this.beat().catch((err: unknown) => this.deps.logger.warn({ err }, 'command bus presence beat failed'));
    if (this.loop === undefined && this.ccs.size > 0) this.loop = this.read();
  }

  /**
   * Stops reading (the BRPOP in progress returns within a second; commands already taken run
   * to the end and are answered), deletes the presence keys and closes the idle reply
   * connections. Commands pushed but not taken are withdrawn by their senders on timeout.
   */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.loop;
    this.loop = undefined;
    await Promise.allSettled([...this.beats]);
    this.poolOpen = false;
    for (const conn of this.idle.splice(0)) conn.disconnect();
    const presence = [...this.ccs].map((cc) => this.keys(cc).presence(this.deps.incarnation));
    this.ccs.clear();
    this.ccByListKey.clear();
    if (presence.length > 0) await this.deps.redis.del(...presence);
    // These never reject: serve() failures are logged where they happen.
    await Promise.all([...this.inflight]);
  }

  /** Writes this incarnation's presence keys once (a no-op when not started). */
  async beat(): Promise<void> {
    if (!this.running || this.ccs.size === 0) return;
    const pipe = this.deps.redis.pipeline();
    for (const cc of this.ccs) pipe.set(this.keys(cc).presence(this.deps.incarnation), this.deps.config.instanceId, 'PX', 3 * this.beatMs);
    const p = pipelineReplies(pipe).then(() => undefined);
    this.beats.add(p);
    try {
      await p;
    } finally {
      this.beats.delete(p);
    }
  }

  /** Whether `incarnation` is present (its presence key exists) in call center `cc`. */
  async isPresent(cc: string, incarnation: string): Promise<boolean> {
    return (await this.deps.redis.exists(this.keys(cc).presence(incarnation))) === 1;
  }

  /**
   * Runs `cmd` at `owner`: when owner === this incarnation, runs `execute` locally (still with
   * idempotency); otherwise pushes it to the owner's list and waits for the reply.
   *
   * Resolves with the executor's value (the JSON round trip of it when it came from another
   * instance or from an idempotency record). Rejects with:
   * - {@link InvalidRequestError} when the command's JSON exceeds {@link MAX_COMMAND_BYTES}
   *   (nothing sent);
   * - {@link OwnerUnreachableError} when the owner is not present (at once), or did not take
   *   the command within `timeoutMs` (withdrawn: it will never run), or took it but did not
   *   reply within another `timeoutMs` (the outcome is then unknown: retry with the same
   *   idempotency key);
   * - a plain {@link CcsError} with the code, message and details of the one the executor
   *   threw (locally: the executor's own error on the first run);
   * - `Error('owner failed: <message>')` for any other executor failure;
   * - {@link ConflictError} when a first attempt with the same idempotency key is still
   *   running after `timeoutMs`.
   */
  async send(cc: string, owner: string, cmd: Command, opts: SendOptions = {}): Promise<unknown> {
    const timeoutMs = opts.timeoutMs ?? this.deps.config.timers.commandTimeoutMs;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError(`timeoutMs must be a positive number, not ${timeoutMs}`);
    const id = randomUUID();
    const entry: Entry = { id, cmd: { op: cmd.op, args: cmd.args }, timeoutMs, ...(opts.idempotencyKey === undefined ? {} : { idem: opts.idempotencyKey }) };
    let raw: string;
    try {
      raw = JSON.stringify(entry);
    } catch (err) {
      throw new InvalidRequestError(`command '${cmd.op}' is not JSON-serialisable: ${errorMessage(err)}`, { op: cmd.op });
    }
    const bytes = Buffer.byteLength(raw);
    if (bytes > MAX_COMMAND_BYTES) throw new InvalidRequestError(`command '${cmd.op}' is ${bytes} bytes; at most ${MAX_COMMAND_BYTES} can be handed to another instance`, { op: cmd.op, bytes, limit: MAX_COMMAND_BYTES });

    if (owner === this.deps.incarnation) {
      const r = await this.run(cc, entry.cmd, opts.idempotencyKey, timeoutMs);
      if (r.fresh === undefined) return settle(parseOutcome(r.json));
      if (r.fresh.ok) return r.fresh.value;
      throw r.fresh.error;
    }

    const k = this.keys(cc);
    const list = k.commands(owner);
    const pushed = await this.deps.redis.ccsCommandPush(k.presence(owner), list, raw, Math.max(LIST_TTL_MIN_MS, 3 * timeoutMs));
    if (pushed !== 1) throw new OwnerUnreachableError(owner);
    return settle(parseOutcome(await this.awaitReply(k.commandReply(id), list, raw, owner, cmd.op, timeoutMs)));
  }

  /** Waits for the reply of a pushed command; withdraws it when the owner does not take it. */
  private async awaitReply(replyKey: string, list: string, raw: string, owner: string, op: string, timeoutMs: number): Promise<string> {
    const conn = this.acquire();
    let broken = false;
    const pop = async (): Promise<string | null> => {
      try {
        // A silent socket past the wait means a cut-off Redis: drop it rather than hang.
        conn.options.socketTimeout = conn.options.commandTimeout = timeoutMs + 2000;
        const got = await conn.brpop(replyKey, (timeoutMs / 1000).toFixed(3));
        return got === null ? null : got[1];
      } catch (err) {
        broken = true;
        throw err;
      }
    };
    try {
      const first = await pop();
      if (first !== null) return first;
      if ((await this.deps.redis.ccsCommandWithdraw(list, raw)) > 0) throw new OwnerUnreachableError(owner);
      const second = await pop();
      if (second !== null) return second;
      this.deps.logger.warn({ owner, op, timeoutMs }, 'the owner took a command but did not reply in time; its outcome is unknown');
      throw new OwnerUnreachableError(owner);
    } finally {
      this.release(conn, broken);
    }
  }

  private acquire(): Redis {
    const pooled = this.idle.pop();
    if (pooled !== undefined) return pooled;
    // A reply wait blocks up to the command timeout (the longest a caller may pass).
    const conn = blockingConnection(this.deps.redis, 60_000);
    conn.on('error', (err: unknown) => this.deps.logger.debug({ err }, 'command reply connection error'));
    return conn;
  }

  /** Pools a connection for reuse, or closes it (failed, pool full, or the bus stopped). */
  private release(conn: Redis, broken: boolean): void {
    if (!broken && this.poolOpen && this.idle.length < POOL_MAX) this.idle.push(conn);
    else conn.disconnect();
  }

  /** The reader loop: takes commands off this incarnation's lists until stop(). */
  private async read(): Promise<void> {
    while (this.running) {
      const lists = [...this.ccByListKey.keys()];
      let got: [string, string] | null;
      try {
        got = await this.deps.blocking.brpop(...lists, READ_BLOCK_SECONDS);
      } catch (err) {
        this.deps.logger.warn({ err }, 'reading the command list failed; retrying');
        if (this.running) await sleep(READ_RETRY_MS);
        continue;
      }
      if (got === null) continue;
      const [list, raw] = got;
      const cc = this.ccByListKey.get(list);
      if (cc === undefined) {
        this.deps.logger.error({ list }, 'took a command from a list of no started call center');
        continue;
      }
      // Taken: it must run and be answered even if stop() was called meanwhile.
      this.dispatch(cc, raw);
    }
  }

  /** Serves one command in the background, tracked so stop() waits for it. */
  private dispatch(cc: string, raw: string): void {
    const p: Promise<void> = this.serve(cc, raw)
      .catch((err: unknown) => this.deps.logger.error({ err, cc }, 'serving a handed-off command failed'))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  /** Executes a handed-off command (with idempotency) and pushes its reply. */
  private async serve(cc: string, raw: string): Promise<void> {
    const entry = parseEntry(raw);
    let json: string;
    try {
      const r = await this.run(cc, entry.cmd, entry.idem, entry.timeoutMs);
      json = r.json;
      if (r.fresh !== undefined && !r.fresh.ok && !(r.fresh.error instanceof CcsError)) {
        this.deps.logger.error({ err: r.fresh.error, cc, op: entry.cmd.op, command: entry.id }, 'a handed-off command failed');
      }
    } catch (err) {
      // The idempotency bookkeeping failed, or a first attempt is still running (ConflictError).
      if (!(err instanceof CcsError)) this.deps.logger.error({ err, cc, op: entry.cmd.op, command: entry.id }, 'a handed-off command could not be run');
      json = serialise(toOutcome({ ok: false, error: err }));
    }
    const replyKey = this.keys(cc).commandReply(entry.id);
    await pipelineReplies(this.deps.redis.multi().lpush(replyKey, json).pexpire(replyKey, REPLY_TTL_MS));
  }

  /**
   * Executes `cmd` here, at most once per idempotency key. Returns the outcome JSON, and what
   * the executor did when it ran now (`fresh`; absent when a recorded outcome is replayed).
   */
  private async run(cc: string, cmd: Command, idempotencyKey: string | undefined, timeoutMs: number): Promise<{ json: string; fresh?: Settled }> {
    if (idempotencyKey === undefined) {
      const fresh = await this.attempt(cc, cmd);
      return { json: serialise(toOutcome(fresh)), fresh };
    }
    const key = this.keys(cc).idempotency(idempotencyDigest(cc, idempotencyKey));
    const claimed = await this.deps.redis.set(key, PENDING, 'PX', IDEMPOTENCY_TTL_MS, 'NX');
    if (claimed !== 'OK') return { json: await this.recorded(key, cmd.op, idempotencyKey, timeoutMs) };
    const fresh = await this.attempt(cc, cmd);
    const json = serialise(toOutcome(fresh));
    try {
      await this.deps.redis.set(key, json, 'PX', IDEMPOTENCY_TTL_MS);
    } catch (err) {
      // The command ran: its outcome is still returned; only a retry is affected.
      this.deps.logger.error({ err, cc, op: cmd.op }, 'recording the outcome of an idempotent command failed; a retry with its key will be refused as a conflict');
    }
    return { json, fresh };
  }

  /** Waits (polling) for the outcome recorded under an idempotency key claimed by a first attempt. */
  private async recorded(key: string, op: string, idempotencyKey: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let logged = false;
    for (;;) {
      const v = await this.deps.redis.get(key);
      if (v === null) throw new ConflictError('the outcome of the first command with this idempotency key is no longer known', { idempotencyKey });
      if (v !== PENDING) return v;
      if (Date.now() >= deadline) throw new ConflictError('a command with this idempotency key is still running', { idempotencyKey });
      if (!logged) {
        this.deps.logger.debug({ op, idempotencyKey }, 'idempotency key pending: waiting for the outcome of the first attempt');
        logged = true;
      }
      await sleep(PENDING_POLL_MS);
    }
  }

  /** Runs the executor, keeping its value or error. */
  private async attempt(cc: string, cmd: Command): Promise<Settled> {
    try {
      return { ok: true, value: await this.deps.execute(cc, cmd) };
    } catch (error) {
      return { ok: false, error };
    }
  }
}
