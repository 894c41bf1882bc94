/**
 * Lua scripts of conversations (DESIGN.md 5.1): create, join, set mode (with the one-active
 * rule of seed 002), leave, task queued / answered, end. Each is one atomic change that also
 * appends the `conversation` event (and, for hold, the operation-log entry, op 38).
 *
 * A conversation hash holds: id, owner, state (active|ended), created, task, queue,
 * taskQueued ('1'|'0'). Its legs hash maps leg id → JSON {leg, kind, agent?, mode, state,
 * since, n (order of joining)}. `agent:<id>:convs` is the set of live conversations an agent has a live leg in;
 * `convs` the call center's live conversations by creation time.
 *
 * Keys of an agent's other conversations are passed in (KEYS), never built inside a script
 * (Redis Cluster). The script checks that the agent's set is still what the caller read; if
 * not it answers `retry`, and the caller reads again.
 */
import { EMIT } from './acdScripts';
import { OPLOG_ADD, PRELUDE } from './scripts';

/** Lua: append one `conversation` event (after {@link EMIT}). */
const CONV_EVENT = `
local function convEvent(evKey, seqKey, maxLen, now, id, action, leg, cause)
  local data = { id = id, action = action }
  if cause ~= nil and cause ~= '' then data.cause = cause end
  if leg ~= nil then
    data.leg = leg.leg
    data.kind = leg.kind
    data.mode = leg.mode
    data.state = leg.state
    if leg.agent ~= nil and leg.agent ~= '' then data.agent = leg.agent end
    if leg.supervisor ~= nil then data.supervisor = leg.supervisor end
    if leg.monitor ~= nil then data.monitor = leg.monitor end
  end
  return emit(evKey, seqKey, maxLen, now, 'conversation', data)
end
`;

/**
 * Lua: the one-active rule's check. `agent`'s set must still be `id` plus the conversation ids
 * in ARGV[from..] (else 'retry'); returns nil when the agent is on hold in all of those (their
 * legs hashes are KEYS[keyFrom..] in the same order), else the reply naming where it is active.
 */
const ACTIVE_ELSEWHERE = `
local function activeElsewhere(agent, setKey, id, from, keyFrom)
  if not sameSet(setKey, id, from) then return { 0, 'retry' } end
  local out = { 0, 'conflict' }
  for i = from, #ARGV do
    for _, raw in ipairs(redis.call('HVALS', KEYS[keyFrom + i - from])) do
      local l = cjson.decode(raw)
      if l.agent == agent and l.state ~= 'gone' and tonumber(l.mode) ~= 4 then out[#out + 1] = ARGV[i] end
    end
  end
  if #out > 2 then return out end
  return nil
end
`;

/** Lua: true if `set` holds exactly `id` plus the ids in ARGV[from..]. */
const SAME_SET = `
local function sameSet(setKey, id, from)
  local expected = { [id] = true }
  local n = 1
  for i = from, #ARGV do
    if expected[ARGV[i]] == nil then n = n + 1 end
    expected[ARGV[i]] = true
  end
  local members = redis.call('SMEMBERS', setKey)
  local count = 0
  for _, m in ipairs(members) do
    if expected[m] == nil then return false end
    count = count + 1
  end
  if redis.call('SISMEMBER', setKey, id) == 0 then count = count + 1 end
  return count == n
end
`;

/**
 * Creates an active conversation.
 * KEYS: 1 conv hash, 2 convs zset, 3 events, 4 event seq.
 * ARGV: 1 id, 2 owner, 3 task ('' none), 4 queue ('' none), 5 task queued '1'|'0', 6 events max len.
 * Returns {created, seq} or an error reply when the id exists.
 */
export const CONV_CREATE = `${PRELUDE}${EMIT}${CONV_EVENT}
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('conversation exists') end
local now = nowMs()
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'owner', ARGV[2], 'state', 'active', 'created', now,
  'task', ARGV[3], 'queue', ARGV[4], 'taskQueued', ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local seq = convEvent(KEYS[3], KEYS[4], ARGV[6], now, ARGV[1], 'created', nil)
return { now, seq }
`;

/**
 * Adds a leg (or replaces a dialing leg with its new state). An agent leg joining in a mode
 * other than 4 must not be active anywhere else (one-active rule): the caller passes the
 * agent's other conversations' legs hashes and ids, and gets {0, 'conflict', conv...} when the
 * agent is not on hold in one of them, {0, 'retry'} when the agent's set changed meanwhile.
 * KEYS: 1 conv hash, 2 legs hash, 3 agent convs set (any key when no agent), 4 events, 5 event seq,
 *       6.. legs hashes of the agent's other conversations (same order as their ids in ARGV).
 * ARGV: 1 id, 2 leg, 3 kind, 4 agent ('' none), 5 mode, 6 state, 7 events max len,
 *       8 supervisor ('' none), 9 monitoring mode ('' none), 10.. other conversation ids.
 * Returns {1, seq} | {0, 'ended'} | {0, 'conflict', conv...} | {0, 'retry'}.
 */
export const CONV_JOIN = `${PRELUDE}${EMIT}${CONV_EVENT}${SAME_SET}${ACTIVE_ELSEWHERE}
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return { 0, 'ended' } end
local id, agent, mode = ARGV[1], ARGV[4], tonumber(ARGV[5])
if agent ~= '' and mode ~= 4 then
  local refused = activeElsewhere(agent, KEYS[3], id, 10, 6)
  if refused then return refused end
end
local now = nowMs()
local n = redis.call('HLEN', KEYS[2]) + 1
local prevRaw = redis.call('HGET', KEYS[2], ARGV[2])
if prevRaw then n = cjson.decode(prevRaw).n or n end
local leg = { leg = ARGV[2], kind = ARGV[3], mode = mode, state = ARGV[6], since = now, n = n }
if ARGV[8] ~= '' then leg.supervisor = ARGV[8] end
if ARGV[9] ~= '' then leg.monitor = ARGV[9] end
if agent ~= '' then
  leg.agent = agent
  redis.call('SADD', KEYS[3], id)
end
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(leg))
local seq = convEvent(KEYS[4], KEYS[5], ARGV[7], now, id, 'joined', leg)
return { 1, seq }
`;

/**
 * Sets a live leg's mode. An agent leg set to 1..3 must not be active in another conversation
 * (one-active rule, as {@link CONV_JOIN}). An agent leg put on hold (4) from another mode
 * also writes the operation-log entry op 38 (hold) with the agent's state in the
 * conversation's queue (seed 004).
 * KEYS: 1 conv hash, 2 legs hash, 3 agent convs set (any key when no agent), 4 events, 5 event seq,
 *       6 oplog, 7 oplog seq, 8 agent hash (any key when no agent), 9.. other legs hashes.
 * ARGV: 1 id, 2 leg, 3 mode, 4 expected current mode ('' any), 5 events max len, 6 oplog max len,
 *       7 instance, 8 queue for the oplog entry ('' none), 9.. other conversation ids.
 * Returns {1, previous mode, seq (0: unchanged)} | {0, 'ended' | 'no_leg' | 'stale' | 'retry'} |
 * {0, 'conflict', conv...}.
 */
export const CONV_SET_MODE = `${PRELUDE}${OPLOG_ADD}${EMIT}${CONV_EVENT}${SAME_SET}${ACTIVE_ELSEWHERE}
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return { 0, 'ended' } end
local id, mode = ARGV[1], tonumber(ARGV[3])
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return { 0, 'no_leg' } end
local leg = cjson.decode(raw)
if leg.state == 'gone' then return { 0, 'no_leg' } end
local prev = tonumber(leg.mode)
if ARGV[4] ~= '' and tonumber(ARGV[4]) ~= prev then return { 0, 'stale' } end
local agent = leg.agent or ''
if agent ~= '' and mode ~= 4 then
  local refused = activeElsewhere(agent, KEYS[3], id, 9, 9)
  if refused then return refused end
end
if prev == mode then return { 1, prev, 0 } end
local now = nowMs()
leg.mode = mode
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(leg))
if agent ~= '' and mode == 4 then
  local state = ''
  if ARGV[8] ~= '' then state = redis.call('HGET', KEYS[8], 'q:' .. ARGV[8] .. ':state') or 'logged_out' end
  local opSeq = redis.call('INCR', KEYS[7])
  oplogAdd(KEYS[6], ARGV[6], opSeq, now, agent, ARGV[8], 38, -1, -1, state, ARGV[7], id, '')
end
local seq = convEvent(KEYS[4], KEYS[5], ARGV[5], now, id, 'mode', leg)
return { 1, prev, seq }
`;

/**
 * A leg left (hung up, released, moved): its state becomes gone, the agent's set forgets the
 * conversation unless the agent has another live leg in it.
 * KEYS: 1 conv hash, 2 legs hash, 3 agent convs set (any key when no agent), 4 events, 5 event seq.
 * ARGV: 1 id, 2 leg, 3 events max len, 4 cause ('' none: e.g. the status of a dial not answered).
 * Returns {1, seq} | {0, 'no_leg'} (unknown or gone already).
 */
export const CONV_LEAVE = `${PRELUDE}${EMIT}${CONV_EVENT}
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return { 0, 'no_leg' } end
local leg = cjson.decode(raw)
if leg.state == 'gone' then return { 0, 'no_leg' } end
local now = nowMs()
leg.state = 'gone'
leg.since = now
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(leg))
local agent = leg.agent or ''
if agent ~= '' then
  local still = false
  for _, other in ipairs(redis.call('HVALS', KEYS[2])) do
    local l = cjson.decode(other)
    if l.agent == agent and l.state ~= 'gone' then still = true end
  end
  if not still then redis.call('SREM', KEYS[3], ARGV[1]) end
end
local seq = convEvent(KEYS[4], KEYS[5], ARGV[3], now, ARGV[1], 'left', leg, ARGV[4])
return { 1, seq }
`;

/**
 * Records the conversation's queue task and whether it waits (queued) or not (answered,
 * ended). KEYS: 1 conv hash. ARGV: 1 task ('' none), 2 queue, 3 queued '1'|'0'. Returns 1, or 0 if ended.
 */
export const CONV_TASK = `
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
redis.call('HSET', KEYS[1], 'task', ARGV[1], 'queue', ARGV[2], 'taskQueued', ARGV[3])
return 1
`;

/**
 * Ends a conversation: every leg gone, forgotten by its agents, out of the live list; the
 * record is kept ARGV[3] ms for reading.
 * KEYS: 1 conv hash, 2 legs hash, 3 convs zset, 4 events, 5 event seq, 6.. agent convs sets of every agent with a leg.
 * ARGV: 1 id, 2 events max len, 3 keep ms.
 * Returns {1, seq} | {0, 'ended'}.
 */
export const CONV_END = `${PRELUDE}${EMIT}${CONV_EVENT}
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return { 0, 'ended' } end
local now = nowMs()
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local l = cjson.decode(all[i + 1])
  if l.state ~= 'gone' then
    l.state = 'gone'
    l.since = now
    redis.call('HSET', KEYS[2], all[i], cjson.encode(l))
  end
end
for i = 6, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', 'ended', 'ended', now, 'taskQueued', '0')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local seq = convEvent(KEYS[4], KEYS[5], ARGV[2], now, ARGV[1], 'ended', nil)
return { 1, seq }
`;

/**
 * Sets a live supervisor leg's monitoring mode and its listen/speak mode (event `mode`).
 * KEYS: 1 conv hash, 2 legs hash, 3 events, 4 event seq.
 * ARGV: 1 id, 2 leg, 3 monitoring mode, 4 mode, 5 events max len.
 * Returns {1, seq} | {0, 'ended' | 'no_leg'}.
 */
export const CONV_MONITOR = `${PRELUDE}${EMIT}${CONV_EVENT}
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return { 0, 'ended' } end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then return { 0, 'no_leg' } end
local leg = cjson.decode(raw)
if leg.state == 'gone' or leg.supervisor == nil then return { 0, 'no_leg' } end
local now = nowMs()
leg.monitor = ARGV[3]
leg.mode = tonumber(ARGV[4])
leg.since = now
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(leg))
return { 1, convEvent(KEYS[3], KEYS[4], ARGV[5], now, ARGV[1], 'mode', leg) }
`;

/**
 * Appends an operation-log entry for an agent's operation on a conversation (internal call 41,
 * internal transfer 45, transfer out 46…), with the agent's state in `queue` at that moment.
 * KEYS: 1 oplog, 2 oplog seq, 3 agent hash.
 * ARGV: 1 agent, 2 queue ('' none), 3 op, 4 object, 5 reason, 6 oplog max len, 7 instance, 8 conversation, 9 who (a supervisor; optional).
 * Returns the entry's sequence.
 */
export const CONV_OPLOG = `${PRELUDE}${OPLOG_ADD}
local state = ''
if ARGV[2] ~= '' then state = redis.call('HGET', KEYS[3], 'q:' .. ARGV[2] .. ':state') or 'logged_out' end
local seq = redis.call('INCR', KEYS[2])
oplogAdd(KEYS[1], ARGV[6], seq, nowMs(), ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], state, ARGV[7], ARGV[8], ARGV[9] or '')
return seq
`;
