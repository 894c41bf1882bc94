/**
 * The Redis connection and its scripts. Scripts are defined with ioredis `defineCommand`,
 * which sends EVALSHA and falls back to EVAL on `NOSCRIPT`, so a Redis restart (script
 * cache emptied) heals itself on the next call.
 */
import { Redis, type ChainableCommander, type RedisOptions, type Result } from 'ioredis';
import { AGENT_APPLY, DEADLINE_CLAIM, DEADLINE_CLEAR, DEADLINE_DONE, DEADLINE_SET, GUARD_BEAT, GUARD_TRACK, NONCE_USE, REGISTER_APPLY, REGISTER_SWEEP, REPAIR_SEQ, AUTH_FAILURE } from './scripts';
import { ANSWER_CLAIM, QUEUE_HISTORY_SAMPLE, QUEUE_STATS_PUBLISH, RESERVATION_RELEASE, RESERVATION_RENEW, RESERVE, TASK_END, TASK_ENQUEUE, TASK_FLAG_MAXWAIT, TASK_REQUEUE, TASK_RETARGET, QUEUE_OUT_OF_HOURS } from './acdScripts';
import { COMMAND_PUSH, COMMAND_WITHDRAW } from './commandScripts';
import { CONV_CREATE, CONV_END, CONV_OPLOG, CONV_MONITOR, CONV_JOIN, CONV_LEAVE, CONV_SET_MODE, CONV_TASK } from './convScripts';
import { SNAPSHOT } from './snapshotScripts';
import { AUDIT_READY_SET, AUDIT_READY_INDEX, AUDIT_REGISTRATIONS, AUDIT_RESERVATION_LEASE, AUDIT_STALE_LEG } from './auditScripts';
import { TRUNK_LEASE_ACQUIRE, TRUNK_LEASE_RELEASE, TRUNK_LEASE_RENEW, TRUNK_REG_REPORT } from './trunkScripts';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** See {@link AGENT_APPLY}: numKeys, keys..., args... */
    ccsAgentApply(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    /** See {@link REPAIR_SEQ}: numKeys, then (stream, counter) pairs. */
    ccsRepairSeq(numKeys: number, ...keys: string[]): Result<number, Context>;
    /** See {@link DEADLINE_CLAIM}. */
    ccsDeadlineClaim(deadlines: string, claims: string, tokenKey: string, leaseMs: number, limit: number): Result<[string[], string | null, string], Context>;
    /** See {@link DEADLINE_DONE}. */
    ccsDeadlineDone(deadlines: string, claims: string, member: string, token: string): Result<number, Context>;
    /** DEADLINE_SET: arms a deadline ms from Redis's clock. */
    ccsDeadlineSet(deadlines: string, claims: string, member: string, ms: number): Result<number, Context>;
    /** DEADLINE_CLEAR: disarms a deadline. */
    ccsDeadlineClear(deadlines: string, claims: string, member: string): Result<number, Context>;
    /** See {@link REGISTER_APPLY}: 4 keys, then args. */
    ccsRegisterApply(bindings: string, expiry: string, deadlines: string, claims: string, ...args: (string | number)[]): Result<string[], Context>;
    /** See {@link REGISTER_SWEEP}. */
    ccsRegisterSweep(bindings: string, expiry: string, deadlines: string, claims: string, member: string, token: string): Result<number, Context>;
    /** See {@link NONCE_USE}. */
    ccsNonceUse(guard: string, nc: number, ttlMs: number): Result<number, Context>;
    /** ACD scripts: see lib/store/acdScripts.ts. */
    ccsTaskEnqueue(numKeys: number, ...keysAndArgs: (string | number)[]): Result<[number, number, number], Context>;
    ccsReserve(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    ccsReservationRelease(reservation: string, expected: string): Result<number, Context>;
    ccsReservationRenew(reservation: string, expected: string, leaseMs: number): Result<number, Context>;
    ccsTaskRequeue(task: string, tasks: string, head: string, taskId: string): Result<number, Context>;
    ccsAnswerClaim(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    ccsTaskFlagMaxWait(task: string): Result<number, Context>;
    ccsTaskEnd(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    ccsTaskRetarget(task: string, tasks: string, head: string, events: string, seq: string, ...args: (string | number)[]): Result<(string | number)[], Context>;
    ccsQueueHistorySample(history: string, tasks: string, keepMinutes: number): Result<number, Context>;
    ccsQueueStatsPublish(events: string, seq: string, deadlines: string, claims: string, last: string, member: string, token: string, periodMs: number, json: string, maxLen: number): Result<(string | number)[], Context>;
    /** See lib/store/scripts.ts GUARD_TRACK. */
    ccsGuardTrack(guard: string, deadlines: string, callId: string, agents: string, member: string, ttlMs: number): Result<number, Context>;
    /** See lib/store/scripts.ts GUARD_BEAT. */
    ccsGuardBeat(guard: string, deadlines: string, claims: string, member: string, ttlMs: number): Result<number, Context>;
    /** See lib/store/commandScripts.ts COMMAND_PUSH: 1 pushed, 0 owner not present. */
    ccsCommandPush(presence: string, list: string, entry: string, listTtlMs: number): Result<number, Context>;
    /** See lib/store/commandScripts.ts COMMAND_WITHDRAW: entries removed (0 = already taken). */
    ccsCommandWithdraw(list: string, entry: string): Result<number, Context>;
    /** Conversation scripts: see lib/store/convScripts.ts. */
    ccsConvCreate(conv: string, convs: string, events: string, seq: string, ...args: (string | number)[]): Result<(string | number)[], Context>;
    ccsConvJoin(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    ccsConvSetMode(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    ccsConvLeave(conv: string, legs: string, agentConvs: string, events: string, seq: string, ...args: (string | number)[]): Result<(string | number)[], Context>;
    ccsConvTask(conv: string, ...args: string[]): Result<number, Context>;
    ccsConvEnd(numKeys: number, ...keysAndArgs: (string | number)[]): Result<(string | number)[], Context>;
    /** See {@link CONV_OPLOG}. */
    ccsConvOplog(oplog: string, seq: string, agent: string, ...args: (string | number)[]): Result<number, Context>;
    ccsConvMonitor(conv: string, legs: string, events: string, seq: string, ...args: (string | number)[]): Result<(string | number)[], Context>;
    ccsQueueOutOfHours(events: string, seq: string, stats: string, ...args: (string | number)[]): Result<number, Context>;
    /** See AUTH_FAILURE in lib/store/scripts.ts. */
    ccsAuthFailure(counter: string, windowMs: number): Result<number, Context>;
    /** See lib/store/snapshotScripts.ts SNAPSHOT: JSON. */
    ccsSnapshot(numKeys: number, ...keysAndArgs: (string | number)[]): Result<string, Context>;
    /** Carrier registration: see lib/store/trunkScripts.ts. 1 taken, 0 held by someone. */
    ccsTrunkLeaseAcquire(lease: string, status: string, token: string, instance: string, leaseMs: number): Result<number, Context>;
    /** 1 extended, 0 lost. */
    ccsTrunkLeaseRenew(lease: string, token: string, leaseMs: number): Result<number, Context>;
    /** 1 released, 0 not the holder. */
    ccsTrunkLeaseRelease(lease: string, status: string, token: string): Result<number, Context>;
    /** The Redis time written, or 0 when the caller no longer holds the lease. */
    /** Audit repairs: see lib/store/auditScripts.ts. */
    ccsAuditReadySet(agent: string, ready: string, agentId: string, stateField: string, sinceField: string, idxField: string, spec: string): Result<string, Context>;
    ccsAuditReadyIndex(agent: string, ready: string, strayIndex: string, agentId: string, stateField: string, idxField: string, spec: string, strayMember: string): Result<string, Context>;
    ccsAuditReservationLease(reservation: string, leaseMs: number): Result<number, Context>;
    ccsAuditRegistrations(bindings: string, expiry: string, deadlines: string, claims: string, member: string): Result<number, Context>;
    ccsAuditStaleLeg(agentConvs: string, conv: string, convId: string): Result<number, Context>;
    ccsTrunkRegReport(lease: string, status: string, token: string, instance: string, state: string, expiresInMs: number | '', sipStatus: number | '', error: string): Result<number, Context>;
  }
}

/** Default of `redis.commandTimeoutMs`: a command without a reply by then fails (503), and a script reaching Redis later is refused. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 2000;

/** Marker of the write deadline appended to every script call. */
const FENCE_MARK = 'ccsfence:';

/**
 * Prepended to every script: pops the write deadline ccswitch appended to ARGV and refuses
 * the script when Redis runs it after that deadline (Redis clock, ms). Why: a script whose
 * caller already gave up (timeout, 503) may still reach Redis later — TCP retransmits after a
 * network cut heals, a proxy flushes what it buffered — and applying it then would be a stale
 * transition, a lost update. Popping keeps each script's own ARGV (and `#ARGV`) unchanged.
 */
const FENCE_LUA = `
local __ccsFence = table.remove(ARGV)
if type(__ccsFence) ~= 'string' or string.sub(__ccsFence, 1, ${FENCE_MARK.length}) ~= '${FENCE_MARK}' then
  return redis.error_reply('ERR ccswitch script called without its write deadline')
end
local __ccsNotAfter = tonumber(string.sub(__ccsFence, ${FENCE_MARK.length + 1}))
-- The TIME read here is kept for the script's nowMs() (lib/store/scripts.ts PRELUDE): one
-- TIME per script instead of two, each a Lua table and a command call.
local __ccsT = nil
if __ccsNotAfter > 0 then
  __ccsT = redis.call('TIME')
  if tonumber(__ccsT[1]) * 1000 + math.floor(tonumber(__ccsT[2]) / 1000) > __ccsNotAfter then
    return redis.error_reply('CCS_STALE this write reached Redis after its deadline and was not applied')
  end
end
`;

/**
 * The write deadline of a script sent now: the Redis clock (estimated from a TIME round trip
 * on every (re)connection) plus the command timeout. Before the first estimate: 0, no deadline.
 */
class WriteFence {
  private offsetMs: number | undefined;
  constructor(
    private readonly redis: Redis,
    private readonly windowMs: number,
  ) {
    redis.on('ready', () => void this.measure());
    if (redis.status === 'ready') void this.measure();
  }

  private async measure(): Promise<void> {
    try {
      const t0 = Date.now();
      const [sec, micro] = await this.redis.time();
      const t1 = Date.now();
      // The reply's time was taken somewhere in the round trip: assume its middle.
      this.offsetMs = Number(sec) * 1000 + Math.floor(Number(micro) / 1000) - (t0 + t1) / 2;
    } catch {
      // The connection went again; the next 'ready' measures.
    }
  }

  arg(): string {
    return this.offsetMs === undefined ? `${FENCE_MARK}0` : `${FENCE_MARK}${Math.floor(Date.now() + this.offsetMs + this.windowMs)}`;
  }
}

/**
 * Registers ccswitch's scripts on a connection (idempotent per connection). Every script is
 * fenced by a write deadline of `fenceMs` (see {@link FENCE_LUA}); callers see no difference.
 */
export function defineScripts(redis: Redis, fenceMs: number = DEFAULT_COMMAND_TIMEOUT_MS): Redis {
  if (typeof (redis as unknown as Record<string, unknown>).ccsAgentApply === 'function') return redis;
  const fence = new WriteFence(redis, fenceMs);
  const target = redis as unknown as Record<string, (...args: unknown[]) => unknown>;
  const define = redis.defineCommand.bind(redis);
  redis.defineCommand = (name: string, definition: { lua: string; numberOfKeys?: number; readOnly?: boolean }): void => {
    define(name, { ...definition, lua: FENCE_LUA + definition.lua });
    const call = target[name]!.bind(redis);
    target[name] = (...args: unknown[]) => call(...args, fence.arg());
  };
  redis.defineCommand('ccsAgentApply', { lua: AGENT_APPLY });
  redis.defineCommand('ccsRepairSeq', { lua: REPAIR_SEQ });
  redis.defineCommand('ccsDeadlineClaim', { lua: DEADLINE_CLAIM, numberOfKeys: 3 });
  redis.defineCommand('ccsDeadlineDone', { lua: DEADLINE_DONE, numberOfKeys: 2 });
  redis.defineCommand('ccsDeadlineSet', { lua: DEADLINE_SET, numberOfKeys: 2 });
  redis.defineCommand('ccsDeadlineClear', { lua: DEADLINE_CLEAR, numberOfKeys: 2 });
  redis.defineCommand('ccsRegisterApply', { lua: REGISTER_APPLY, numberOfKeys: 4 });
  redis.defineCommand('ccsRegisterSweep', { lua: REGISTER_SWEEP, numberOfKeys: 4 });
  redis.defineCommand('ccsNonceUse', { lua: NONCE_USE, numberOfKeys: 1 });
  redis.defineCommand('ccsTaskEnqueue', { lua: TASK_ENQUEUE });
  redis.defineCommand('ccsReserve', { lua: RESERVE });
  redis.defineCommand('ccsReservationRelease', { lua: RESERVATION_RELEASE, numberOfKeys: 1 });
  redis.defineCommand('ccsReservationRenew', { lua: RESERVATION_RENEW, numberOfKeys: 1 });
  redis.defineCommand('ccsTaskRequeue', { lua: TASK_REQUEUE, numberOfKeys: 3 });
  redis.defineCommand('ccsAnswerClaim', { lua: ANSWER_CLAIM });
  redis.defineCommand('ccsTaskEnd', { lua: TASK_END });
  redis.defineCommand('ccsTaskRetarget', { lua: TASK_RETARGET, numberOfKeys: 5 });
  redis.defineCommand('ccsQueueStatsPublish', { lua: QUEUE_STATS_PUBLISH, numberOfKeys: 5 });
  redis.defineCommand('ccsQueueHistorySample', { lua: QUEUE_HISTORY_SAMPLE, numberOfKeys: 2 });
  redis.defineCommand('ccsTaskFlagMaxWait', { lua: TASK_FLAG_MAXWAIT, numberOfKeys: 1 });
  redis.defineCommand('ccsGuardTrack', { lua: GUARD_TRACK, numberOfKeys: 2 });
  redis.defineCommand('ccsGuardBeat', { lua: GUARD_BEAT, numberOfKeys: 3 });
  redis.defineCommand('ccsCommandPush', { lua: COMMAND_PUSH, numberOfKeys: 2 });
  redis.defineCommand('ccsCommandWithdraw', { lua: COMMAND_WITHDRAW, numberOfKeys: 1 });
  redis.defineCommand('ccsConvCreate', { lua: CONV_CREATE, numberOfKeys: 4 });
  redis.defineCommand('ccsConvJoin', { lua: CONV_JOIN });
  redis.defineCommand('ccsConvSetMode', { lua: CONV_SET_MODE });
  redis.defineCommand('ccsConvLeave', { lua: CONV_LEAVE, numberOfKeys: 5 });
  redis.defineCommand('ccsConvTask', { lua: CONV_TASK, numberOfKeys: 1 });
  redis.defineCommand('ccsConvOplog', { lua: CONV_OPLOG, numberOfKeys: 3 });
  redis.defineCommand('ccsConvMonitor', { lua: CONV_MONITOR, numberOfKeys: 4 });
  redis.defineCommand('ccsQueueOutOfHours', { lua: QUEUE_OUT_OF_HOURS, numberOfKeys: 3 });
  redis.defineCommand('ccsAuthFailure', { lua: AUTH_FAILURE, numberOfKeys: 1 });
  redis.defineCommand('ccsConvEnd', { lua: CONV_END });
  redis.defineCommand('ccsSnapshot', { lua: SNAPSHOT });
  redis.defineCommand('ccsTrunkLeaseAcquire', { lua: TRUNK_LEASE_ACQUIRE, numberOfKeys: 2 });
  redis.defineCommand('ccsTrunkLeaseRenew', { lua: TRUNK_LEASE_RENEW, numberOfKeys: 1 });
  redis.defineCommand('ccsTrunkLeaseRelease', { lua: TRUNK_LEASE_RELEASE, numberOfKeys: 2 });
  redis.defineCommand('ccsTrunkRegReport', { lua: TRUNK_REG_REPORT, numberOfKeys: 2 });
  redis.defineCommand('ccsAuditReadySet', { lua: AUDIT_READY_SET, numberOfKeys: 2 });
  redis.defineCommand('ccsAuditReadyIndex', { lua: AUDIT_READY_INDEX, numberOfKeys: 3 });
  redis.defineCommand('ccsAuditReservationLease', { lua: AUDIT_RESERVATION_LEASE, numberOfKeys: 1 });
  redis.defineCommand('ccsAuditRegistrations', { lua: AUDIT_REGISTRATIONS, numberOfKeys: 4 });
  redis.defineCommand('ccsAuditStaleLeg', { lua: AUDIT_STALE_LEG, numberOfKeys: 2 });
  // Back to the prototype's defineCommand for anyone else.
  delete (redis as unknown as { defineCommand?: unknown }).defineCommand;
  return redis;
}

/**
 * Runs a pipeline and returns each command's reply in order; the first command that failed
 * throws its error (ioredis reports them per command instead of rejecting).
 */
export async function pipelineReplies(pipe: ChainableCommander): Promise<unknown[]> {
  const rows = (await pipe.exec()) ?? [];
  for (const [err] of rows) if (err) throw err;
  return rows.map(([, v]) => v);
}

/**
 * Opens the connection of the request paths: reconnects forever with a capped backoff, but
 * never lets a write wait for Redis or arrive late (issue "faults", item 4):
 * - a command without a reply within `commandTimeout` fails (the HTTP layer answers 503), and
 *   the socket is dropped at the same time (`socketTimeout`) so a black-holed connection is
 *   noticed and replaced;
 * - once connected, commands are not queued while Redis is away (`enableOfflineQueue` off after
 *   the first 'ready'): they fail at once instead of being applied minutes later;
 * - commands in flight when the connection broke are not sent again on reconnection
 *   (`autoResendUnfulfilledCommands` off; ioredis then leaves their promises pending, and the
 *   command timeout is what rejects them);
 * - and every script carries a write deadline Redis checks (see {@link defineScripts}).
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const commandTimeout = options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const redis = new Redis(url, {
    maxRetriesPerRequest: 2,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
    commandTimeout,
    socketTimeout: commandTimeout,
    autoResendUnfulfilledCommands: false,
    ...options,
  });
  // Start-up commands may wait for the first connection; after it, none waits for Redis.
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
  return defineScripts(redis, commandTimeout);
}

/**
 * A connection for blocking reads (XREAD BLOCK, BRPOP) made from `redis`: a block may last up
 * to `maxBlockMs`, so commands time out (and a silent socket is dropped and replaced) only
 * 2 s after that — a cut-off Redis cannot hang the reader for the minutes TCP takes to
 * notice. The timeout also settles a read that was in flight when the connection broke:
 * ioredis, told not to resend such commands, drops them without rejecting their promises.
 * Reads may wait in the offline queue while reconnecting.
 */
export function blockingConnection(redis: Redis, maxBlockMs: number): Redis {
  return redis.duplicate({ commandTimeout: maxBlockMs + 2000, socketTimeout: maxBlockMs + 2000, enableOfflineQueue: true, autoResendUnfulfilledCommands: false });
}
