/**
 * Lua scripts of ACD routing (DESIGN.md sections 5 and 6): queue tasks, leased agent
 * reservations with fencing tokens, and the task's life (waiting → offering → answered, or
 * back to waiting, or ended: abandoned / overflow / timeout / closed). Each is one atomic
 * change; key names come from lib/store/keys.ts.
 *
 * A task hash holds: id, queue, priority, callId, caller, owner (the incarnation that holds
 * the caller's call), conditions (JSON), state, enqueuedAt, answeredAt, agent.
 * A reservation is a string key per agent `<token>|<task>|<queue>` with a PX expiry: the
 * lease. If nobody renews or ends it, Redis deletes it and the agent is free again.
 *
 * Order: `queue:<q>:tasks` holds every task not yet answered or ended (waiting or offering),
 * by priority then age; `queue:<q>:head` holds the waiting tasks without selection
 * conditions. Such a task may reserve only when it is the first of `head`, so callers are
 * served in order whichever instance holds them. A task with conditions (agent list,
 * skills) does not block the others and may reserve whenever an agent it accepts is free.
 */
import { PRELUDE } from './scripts';
import { READY_INDEX_LUA } from './readyIndexLua';

/** Lua: append one event with the next sequence number (stream id `<seq>-0`). */
export const EMIT = `
local function emit(evKey, seqKey, maxLen, now, type, data)
  local seq = redis.call('INCR', seqKey)
  redis.call('XADD', evKey, 'MAXLEN', '~', maxLen, seq .. '-0', 'type', type, 'ts', now, 'data', cjson.encode(data))
  return seq
end
`;

/**
 * Lua: the per-minute history of a queue (`queue:<q>:history`, a HASH): `a:<minute>` answered
 * calls in that minute, `w:<minute>` the most callers seen waiting in it (minute = Redis ms /
 * 60000). The hash lives two hours past its last write.
 */
export const HISTORY = `
local function historyMinute(now)
  return math.floor(now / 60000)
end
local function historyWaiting(key, now, waiting)
  local field = 'w:' .. historyMinute(now)
  local cur = tonumber(redis.call('HGET', key, field) or '-1')
  if waiting > cur then redis.call('HSET', key, field, waiting) end
  redis.call('PEXPIRE', key, 7200000)
end
local function historyAnswered(key, now)
  redis.call('HINCRBY', key, 'a:' .. historyMinute(now), 1)
  redis.call('PEXPIRE', key, 7200000)
end
`;

/**
 * Task score: higher priority first (priority 0..100), then arrival order. Arrival is a
 * per-queue counter, not the clock: two callers in the same millisecond must still keep
 * their order (a ZSET breaks score ties by member, i.e. by random task id). 100 * 1e13 stays
 * well inside a double's exact integers.
 */
const SCORE = `
local function taskScore(priority, arrival)
  return (100 - tonumber(priority)) * 1e13 + tonumber(arrival)
end
`;

/**
 * Creates a waiting task and arms its max-wait deadline. The `enqueued` event carries
 * `waitedMs` (non-zero for a transferred caller that keeps its wait); the queue's history
 * records the number now waiting.
 * KEYS: 1 tasks zset, 2 task hash, 3 events, 4 event seq, 5 deadlines, 6 queue stats hash, 7 head zset, 8 arrival counter,
 * 9 queue history hash.
 * ARGV: 1 task id, 2 queue, 3 priority, 4 call id, 5 caller, 6 owner, 7 conditions JSON
 * (empty: none), 8 max wait ms, 9 events max len, 10 deadline member, 11 when the caller started
 * waiting ('' now; a transferred caller keeps its wait).
 * Returns {position, enqueuedAt, seq}.
 */
export const TASK_ENQUEUE = `${PRELUDE}${EMIT}${SCORE}${HISTORY}
local now = nowMs()
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('task exists') end
local since = now
if ARGV[11] ~= nil and ARGV[11] ~= '' then since = tonumber(ARGV[11]) end
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'queue', ARGV[2], 'priority', ARGV[3], 'callId', ARGV[4],
  'caller', ARGV[5], 'owner', ARGV[6], 'conditions', ARGV[7], 'state', 'waiting', 'enqueuedAt', since)
local score = taskScore(ARGV[3], redis.call('INCR', KEYS[8]))
redis.call('ZADD', KEYS[1], score, ARGV[1])
if ARGV[7] == '' then redis.call('ZADD', KEYS[7], score, ARGV[1]) end
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[8]), ARGV[10])
redis.call('HINCRBY', KEYS[6], 'entered', 1)
local position = redis.call('ZRANK', KEYS[1], ARGV[1]) + 1
if KEYS[9] ~= nil then historyWaiting(KEYS[9], now, redis.call('ZCARD', KEYS[1])) end
local seq = emit(KEYS[3], KEYS[4], ARGV[9], now, 'queue.caller',
  { queue = ARGV[2], task = ARGV[1], caller = ARGV[5], position = position, reason = 'enqueued', waitedMs = math.max(0, now - since) })
return { position, since, seq }
`;

/**
 * Reserves agents for a waiting task: walks the candidates in the order given and leases
 * each one still Ready in the queue, unreserved and registered, up to ARGV[4] of them
 * (1 for sequential strategies, more for ring_all). The task goes to 'offering', the queue
 * counts the offers (`offers`, one per agent rung) and a queue.caller `offered` event names
 * the agents.
 * KEYS: 1 task hash, 2 token counter, 3 head zset, 4 tasks zset, 5 queue stats hash, 6 events,
 * 7 event seq, then per candidate 3: agent hash, reservation, registrations.
 * ARGV: 1 task id, 2 queue, 3 lease ms, 4 how many, 5 events max len, 6.. candidate ids.
 * Returns {1, agent1, token1, ...} or {0, why} (why: task_not_waiting | not_first | no_agent).
 */
export const RESERVE = `${PRELUDE}${EMIT}
local t = redis.call('HMGET', KEYS[1], 'state', 'conditions', 'caller')
if t[1] ~= 'waiting' then return { 0, 'task_not_waiting' } end
local unconditioned = (t[2] == '' or t[2] == false)
if unconditioned and redis.call('ZRANGE', KEYS[3], 0, 0)[1] ~= ARGV[1] then return { 0, 'not_first' } end
local q, lease, want = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = { 1 }
local agents = {}
for i = 6, #ARGV do
  local k = 8 + (i - 6) * 3
  local akey, rkey, gkey = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  if redis.call('HGET', akey, 'q:' .. q .. ':state') == 'ready'
    and redis.call('EXISTS', rkey) == 0
    and redis.call('EXISTS', gkey) == 1 then
    local token = tostring(redis.call('INCR', KEYS[2]))
    redis.call('SET', rkey, token .. '|' .. ARGV[1] .. '|' .. q, 'PX', lease)
    out[#out + 1] = ARGV[i]
    out[#out + 1] = token
    agents[#agents + 1] = ARGV[i]
    if #agents >= want then break end
  end
end
if #agents == 0 then return { 0, 'no_agent' } end
redis.call('HSET', KEYS[1], 'state', 'offering')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[5], 'offers', #agents)
local position = (redis.call('ZRANK', KEYS[4], ARGV[1]) or 0) + 1
emit(KEYS[6], KEYS[7], ARGV[5], nowMs(), 'queue.caller',
  { queue = q, task = ARGV[1], caller = t[3] or '', position = position, reason = 'offered', agents = agents })
return out
`;

/**
 * Ends a reservation if the caller still holds it (fencing: the token must match).
 * KEYS: 1 reservation. ARGV: 1 expected value `<token>|<task>|<queue>`. Returns 1 or 0 (stale).
 */
export const RESERVATION_RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * Extends a reservation the caller still holds (the agent's phone is still ringing).
 * KEYS: 1 reservation. ARGV: 1 expected value, 2 lease ms. Returns 1 or 0 (stale).
 */
export const RESERVATION_RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * An offer round is over without an answer: the task waits again, in its old place.
 * KEYS: 1 task hash, 2 tasks zset, 3 head zset. ARGV: 1 task id. Returns 1, or 0 if the task is not offering.
 */
export const TASK_REQUEUE = `
local t = redis.call('HMGET', KEYS[1], 'state', 'conditions')
if t[1] ~= 'offering' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'waiting')
if t[2] == '' or t[2] == false then
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if score then redis.call('ZADD', KEYS[3], score, ARGV[1]) end
end
return 1
`;

/**
 * The agent answered: only if its reservation is still the one presented (fencing token),
 * the task becomes 'answered'. The reservation is kept (its lease set to ARGV[6] ms) until the
 * owner has put the agent on the call and releases it: the agent is still Ready in the queue
 * until then, and without the lease the next task would reserve it again. If the owner dies
 * in between, the lease lapses by itself. The task becomes 'answered' and leaves the waiting list, its
 * max-wait deadline is dropped, the queue's counters move and a queue.caller event is written.
 * The agent hash records the task (field `acd:task`) for the agent's view of its call.
 * An answer within the queue's service-level threshold counts in `answeredInSla`, and the
 * minute's answered count in the queue's history moves.
 * KEYS: 1 reservation, 2 task hash, 3 tasks zset, 4 events, 5 event seq, 6 deadlines,
 * 7 deadline claims, 8 queue stats hash, 9 agent stats hash, 10 agent hash, 11 the queue's
 * Ready ZSET (whose `calls` index moves with the agent's count), 12 queue history hash.
 * ARGV: 1 expected reservation value, 2 task id, 3 agent, 4 events max len, 5 deadline member,
 * 6 how long the lease is kept for connecting the call (ms), 7 service-level threshold (ms).
 * Returns {1, waitedMs, seq} or {0, why} (why: stale_reservation | task_gone).
 */
export const ANSWER_CLAIM = `${PRELUDE}${EMIT}${READY_INDEX_LUA}${HISTORY}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return { 0, 'stale_reservation' } end
local t = redis.call('HMGET', KEYS[2], 'state', 'queue', 'caller', 'enqueuedAt')
if t[1] ~= 'offering' then return { 0, 'task_gone' } end
local now = nowMs()
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local waited = now - tonumber(t[4])
redis.call('HSET', KEYS[2], 'state', 'answered', 'agent', ARGV[3], 'answeredAt', now)
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[5])
redis.call('HDEL', KEYS[7], ARGV[5])
redis.call('HINCRBY', KEYS[8], 'answered', 1)
redis.call('HINCRBY', KEYS[8], 'waitMsTotal', waited)
if ARGV[7] ~= nil and waited <= tonumber(ARGV[7]) then redis.call('HINCRBY', KEYS[8], 'answeredInSla', 1) end
if KEYS[12] ~= nil then historyAnswered(KEYS[12], now) end
local calls = redis.call('HINCRBY', KEYS[9], 'calls', 1)
redis.call('HSET', KEYS[9], 'lastCallAt', now, 'noAnswer', 0)
-- The agent is still Ready here (until it is put on the call): its place in fewest_calls moves now.
idxScore(KEYS[11], redis.call('HGET', KEYS[10], 'q:' .. t[2] .. ':idx'), 'calls', calls)
redis.call('HSET', KEYS[10], 'acd:task', ARGV[2])
local seq = emit(KEYS[4], KEYS[5], ARGV[4], now, 'queue.caller',
  { queue = t[2], task = ARGV[2], caller = t[3], agent = ARGV[3], waitedMs = waited, position = 0, reason = 'answered' })
return { 1, waited, seq }
`;

/**
 * Ends a task that was not answered (or closes an answered one): abandoned, overflow,
 * timeout, rejected, closed. Removes it from the waiting list, drops its deadline, counts it,
 * writes a queue.caller event; an answered task's talk time goes to the agent's and queue's
 * handle time. The task hash expires after ARGV[5] ms (kept a while for `GET`).
 * KEYS: 1 task hash, 2 tasks zset, 3 events, 4 event seq, 5 deadlines, 6 deadline claims,
 * 7 queue stats hash, 8 agent stats hash (of the answering agent, or any key when none), 9 head zset,
 * 10 agent hash (of the answering agent, or any key when none), 11 the queue's Ready ZSET.
 * ARGV: 1 task id, 2 reason, 3 events max len, 4 deadline member, 5 keep ms, 6 data for the
 * IVR ('' none; a reject's `data`, carried in the event), 7 '1' when KEYS 8 and 10 are an agent's,
 * 8 the queue's service-level threshold (ms): a caller abandoning within it counts in
 * `abandonedInSla` (a short abandon, which the service level leaves out).
 * Returns {1, seq (0 when no event: the end of an answered call)} or {0, 'already_ended'}.
 */
export const TASK_END = `${PRELUDE}${EMIT}${READY_INDEX_LUA}
local t = redis.call('HMGET', KEYS[1], 'state', 'queue', 'caller', 'enqueuedAt', 'answeredAt', 'agent')
if t[1] == false or t[1] == 'ended' then return { 0, 'already_ended' } end
local now = nowMs()
local reason = ARGV[2]
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('HDEL', KEYS[6], ARGV[4])
local data = { queue = t[2], task = ARGV[1], caller = t[3], position = 0, reason = reason }
if ARGV[6] ~= nil and ARGV[6] ~= '' then data.data = ARGV[6] end
if t[1] == 'answered' then
  local talk = now - tonumber(t[5])
  redis.call('HINCRBY', KEYS[7], 'handled', 1)
  redis.call('HINCRBY', KEYS[7], 'handleMsTotal', talk)
  local talkMs = redis.call('HINCRBY', KEYS[8], 'talkMs', talk)
  -- Ready in this queue meanwhile (another queue's call ended it): least_talk_time moves now.
  if ARGV[7] == '1' then idxScore(KEYS[11], redis.call('HGET', KEYS[10], 'q:' .. t[2] .. ':idx'), 'talk', talkMs) end
  data.agent = t[6]
  data.talkMs = talk
else
  redis.call('HINCRBY', KEYS[7], reason, 1)
  data.waitedMs = now - tonumber(t[4])
  if reason == 'abandoned' and ARGV[8] ~= nil and data.waitedMs <= tonumber(ARGV[8]) then redis.call('HINCRBY', KEYS[7], 'abandonedInSla', 1) end
end
local answered = t[1] == 'answered'
redis.call('HSET', KEYS[1], 'state', 'ended', 'endedAt', now, 'endReason', reason)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if answered then return { 1, 0 } end
local seq = emit(KEYS[3], KEYS[4], ARGV[3], now, 'queue.caller', data)
return { 1, seq }
`;

/**
 * The task's max wait ran out (deadline handler, any instance): flags it for its owner, which
 * overflows or ends it. Nothing happens to a task that was answered or ended meanwhile.
 * KEYS: 1 task hash. Returns 1 if flagged.
 */
export const TASK_FLAG_MAXWAIT = `
local st = redis.call('HGET', KEYS[1], 'state')
if st ~= 'waiting' and st ~= 'offering' then return 0 end
redis.call('HSET', KEYS[1], 'maxWait', '1')
return 1
`;

/**
 * Publishes a queue's statistics (deadline `qstats|<queue>`, any instance): re-arms the
 * deadline one period later and writes a queue.stats event unless the figures are the same
 * as the last ones published (a quiet queue writes nothing). Refuses a claim that is no
 * longer ours (another instance took the deadline after our claim lapsed).
 * KEYS: 1 events, 2 event seq, 3 deadlines, 4 deadline claims, 5 last published stats.
 * ARGV: 1 deadline member, 2 claim token, 3 period ms, 4 stats JSON, 5 events max len.
 * Returns {1, seq (0: unchanged, nothing written)} or {0, 'stale_claim'}.
 */
export const QUEUE_STATS_PUBLISH = `${PRELUDE}
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return { 0, 'stale_claim' } end
local now = nowMs()
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[4] then return { 1, 0 } end
redis.call('SET', KEYS[5], ARGV[4], 'PX', 86400000)
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'type', 'queue.stats', 'ts', now, 'data', ARGV[4])
return { 1, seq }
`;

/**
 * One sample of a queue's waiting callers for its per-minute history (the stats deadline
 * takes one every period), and the history's fields older than ARGV[1] minutes dropped.
 * KEYS: 1 queue history hash, 2 tasks zset. ARGV: 1 minutes kept.
 * Returns the number waiting.
 */
export const QUEUE_HISTORY_SAMPLE = `${PRELUDE}${HISTORY}
local now = nowMs()
local waiting = redis.call('ZCARD', KEYS[2])
historyWaiting(KEYS[1], now, waiting)
local oldest = historyMinute(now) - tonumber(ARGV[1])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local m = tonumber(string.sub(f, 3))
  if m == nil or m < oldest then redis.call('HDEL', KEYS[1], f) end
end
return waiting
`;

/**
 * forward_agent (seed 002: "this is actually re-queueing"): a task being offered goes back to
 * waiting with new selection conditions, keeping its place (age) and its priority unless a new
 * one is given; a task without conditions rejoins the in-order head. queue.caller `forwarded`
 * names the agent it was offered to.
 * KEYS: 1 task hash, 2 tasks zset, 3 head zset, 4 events, 5 event seq.
 * ARGV: 1 task id, 2 conditions JSON ('' none), 3 priority ('' keep), 4 events max len, 5 agent.
 * Returns {1, position, seq} or {0, why} (why: task_not_offering).
 */
export const TASK_RETARGET = `${PRELUDE}${EMIT}${SCORE}
local t = redis.call('HMGET', KEYS[1], 'state', 'priority', 'queue', 'caller')
if t[1] ~= 'offering' and t[1] ~= 'waiting' then return { 0, 'task_not_offering' } end
local score = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
if score == nil then return { 0, 'task_not_offering' } end
local priority = t[2]
if ARGV[3] ~= '' then
  local arrival = score - (100 - tonumber(t[2])) * 1e13
  priority = ARGV[3]
  score = taskScore(priority, arrival)
  redis.call('ZADD', KEYS[2], score, ARGV[1])
end
redis.call('HSET', KEYS[1], 'state', 'waiting', 'conditions', ARGV[2], 'priority', priority)
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] == '' then redis.call('ZADD', KEYS[3], score, ARGV[1]) end
local position = redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
local seq = emit(KEYS[4], KEYS[5], ARGV[4], nowMs(), 'queue.caller',
  { queue = t[3], task = ARGV[1], caller = t[4], position = position, reason = 'forwarded', agent = ARGV[5] })
return { 1, position, seq }
`;

/**
 * A call business hours sent elsewhere (issue "trunk routing"): a `queue.caller` event with
 * reason `out_of_hours` and, for a queue, its `outOfHours` counter.
 * KEYS: 1 events, 2 event seq, 3 the queue's stats hash (any key and ARGV[3] '0' when none).
 * ARGV: 1 events max len, 2 the event's fields as JSON, 3 '1' to count it in the queue's stats.
 * Returns the event's sequence number.
 */
export const QUEUE_OUT_OF_HOURS = `${PRELUDE}${EMIT}
local data = cjson.decode(ARGV[2])
data.reason = 'out_of_hours'
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[3], 'outOfHours', 1) end
return emit(KEYS[1], KEYS[2], ARGV[1], nowMs(), 'queue.caller', data)
`;
