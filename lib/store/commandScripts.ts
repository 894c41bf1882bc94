/**
 * Lua scripts of the command hand-off between instances (lib/conversation/commandBus.ts,
 * DESIGN.md 5.1). Registered with ioredis `defineCommand` in lib/store/redis.ts.
 */

/**
 * Hands a command to an instance: pushes `entry` onto its command list only if its presence
 * key exists, so a command is never queued for an instance known to be gone, and refreshes
 * the list's expiry (a list whose reader died and whose senders died too does not linger).
 * The owner pops from the other end (BRPOP), so commands are taken in order.
 *
 * KEYS[1] presence, KEYS[2] command list; ARGV[1] entry JSON, ARGV[2] list expiry (ms).
 * Returns 1 when pushed, 0 when the instance is not present (nothing written).
 */
export const COMMAND_PUSH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return 1
`;

/**
 * Withdraws a command nobody has taken yet: removes that exact entry (it carries a unique
 * command id) from the command list. The owner's BRPOP and this script are each atomic, so
 * exactly one of them gets the entry: when this returns 1 the command will never be executed;
 * when it returns 0 the owner had already taken it.
 *
 * KEYS[1] command list; ARGV[1] entry JSON. Returns the number of entries removed (0 or 1).
 */
export const COMMAND_WITHDRAW = `
return redis.call('LREM', KEYS[1], 1, ARGV[1])
`;
