/**
 * Lua scripts of carrier registration (lib/sip/carrierRegistration.ts): the lease that lets
 * exactly one instance at a time keep a trunk registered, and the registration's status
 * record, written only by the lease holder.
 *
 * The lease is a string key `trunk:<name>:reg:lease` holding a random token with a PX expiry.
 * Whoever set it holds the lease until it expires or is released; every later write of the
 * holder (renew, release, status) names that token and is refused when the key holds another
 * one (fencing): an instance that paused past its lease, and whose lease another instance
 * has since taken, can neither extend it nor overwrite the new holder's status.
 *
 * The status is a hash `trunk:<name>:reg`: state (`registered | failed | unregistered`),
 * holder (instance id, empty between holders), heldSince, expiresAt, lastStatus, lastError,
 * lastAt. Times are Redis `TIME` in ms, so instances on skewed hosts agree.
 */
import { PRELUDE } from './scripts';

/**
 * Takes the lease if nobody holds it and names the new holder in the status.
 * KEYS: 1 lease, 2 status hash. ARGV: 1 token, 2 instance id, 3 lease ms.
 * Returns 1 taken, 0 held by someone (possibly this caller under another token).
 */
export const TRUNK_LEASE_ACQUIRE = `${PRELUDE}
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', tonumber(ARGV[3])) then
  redis.call('HSET', KEYS[2], 'holder', ARGV[2], 'heldSince', nowMs())
  return 1
end
return 0
`;

/**
 * Extends the lease when the caller still holds it.
 * KEYS: 1 lease. ARGV: 1 token, 2 lease ms. Returns 1 extended, 0 lost.
 */
export const TRUNK_LEASE_RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
`;

/**
 * Gives the lease up (graceful stop), so the next instance takes it on its next try instead
 * of after the lease expires; the registration at the carrier stays as it is.
 * KEYS: 1 lease, 2 status hash. ARGV: 1 token. Returns 1 released, 0 not the holder.
 */
export const TRUNK_LEASE_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'holder', '')
  return 1
end
return 0
`;

/**
 * Records the outcome of one REGISTER, only for the lease holder.
 * KEYS: 1 lease, 2 status hash. ARGV: 1 token, 2 instance id, 3 state, 4 ms until the
 * binding expires ('' leaves expiresAt as it is), 5 SIP status ('' none: timeout, transport
 * error), 6 error text ('' none).
 * Returns the Redis time written as lastAt, or 0 when the caller no longer holds the lease.
 */
export const TRUNK_REG_REPORT = `${PRELUDE}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local now = nowMs()
redis.call('HSET', KEYS[2], 'holder', ARGV[2], 'state', ARGV[3], 'lastStatus', ARGV[5], 'lastError', ARGV[6], 'lastAt', now)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'expiresAt', now + tonumber(ARGV[4])) end
return now
`;
