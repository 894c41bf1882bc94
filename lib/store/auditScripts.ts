/**
 * Lua scripts of the invariant audit's repairs (lib/audit/repair.ts). Each re-checks the
 * broken invariant inside the script and changes nothing when it holds again (another
 * instance, or the normal path, got there first), so a repair never races a live change.
 */
import { PRELUDE, REG_PURGE } from './scripts';
import { READY_INDEX_LUA } from './readyIndexLua';

/**
 * Makes an agent's membership of a queue's Ready set follow its state: added (scored by the
 * time it entered Ready, as the engine does) when Ready, removed otherwise; its Ready indexes
 * follow, as in AGENT_APPLY.
 * KEYS: 1 agent hash, 2 Ready set. ARGV: 1 agent id, 2 state field, 3 since field, 4 index
 * record field, 5 the agent's index spec in the queue (lib/acd/readyIndex.ts).
 * Returns 'added', 'removed' or '' (nothing to do).
 */
export const AUDIT_READY_SET = `${READY_INDEX_LUA}
local state = redis.call('HGET', KEYS[1], ARGV[2]) or 'logged_out'
local inSet = redis.call('ZSCORE', KEYS[2], ARGV[1])
if state == 'ready' and not inSet then
  local since = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0') or 0
  redis.call('ZADD', KEYS[2], since, ARGV[1])
  idxRemove(KEYS[2], redis.call('HGET', KEYS[1], ARGV[4]))
  redis.call('HSET', KEYS[1], ARGV[4], idxAdd(KEYS[2], ARGV[1], idxMember(since, ARGV[1]), ARGV[5]))
  return 'added'
end
if state ~= 'ready' and inSet then
  redis.call('ZREM', KEYS[2], ARGV[1])
  idxRemove(KEYS[2], redis.call('HGET', KEYS[1], ARGV[4]))
  redis.call('HSET', KEYS[1], ARGV[4], '')
  return 'removed'
end
return ''
`;

/**
 * Rebuilds one agent's entries in a queue's Ready indexes from its state, as AGENT_APPLY
 * would have written them: removes what its record names and the stray member given, then,
 * if the agent is Ready (in the Ready set), adds it again with the spec given and its Ready
 * score. KEYS: 1 agent hash, 2 Ready ZSET, 3 the index holding a stray member (any key when
 * none). ARGV: 1 agent, 2 state field, 3 index record field, 4 spec, 5 stray member ('' none).
 * Returns 'rebuilt' or 'removed'.
 */
export const AUDIT_READY_INDEX = `${READY_INDEX_LUA}
if ARGV[5] ~= '' then redis.call('ZREM', KEYS[3], ARGV[5]) end
idxRemove(KEYS[2], redis.call('HGET', KEYS[1], ARGV[3]))
local since = redis.call('ZSCORE', KEYS[2], ARGV[1])
if (redis.call('HGET', KEYS[1], ARGV[2]) or 'logged_out') == 'ready' and since then
  redis.call('HSET', KEYS[1], ARGV[3], idxAdd(KEYS[2], ARGV[1], idxMember(tonumber(since), ARGV[1]), ARGV[4]))
  return 'rebuilt'
end
redis.call('HSET', KEYS[1], ARGV[3], '')
return 'removed'
`;

/**
 * Gives a reservation that has no expiry a lease, so it ends as every lease does.
 * KEYS: 1 reservation. ARGV: 1 lease ms. Returns 1 when a lease was set.
 */
export const AUDIT_RESERVATION_LEASE = `
if redis.call('PTTL', KEYS[1]) ~= -1 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * Drops an agent's expired bindings and re-arms its expiry deadline, as the sweep does, but
 * without a deadline claim (the audit found the sweep did not run).
 * KEYS: 1 bindings, 2 expiry zset, 3 deadlines, 4 deadline claims. ARGV: 1 deadline member.
 * Returns the number of bindings removed.
 */
export const AUDIT_REGISTRATIONS = `${PRELUDE}${REG_PURGE}
return purgeAndArm(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], nowMs())
`;

/**
 * Removes a conversation from an agent's list of conversations when it is no longer active
 * (ended, or its record expired).
 * KEYS: 1 agent's conversation set, 2 conversation hash. ARGV: 1 conversation id. Returns 1 when removed.
 */
export const AUDIT_STALE_LEG = `
if redis.call('HGET', KEYS[2], 'state') == 'active' then return 0 end
return redis.call('SREM', KEYS[1], ARGV[1])
`;
