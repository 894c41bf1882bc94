/**
 * The command hand-off between instances (lib/conversation/commandBus.ts, DESIGN.md 5.1): a
 * REST call reaching an instance that does not own the conversation is run by the owner, once,
 * and answered with the owner's result; an owner that does not take it in time never runs it.
 * Every wait here is on an event (the executor being called, a log line, a script's reply).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../../lib/config/schema';
import { CommandBus, idempotencyDigest, MAX_COMMAND_BYTES, REPLY_TTL_MS, type Command, type CommandExecutor } from '../../lib/conversation/commandBus';
import { CcsError, InvalidRequestError, NotInConversationError, OwnerUnreachableError } from '../../lib/errors';
import { createLogger } from '../../lib/logger';
import { createRedis } from '../../lib/store/redis';
import { startHarness, type Harness } from '../helpers/harness';

/** A promise with its resolve function. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`rejected with a non-Error: ${String(err)}`);
    return err;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
}

type LogLine = { level: number; msg: string; err?: { message: string } } & Record<string, unknown>;

const CMD: Command = { op: 'hold', args: { conversation: 'c1', leg: 'l1' } };

describe('command bus', () => {
  let h: Harness;
  let buses: CommandBus[] = [];
  let conns: Redis[] = [];
  const gates: (() => void)[] = [];

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    await h.raw.flushall();
  });
  afterEach(async () => {
    // A test that failed early may leave an executor waiting: let it finish so stop() returns.
    for (const open of gates.splice(0)) open();
    await Promise.all(buses.map((b) => b.stop()));
    for (const c of conns) c.disconnect();
    buses = [];
    conns = [];
  });

  /** A gate an executor can wait on; opened at the latest when the test ends. */
  const gate = (): { promise: Promise<void>; open: () => void } => {
    const d = deferred();
    gates.push(d.resolve);
    return { promise: d.promise, open: d.resolve };
  };

  const config = (commandTimeoutMs: number): Config => {
    const c = h.config();
    return { ...c, timers: { ...c.timers, commandTimeoutMs } };
  };

  /** One ccswitch instance: its bus, the commands its executor was called with, its log lines. */
  const instance = (execute: CommandExecutor = () => Promise.resolve(null), o: { incarnation?: string; commandTimeoutMs?: number } = {}) => {
    const redis = createRedis(h.server.url);
    const blocking = createRedis(h.server.url);
    conns.push(redis, blocking);
    const incarnation = o.incarnation ?? randomUUID().replace(/-/g, '');
    const calls: { cc: string; cmd: Command }[] = [];
    const callWaiters: { n: number; resolve: () => void }[] = [];
    const lines: LogLine[] = [];
    const logWaiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
    const logger = createLogger('debug', {}, {
      write(s: string) {
        const line = JSON.parse(s) as LogLine;
        lines.push(line);
        for (const w of logWaiters.filter((x) => x.pred(line))) {
          logWaiters.splice(logWaiters.indexOf(w), 1);
          w.resolve(line);
        }
      },
    });
    const bus = new CommandBus({
      redis,
      blocking,
      config: config(o.commandTimeoutMs ?? 3000),
      incarnation,
      logger,
      execute: (cc, cmd) => {
        calls.push({ cc, cmd });
        for (const w of callWaiters.filter((x) => calls.length >= x.n)) {
          callWaiters.splice(callWaiters.indexOf(w), 1);
          w.resolve();
        }
        return execute(cc, cmd);
      },
    });
    buses.push(bus);
    return {
      bus,
      redis,
      incarnation,
      calls,
      lines,
      /** Resolves once the executor has been called `n` times. */
      called: (n = 1): Promise<void> => (calls.length >= n ? Promise.resolve() : new Promise((resolve) => callWaiters.push({ n, resolve }))),
      /** Resolves with the first log line from now on that matches. */
      logged: (pred: (l: LogLine) => boolean): Promise<LogLine> => new Promise((resolve) => logWaiters.push({ pred, resolve })),
      /** Starts reading and waits until the presence key is written. */
      up: async (ccs: string[] = ['default']): Promise<void> => {
        bus.start(ccs);
        await bus.beat();
      },
    };
  };

  const listKey = (incarnation: string, cc = 'default'): string => `ccs:{${cc}}:cmd:${incarnation}`;
  const replyKeys = (cc = 'default'): Promise<string[]> => h.raw.keys(`ccs:{${cc}}:cmd:reply:*`);

  it('hands a command to its owner, which runs it exactly once; the sender gets its value', async () => {
    const a = instance((_cc, cmd) => Promise.resolve({ by: 'a', args: cmd.args }));
    const b = instance();
    await a.up();
    expect(await b.bus.isPresent('default', a.incarnation)).toBe(true);
    await expect(b.bus.send('default', a.incarnation, CMD)).resolves.toEqual({ by: 'a', args: CMD.args });
    expect(a.calls).toEqual([{ cc: 'default', cmd: CMD }]);
    expect(b.calls).toEqual([]);
    // Nothing left behind: the command was taken and its reply collected.
    expect(await h.raw.exists(listKey(a.incarnation))).toBe(0);
    expect(await replyKeys()).toEqual([]);
  });

  it('runs a command for its own incarnation locally, presence or not', async () => {
    const a = instance((_cc, cmd) => Promise.resolve(`done ${cmd.op}`));
    await expect(a.bus.send('default', a.incarnation, CMD)).resolves.toBe('done hold');
    expect(a.calls).toEqual([{ cc: 'default', cmd: CMD }]);
    expect(await h.raw.exists(listKey(a.incarnation))).toBe(0);
  });

  it('reads the command lists of every call center it was started for', async () => {
    const a = instance((cc, cmd) => Promise.resolve(`${cc}:${cmd.op}`));
    const b = instance();
    await a.up(['default', 'other']);
    expect(await b.bus.send('other', a.incarnation, CMD)).toBe('other:hold');
    expect(await b.bus.send('default', a.incarnation, CMD)).toBe('default:hold');
    expect(a.calls.map((c) => c.cc)).toEqual(['other', 'default']);
  });

  it("the owner's CcsError reaches the sender with its code, message and details", async () => {
    const thrown = new NotInConversationError('1001', 'c1');
    const a = instance(() => Promise.reject(thrown));
    const b = instance();
    await a.up();
    const err = await rejection(b.bus.send('default', a.incarnation, CMD));
    expect(err).toBeInstanceOf(CcsError);
    expect(err).not.toBeInstanceOf(NotInConversationError);
    const e = err as CcsError;
    expect({ code: e.code, message: e.message, details: e.details }).toEqual({ code: 'not_in_conversation', message: thrown.message, details: { agent: '1001', conversation: 'c1' } });
    // A domain error is an answer, not a fault of the owner.
    expect(a.lines.filter((l) => l.level >= 50)).toEqual([]);
  });

  it("any other owner failure is 'owner failed: <message>' at the sender and logged at the owner", async () => {
    const a = instance(() => Promise.reject(new Error('media server exploded')));
    const b = instance();
    await a.up();
    const err = await rejection(b.bus.send('default', a.incarnation, CMD));
    expect(err).not.toBeInstanceOf(CcsError);
    expect(err.message).toBe('owner failed: media server exploded');
    const errors = a.lines.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ op: 'hold', err: { message: 'media server exploded' } });
  });

  it('an owner without presence is unreachable at once and nothing is queued for it', async () => {
    const b = instance();
    const gone = randomUUID().replace(/-/g, '');
    expect(await b.bus.isPresent('default', gone)).toBe(false);
    // A long timeout: if the sender waited at all, the test would time out.
    const err = await rejection(b.bus.send('default', gone, CMD, { timeoutMs: 60000 }));
    expect(err).toBeInstanceOf(OwnerUnreachableError);
    expect((err as CcsError).details).toEqual({ owner: gone });
    expect(await h.raw.exists(listKey(gone))).toBe(0);
  });

  it('a command a frozen owner does not take in time is withdrawn and never executed, even when the owner wakes up', async () => {
    const frozen = randomUUID().replace(/-/g, '');
    // Present (its key is there) but nothing reads its list.
    await h.raw.set(`ccs:{default}:presence:${frozen}`, 'x', 'PX', 60000);
    const b = instance();
    expect(await b.bus.isPresent('default', frozen)).toBe(true);
    const withdrawn = deferred<number>();
    const withdraw = b.redis.ccsCommandWithdraw.bind(b.redis);
    jest.spyOn(b.redis, 'ccsCommandWithdraw').mockImplementation(async (list, entry) => {
      const n = await withdraw(list, entry);
      withdrawn.resolve(n);
      return n;
    });
    const err = await rejection(b.bus.send('default', frozen, { op: 'withdrawn', args: {} }, { timeoutMs: 200 }));
    expect(err).toBeInstanceOf(OwnerUnreachableError);
    expect(await withdrawn.promise).toBe(1);
    expect(await h.raw.exists(listKey(frozen))).toBe(0);
    // The process wakes up and reads its list. The list is in order, so once a later command
    // is answered, the withdrawn one would have been run before it if it were still there.
    const x = instance((_cc, cmd) => Promise.resolve(cmd.op), { incarnation: frozen });
    await x.up();
    expect(await b.bus.send('default', frozen, { op: 'later', args: {} })).toBe('later');
    expect(x.calls.map((c) => c.cmd.op)).toEqual(['later']);
  });

  it('a command the owner took but answers late is still answered within a second timeout', async () => {
    const slow = gate();
    const a = instance(async () => {
      await slow.promise;
      return 'late but fine';
    });
    const b = instance();
    await a.up();
    const withdrawn = deferred<number>();
    const withdraw = b.redis.ccsCommandWithdraw.bind(b.redis);
    jest.spyOn(b.redis, 'ccsCommandWithdraw').mockImplementation(async (list, entry) => {
      const n = await withdraw(list, entry);
      withdrawn.resolve(n);
      return n;
    });
    const sent = b.bus.send('default', a.incarnation, CMD, { timeoutMs: 500 });
    await a.called();
    // The first timeout passes; the withdrawal finds the command taken; then the owner answers.
    expect(await withdrawn.promise).toBe(0);
    slow.open();
    await expect(sent).resolves.toBe('late but fine');
    expect(a.calls).toHaveLength(1);
  });

  it('a command the owner took but never answers is owner_unreachable after two timeouts; its late reply expires', async () => {
    const stuck = gate();
    const a = instance(async () => {
      await stuck.promise;
      return 'too late';
    });
    const b = instance();
    await a.up();
    const sent = b.bus.send('default', a.incarnation, CMD, { timeoutMs: 400 });
    await a.called();
    const err = await rejection(sent);
    expect(err).toBeInstanceOf(OwnerUnreachableError);
    expect(b.lines.some((l) => l.level === 40 && /outcome is unknown/.test(l.msg))).toBe(true);
    // The owner finishes (stop waits for it) and replies to nobody: the reply expires.
    stuck.open();
    await a.bus.stop();
    const [reply, ...more] = await replyKeys();
    expect(more).toEqual([]);
    expect(reply).toBeDefined();
    const pttl = await h.raw.pttl(reply!);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(REPLY_TTL_MS);
  });

  it('runs commands concurrently: a slow one does not hold up the next', async () => {
    const slow = gate();
    const a = instance(async (_cc, cmd) => {
      if (cmd.op === 'slow') await slow.promise;
      return cmd.op;
    });
    const b = instance();
    await a.up();
    const first = b.bus.send('default', a.incarnation, { op: 'slow', args: {} }, { timeoutMs: 5000 });
    await a.called();
    await expect(b.bus.send('default', a.incarnation, { op: 'fast', args: {} })).resolves.toBe('fast');
    slow.open();
    await expect(first).resolves.toBe('slow');
  });

  it('a retried send with the same idempotency key returns the first outcome without running again', async () => {
    let n = 0;
    const a = instance(() => Promise.resolve({ run: ++n }));
    const b = instance();
    await a.up();
    expect(await b.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'req-1' })).toEqual({ run: 1 });
    expect(await b.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'req-1' })).toEqual({ run: 1 });
    expect(a.calls).toHaveLength(1);
    // Another key, or the same key in another call center, is another command.
    expect(await b.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'req-2' })).toEqual({ run: 2 });
    expect(await b.bus.send('default', a.incarnation, CMD)).toEqual({ run: 3 });
    expect(a.calls).toHaveLength(3);
    const pttl = await h.raw.pttl(`ccs:{default}:idem:${idempotencyDigest('default', 'req-1')}`);
    expect(pttl).toBeGreaterThan(24 * 3600 * 1000 - 60000);
    expect(pttl).toBeLessThanOrEqual(24 * 3600 * 1000);
  });

  it('idempotency holds for a command run locally too', async () => {
    let n = 0;
    const a = instance(() => Promise.resolve(++n));
    expect(await a.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'local-1' })).toBe(1);
    expect(await a.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'local-1' })).toBe(1);
    expect(a.calls).toHaveLength(1);
  });

  it('an error outcome is replayed to a retry, without running again', async () => {
    const a = instance((_cc, cmd) => Promise.reject(cmd.op === 'domain' ? new NotInConversationError('1001', 'c1') : new Error('boom')));
    const b = instance();
    await a.up();
    const outcome = async (op: string, key: string) => {
      const e = await rejection(b.bus.send('default', a.incarnation, { op, args: {} }, { idempotencyKey: key }));
      return { isCcs: e instanceof CcsError, code: (e as Partial<CcsError>).code, message: e.message, details: (e as Partial<CcsError>).details };
    };
    const first = await outcome('domain', 'err-1');
    expect(first).toMatchObject({ isCcs: true, code: 'not_in_conversation', details: { agent: '1001', conversation: 'c1' } });
    expect(await outcome('domain', 'err-1')).toEqual(first);
    const plain = await outcome('plain', 'err-2');
    expect(plain).toMatchObject({ isCcs: false, message: 'owner failed: boom' });
    expect(await outcome('plain', 'err-2')).toEqual(plain);
    expect(a.calls).toHaveLength(2);
    // Replayed locally, the recorded error is the same.
    const local = await rejection(a.bus.send('default', a.incarnation, { op: 'domain', args: {} }, { idempotencyKey: 'err-1' }));
    expect((local as CcsError).code).toBe('not_in_conversation');
    expect(a.calls).toHaveLength(2);
  });

  it('the same idempotency key sent concurrently from two instances runs once; the retry waits for the first outcome', async () => {
    const first = gate();
    const a = instance(async () => {
      await first.promise;
      return { applied: true };
    });
    const b = instance();
    const c = instance();
    await a.up();
    const fromB = b.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'dup', timeoutMs: 5000 });
    await a.called();
    const pending = a.logged((l) => /idempotency key pending/.test(l.msg));
    const fromC = c.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'dup', timeoutMs: 5000 });
    await pending;
    first.open();
    expect(await Promise.all([fromB, fromC])).toEqual([{ applied: true }, { applied: true }]);
    expect(a.calls).toHaveLength(1);
  });

  it('a retry whose first attempt is still running after the timeout is refused with conflict', async () => {
    const first = gate();
    const a = instance(async () => {
      await first.promise;
      return 'first';
    });
    const b = instance();
    const c = instance();
    await a.up();
    const fromB = b.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'slow', timeoutMs: 5000 });
    await a.called();
    const err = await rejection(c.bus.send('default', a.incarnation, CMD, { idempotencyKey: 'slow', timeoutMs: 500 }));
    expect(err).toBeInstanceOf(CcsError);
    expect((err as CcsError).code).toBe('conflict');
    first.open();
    await expect(fromB).resolves.toBe('first');
    expect(a.calls).toHaveLength(1);
  });

  it('refuses a command over 64 KiB without sending it', async () => {
    const a = instance(() => Promise.resolve('ok'));
    const b = instance();
    await a.up();
    const big = await rejection(b.bus.send('default', a.incarnation, { op: 'big', args: { blob: 'x'.repeat(MAX_COMMAND_BYTES) } }));
    expect(big).toBeInstanceOf(InvalidRequestError);
    expect(await h.raw.exists(listKey(a.incarnation))).toBe(0);
    expect(await rejection(a.bus.send('default', a.incarnation, { op: 'big', args: { blob: 'x'.repeat(MAX_COMMAND_BYTES) } }))).toBeInstanceOf(InvalidRequestError);
    expect(a.calls).toEqual([]);
    // Just under the limit is fine.
    await expect(b.bus.send('default', a.incarnation, { op: 'big', args: { blob: 'x'.repeat(MAX_COMMAND_BYTES - 1024) } })).resolves.toBe('ok');
    expect(a.calls).toHaveLength(1);
  });

  it('presence expires after three beats; stop deletes it, and a sender then fails at once', async () => {
    const a = instance(() => Promise.resolve('ok'), { commandTimeoutMs: 300 });
    const b = instance();
    await a.up();
    const key = `ccs:{default}:presence:${a.incarnation}`;
    const pttl = await h.raw.pttl(key);
    // commandTimeoutMs 300 → beat max(100, 100) ms, expiry 300 ms.
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    await a.bus.stop();
    expect(await b.bus.isPresent('default', a.incarnation)).toBe(false);
    expect(await rejection(b.bus.send('default', a.incarnation, CMD, { timeoutMs: 60000 }))).toBeInstanceOf(OwnerUnreachableError);
    expect(a.calls).toEqual([]);
  });

  it('stop lets a command already taken finish and be answered before it resolves', async () => {
    const taken = gate();
    const order: string[] = [];
    const a = instance(async () => {
      await taken.promise;
      order.push('executed');
      return 'finished';
    });
    const b = instance();
    await a.up();
    const sent = b.bus.send('default', a.incarnation, CMD, { timeoutMs: 5000 });
    await a.called();
    const presenceDeleted = deferred();
    const del = a.redis.del.bind(a.redis) as (...keys: string[]) => Promise<number>;
    jest.spyOn(a.redis, 'del').mockImplementation((async (...keys: string[]) => {
      const n = await del(...keys);
      presenceDeleted.resolve();
      return n;
    }) as never);
    const stopped = a.bus.stop().then(() => order.push('stopped'));
    await presenceDeleted.promise;
    expect(await b.bus.isPresent('default', a.incarnation)).toBe(false);
    taken.open();
    await expect(sent).resolves.toBe('finished');
    await stopped;
    expect(order).toEqual(['executed', 'stopped']);
  });

  it('a malformed entry on the list is logged and the reader goes on', async () => {
    const a = instance((_cc, cmd) => Promise.resolve(cmd.op));
    const b = instance();
    await a.up();
    const failed = a.logged((l) => l.level === 50 && /serving a handed-off command failed/.test(l.msg));
    await h.raw.lpush(listKey(a.incarnation), 'not json');
    await failed;
    expect(await b.bus.send('default', a.incarnation, CMD)).toBe('hold');
    expect(a.calls).toHaveLength(1);
  });
});
