/**
 * Lua scripts, registered with ioredis `defineCommand` so a `NOSCRIPT` after a Redis
 * restart is answered by re-sending the body (DESIGN.md section 6). Every change that
 * touches more than one key, or reads then writes, is one of these scripts.
 *
 * All times come from Redis `TIME` (milliseconds), never from the host clock, so several
 * instances on hosts with skewed clocks agree on deadlines.
 */
import { TRANSITIONS } from '../agent/stateMachine';
import { OP_FOR_EVENT, OP_FOR_STATE } from '../oplog';

/** Shared Lua helpers: the Redis clock and gap-free, self-healing sequence numbers. */
const PRELUDE = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Next sequence number of a stream whose entry ids are '<seq>-0'. If the counter was lost
-- (e.g. evicted) while the stream survived, continue after the stream's last id instead of
-- failing the XADD half-way through a script.
local function nextSeq(counterKey, streamKey)
  local s = redis.call('INCR', counterKey)
  local last = redis.call('XREVRANGE', streamKey, '+', '-', 'COUNT', 1)
  if last[1] then
    local lastSeq = tonumber(string.match(last[1][1], '^(%d+)'))
    if lastSeq >= s then
      s = lastSeq + 1
      redis.call('SET', counterKey, s)
    end
  end
  return s
end
`;

/**
 * Applies one agent event to one or more queues, atomically: checks the transition table,
 * writes the per-queue state, keeps the Ready ZSET and the wrap-up deadline in step, and
 * appends one operation-log entry and one event per changed queue.
 *
 * KEYS: 1 agent hash, 2 deadlines, 3 deadline claims, 4 events, 5 event seq, 6 oplog,
 *       7 oplog seq, 8.. the Ready ZSET of each item's queue, in item order.
 * ARGV: 1 JSON spec {agent, mode:'strict'|'lenient', reason, callId, token, instance, evMax, opMax,
 *       items:[{q, ev, auto, wrapMs, op}]}
 * Returns JSON {ok:true, results:[{queue, from, to, changed}], seqs:[..]} or
 * {ok:false, code:'illegal_transition', queue, from, event} with nothing written.
 */
export const AGENT_APPLY = `${PRELUDE}
local T = cjson.decode([==[${JSON.stringify(TRANSITIONS)}]==])
local OPS = cjson.decode([==[${JSON.stringify(OP_FOR_STATE)}]==])
local OPS_EVENT = cjson.decode([==[${JSON.stringify(OP_FOR_EVENT)}]==])
local spec = cjson.decode(ARGV[1])
local akey, dkey, ckey = KEYS[1], KEYS[2], KEYS[3]
local now = nowMs()

local function hget(q, f)
  local v = redis.call('HGET', akey, 'q:' .. q .. ':' .. f)
  if v == false then return nil end
  return v
end

local function resolve(to, it, remembered)
  local auto = 'not_ready'
  if it.auto then auto = 'ready' end
  if to == '@auto' then return auto end
  if to == '@after_call' then
    if it.wrapMs > 0 then return 'wrap_up' end
    return auto
  end
  if to == '@remembered' then return remembered or auto end
  return to
end

-- Pass 1: read and decide; nothing is written until every item is known to be legal.
local plans = {}
local anyLegal, firstIllegal = false, nil
for i, it in ipairs(spec.items) do
  local from = hget(it.q, 'state') or 'logged_out'
  local wmember = 'wrapup|' .. spec.agent .. '|' .. it.q
  local row = T[from]
  local rule = row and row[it.ev]
  local plan = { it = it, from = from, wmember = wmember, rkey = KEYS[7 + i] }
  plans[i] = plan
  if rule == nil then
    plan.kind = 'illegal'
    if firstIllegal == nil then firstIllegal = plan end
  else
    anyLegal = true
    local curReason = hget(it.q, 'reason') or ''
    plan.curReason = curReason
    if it.ev == 'wrap_up_expired' and redis.call('HGET', ckey, wmember) ~= spec.token then
      plan.kind = 'noop' -- stale timer: the wrap-up it belonged to is over or was re-armed
    elseif it.ev == 'call_ended' and spec.callId ~= '' and hget(it.q, 'call') ~= spec.callId then
      plan.kind = 'noop' -- not the call that made this queue busy
    elseif rule.kind == 'ignore' then
      plan.kind = 'noop'
    elseif rule.kind == 'remember_auto' then
      if hget(it.q, 'prev') == 'wrap_up' then
        plan.kind = 'remember'
        plan.remembered = resolve('@auto', it)
      else
        plan.kind = 'noop'
      end
    else
      local remembered = hget(it.q, 'prev')
      local rememberedReason = hget(it.q, 'prevReason') or ''
      if rule.to == '@remembered' and remembered == 'wrap_up' and redis.call('ZSCORE', dkey, wmember) == false then
        remembered = resolve('@auto', it) -- the wrap-up timer ran out meanwhile
        rememberedReason = ''
      end
      local to = resolve(rule.to, it, remembered)
      local reason = ''
      if to == 'not_ready' then
        if it.ev == 'not_ready' then reason = spec.reason
        elseif rule.to == '@remembered' then reason = rememberedReason end
      elseif to == 'logged_out' then reason = spec.reason
      elseif to == 'wrap_up' then reason = '0' end
      if to == from and (to ~= 'not_ready' or reason == curReason) then
        plan.kind = 'noop'
      else
        plan.kind = 'move'
        plan.to = to
        plan.reason = reason
        plan.remember = rule.remember == true
      end
    end
  end
end

if firstIllegal ~= nil and (spec.mode == 'strict' or not anyLegal) then
  return cjson.encode({ ok = false, code = 'illegal_transition', queue = firstIllegal.it.q, from = firstIllegal.from, event = firstIllegal.it.ev })
end

-- Pass 2: write.
local results, seqs = {}, {}
for i, p in ipairs(plans) do
  local it = p.it
  local f = function(name) return 'q:' .. it.q .. ':' .. name end
  if p.kind == 'move' then
    local to = p.to
    redis.call('HSET', akey, f('state'), to, f('since'), now, f('reason'), p.reason)
    if p.remember then
      redis.call('HSET', akey, f('prev'), p.from, f('prevReason'), p.curReason, f('call'), spec.callId)
    elseif to == 'queue_call' then
      redis.call('HSET', akey, f('call'), spec.callId)
    end
    if to ~= 'other_call' and to ~= 'queue_call' then redis.call('HDEL', akey, f('call')) end
    if to ~= 'other_call' then redis.call('HDEL', akey, f('prev'), f('prevReason')) end
    -- Wrap-up timer: armed on entering wrap-up from a call, kept while an other call
    -- interrupts it (DESIGN.md 3: "wrap_up continues its timer"), dropped otherwise.
    if to == 'wrap_up' and p.from ~= 'other_call' then
      redis.call('ZADD', dkey, now + it.wrapMs, p.wmember)
      redis.call('HDEL', ckey, p.wmember)
    elseif to ~= 'wrap_up' and to ~= 'other_call' then
      redis.call('ZREM', dkey, p.wmember)
      redis.call('HDEL', ckey, p.wmember)
    end
    if to == 'ready' then
      redis.call('ZADD', p.rkey, now, spec.agent)
    elseif p.from == 'ready' then
      redis.call('ZREM', p.rkey, spec.agent)
    end
    local op = OPS_EVENT[it.ev] or OPS[to]
    if (to == 'other_call' or to == 'queue_call') and it.op ~= nil then op = it.op end
    local logReason = -1
    if p.reason ~= '' then logReason = tonumber(p.reason) end
    local opSeq = nextSeq(KEYS[7], KEYS[6])
    redis.call('XADD', KEYS[6], 'MAXLEN', '~', spec.opMax, opSeq .. '-0',
      'ts', now, 'agent', spec.agent, 'queue', it.q, 'op', op, 'object', -1, 'reason', logReason,
      'state', to, 'instance', spec.instance)
    local seq = nextSeq(KEYS[5], KEYS[4])
    local evReason = cjson.null
    if p.reason ~= '' then evReason = tonumber(p.reason) end
    local data = cjson.encode({ agent = spec.agent, queue = it.q, state = to, prev = p.from, reason = evReason,
      op = op, oplog = opSeq, instance = spec.instance })
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', spec.evMax, seq .. '-0', 'type', 'agent.state', 'ts', now, 'data', data)
    seqs[#seqs + 1] = seq
    results[#results + 1] = { queue = it.q, from = p.from, to = to, changed = true }
  elseif p.kind == 'remember' then
    redis.call('HSET', akey, f('prev'), p.remembered, f('prevReason'), '')
    redis.call('ZREM', dkey, p.wmember)
    redis.call('HDEL', ckey, p.wmember)
    results[#results + 1] = { queue = it.q, from = p.from, to = p.from, changed = false }
  elseif p.kind == 'noop' then
    results[#results + 1] = { queue = it.q, from = p.from, to = p.from, changed = false }
  else
    results[#results + 1] = { queue = it.q, from = p.from, to = p.from, changed = false, skipped = 'illegal_transition' }
  end
end
return cjson.encode({ ok = true, results = results, seqs = seqs })
`;

/**
 * Claims up to ARGV[2] due deadlines for ARGV[1] ms: each gets a fresh fencing token and is
 * pushed back by the lease, so if the claimer dies another instance claims it again.
 * KEYS: 1 deadlines, 2 claims, 3 token counter.
 * Returns {member1, token1, member2, token2, ...}, nextDueMs|false, nowMs}.
 */
export const DEADLINE_CLAIM = `${PRELUDE}
local now = nowMs()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, m in ipairs(due) do
  local token = tostring(redis.call('INCR', KEYS[3]))
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), m)
  redis.call('HSET', KEYS[2], m, token)
  out[#out + 1] = m
  out[#out + 1] = token
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return { out, nxt[2] or false, tostring(now) }
`;

/**
 * Removes a claimed deadline if the claim is still ours (token matches).
 * KEYS: 1 deadlines, 2 claims. ARGV: 1 member, 2 token. Returns 1 if removed, 0 if stale.
 */
export const DEADLINE_DONE = `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;
