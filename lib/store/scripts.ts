/**
 * Lua scripts, registered with ioredis `defineCommand` so a `NOSCRIPT` after a Redis
 * restart is answered by re-sending the body (DESIGN.md section 6). Every change that
 * touches more than one key, or reads then writes, is one of these scripts.
 *
 * All times come from Redis `TIME` (milliseconds), never from the host clock, so several
 * instances on hosts with skewed clocks agree on deadlines.
 */
import { TRANSITIONS, type Rule } from '../agent/stateMachine';
import { OP_FOR_EVENT, OP_FOR_STATE } from '../oplog';
import { READY_INDEX_LUA } from './readyIndexLua';

/**
 * Shared Lua helpers: the Redis clock in milliseconds, as a number (`nowMs()`) and as a string
 * (`nowStr()`), read once per script. Uses the TIME the write fence read, if it did
 * (lib/store/redis.ts FENCE_LUA, prepended to every script). The string is built from TIME's
 * own digits: a Lua number turned into a string (a concatenation, a command argument) goes
 * through C's float formatting, which was a tenth of a state change's time in Redis.
 */
export const PRELUDE = `
local __ccsNowS = nil
local function nowStr()
  if __ccsNowS == nil then
    local t = __ccsT or redis.call('TIME')
    __ccsNowS = t[1] .. string.sub('00000' .. t[2], -6, -4)
  end
  return __ccsNowS
end
local function nowMs()
  return tonumber(nowStr())
end
`;

/**
 * Shared Lua helper: appends one operation-log entry as a single field `o` =
 * `ts|agent|queue|op|object|reason|state|instance|conversation|by` (lib/events.ts parses it).
 * One field instead of ten pairs: Lua's argument conversion of a 21-argument XADD was most of
 * a state change's cost. Every part but the last is an id, an enum or a number, none with a
 * `|`; `by` (a supervisor id or a token's name) comes last, so it may hold anything.
 */
export const OPLOG_ADD = `
local function oplogAdd(key, maxLen, seq, ts, agent, queue, op, object, reason, state, instance, conversation, by)
  redis.call('XADD', key, 'MAXLEN', '~', maxLen, string.format('%d-0', seq), 'o',
    ts .. '|' .. agent .. '|' .. queue .. '|' .. op .. '|' .. object .. '|' .. reason .. '|' .. state .. '|' .. instance .. '|' .. conversation .. '|' .. by)
end
`;

const luaStr = (s: string): string => `'${s.replace(/[^A-Za-z0-9_@.-]/g, '')}'`;

/**
 * The transition table compiled to Lua branches: `rule(from, ev)` returns kind, target and
 * remember flag, or nil when the move is illegal. Generated from {@link TRANSITIONS} so the
 * two cannot drift; branches rather than a table literal because a script's tables are built
 * anew on every call, and building 48 cells cost a third of the script's time.
 */
function compileRules(): string {
  const lines = ['local function rule(from, ev)'];
  for (const [from, row] of Object.entries(TRANSITIONS)) {
    lines.push(`  if from == ${luaStr(from)} then`);
    for (const [ev, r] of Object.entries(row as Record<string, Rule>)) {
      const ret = r.kind === 'move' ? `'move', ${luaStr(r.to)}, ${r.remember === true}` : `${luaStr(r.kind)}, nil, false`;
      lines.push(`    if ev == ${luaStr(ev)} then return ${ret} end`);
    }
    lines.push('    return nil', '  end');
  }
  lines.push('  return nil', 'end');
  return lines.join('\n');
}

/** Operation codes compiled to Lua (as strings): by event first (sign-in), then by the state reached. */
function compileOps(): string {
  const lines = ['local function opFor(ev, to)'];
  // Strings, not numbers: they are only ever concatenated into the log entry and the event.
  for (const [ev, op] of Object.entries(OP_FOR_EVENT)) lines.push(`  if ev == ${luaStr(ev)} then return '${op}' end`);
  for (const [st, op] of Object.entries(OP_FOR_STATE)) lines.push(`  if to == ${luaStr(st)} then return '${op}' end`);
  lines.push("  return '-1'", 'end');
  return lines.join('\n');
}

/** Number of ARGV entries before the per-queue items of {@link AGENT_APPLY}. */
export const APPLY_FIXED_ARGS = 11;
/** ARGV entries per queue item of {@link AGENT_APPLY}. */
export const APPLY_ITEM_ARGS = 6;

/**
 * Applies one agent event to one or more queues, atomically: checks the transition table,
 * writes the per-queue state, keeps the Ready ZSET and the wrap-up deadline in step, and
 * appends one operation-log entry and one event per changed queue.
 *
 * KEYS: 1 agent hash, 2 deadlines, 3 deadline claims, 4 events, 5 event seq, 6 oplog,
 *       7 oplog seq, 8.. the Ready ZSET of each item's queue, in item order.
 * ARGV: 1 agent, 2 mode 'strict'|'lenient', 3 reason, 4 call id, 5 claim token, 6 instance,
 *       7 events max length, 8 oplog max length, 9 forced op ('' unless a supervisor forces
 *       the change: 29 / 30 / 31), 10 the forced entry's object (the supervisor's number, or
 *       -1), 11 who forced it (supervisor id or token name; '' for none), then per item: queue,
 *       event, autoReady '1'|'0', wrap-up ms, op override ('' for none), the Ready-index spec
 *       of the agent in that queue (lib/acd/readyIndex.ts; '' for none).
 * A forced move writes two log entries per queue: the supervisor's (forced op, the supervisor
 * as object) and the agent's own (op 0 reason 257, op 2, op 3 reason 3), and its event says `by`.
 * Returns {0, queue, from, event} for an illegal move, with nothing written; else
 * {1, nSeqs, seq..., then per item: queue, from, to, changed '1'|'0', skipped ''|code}.
 *
 * Stream entries are appended before any state is written: an XADD refused because a
 * sequence counter fell behind its stream (see {@link REPAIR_SEQ}) aborts the script with
 * no state change.
 */
export const AGENT_APPLY = `${PRELUDE}${OPLOG_ADD}${READY_INDEX_LUA}
${compileRules()}
${compileOps()}
local akey, dkey, ckey = KEYS[1], KEYS[2], KEYS[3]
local agent, mode, reqReason, callId, token, instance = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local forcedOp, forcedObject, forcedBy = ARGV[9], ARGV[10], ARGV[11]
-- The clock as a string for every argument and log field, as a number only for arithmetic.
local nowS = nowStr()
local now = tonumber(nowS)

local function resolve(to, auto, wrapMs, remembered)
  if to == '@auto' then return auto end
  if to == '@after_call' then
    if wrapMs > 0 then return 'wrap_up' end
    return auto
  end
  if to == '@remembered' then return remembered or auto end
  return to
end

-- Pass 1: read and decide; nothing is written until every item is known to be legal.
local plans = {}
local anyLegal, firstIllegal = false, nil
local n = (#ARGV - ${APPLY_FIXED_ARGS}) / ${APPLY_ITEM_ARGS}
for i = 1, n do
  local b = ${APPLY_FIXED_ARGS} + (i - 1) * ${APPLY_ITEM_ARGS}
  local q, ev, wrapMs = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 4])
  local auto = 'not_ready'
  if ARGV[b + 3] == '1' then auto = 'ready' end
  local pre = 'q:' .. q .. ':'
  -- Field names built once per item, for the read here and the write in pass 3.
  local fState, fReason, fPrev, fPrevReason, fCall, fIdx = pre .. 'state', pre .. 'reason', pre .. 'prev', pre .. 'prevReason', pre .. 'call', pre .. 'idx'
  local cur = redis.call('HMGET', akey, fState, fReason, fPrev, fPrevReason, fCall, fIdx)
  local from = cur[1] or 'logged_out'
  local curReason = cur[2] or ''
  local wmember = 'wrapup|' .. agent .. '|' .. q
  local p = { q = q, ev = ev, wrapMs = wrapMs, op = ARGV[b + 5], from = from, curReason = curReason, wmember = wmember, rkey = KEYS[7 + i], spec = ARGV[b + 6], idx = cur[6],
    fState = fState, fSince = pre .. 'since', fReason = fReason, fPrev = fPrev, fPrevReason = fPrevReason, fCall = fCall, fIdx = fIdx,
    kind = false, to = false, reason = false, remember = false, remembered = false }
  plans[i] = p
  local kind, target, remember = rule(from, ev)
  if kind == nil then
    p.kind = 'illegal'
    if firstIllegal == nil then firstIllegal = p end
  else
    anyLegal = true
    if ev == 'wrap_up_expired' and redis.call('HGET', ckey, wmember) ~= token then
      p.kind = 'noop' -- stale timer: the wrap-up it belonged to is over or was re-armed
    elseif ev == 'call_ended' and callId ~= '' and (cur[5] or '') ~= callId then
      p.kind = 'noop' -- not the call that made this queue busy
    elseif kind == 'ignore' then
      p.kind = 'noop'
    elseif kind == 'remember_auto' then
      if cur[3] == 'wrap_up' then
        p.kind = 'remember'
        p.remembered = auto
      else
        p.kind = 'noop'
      end
    else
      local remembered = cur[3]
      if remembered == false or remembered == '' then remembered = nil end
      local rememberedReason = cur[4] or ''
      if target == '@remembered' and remembered == 'wrap_up' and redis.call('ZSCORE', dkey, wmember) == false then
        remembered = auto -- the wrap-up timer ran out meanwhile
        rememberedReason = ''
      end
      local to = resolve(target, auto, wrapMs, remembered)
      local reason = ''
      if to == 'not_ready' then
        if ev == 'not_ready' then reason = reqReason
        elseif target == '@remembered' then reason = rememberedReason end
      elseif to == 'logged_out' then reason = reqReason
      elseif to == 'wrap_up' then reason = '0' end
      if to == from and (to ~= 'not_ready' or reason == curReason) then
        p.kind = 'noop'
      else
        p.kind = 'move'
        p.to = to
        p.reason = reason
        p.remember = remember
      end
    end
  end
end

if firstIllegal ~= nil and (mode == 'strict' or not anyLegal) then
  return { 0, firstIllegal.q, firstIllegal.from, firstIllegal.ev }
end

-- Pass 2: append the log entries and events (the only writes that can be refused).
local seqs = {}
for _, p in ipairs(plans) do
  if p.kind == 'move' then
    local to = p.to
    local op = opFor(p.ev, to)
    if (to == 'other_call' or to == 'queue_call') and p.op ~= '' then op = p.op end
    -- Reasons are canonical integer strings (the engine's String(n), or '0').
    local logReason = '-1'
    local evReason = 'null'
    if p.reason ~= '' then
      logReason = p.reason
      evReason = p.reason
    end
    local by = ''
    if forcedOp ~= '' then
      local fSeq = redis.call('INCR', KEYS[7])
      oplogAdd(KEYS[6], ARGV[8], fSeq, nowS, agent, p.q, forcedOp, forcedObject, '-1', to, instance, '', forcedBy)
      by = string.format(',"by":"%s"', forcedBy)
    end
    local opSeq = redis.call('INCR', KEYS[7])
    oplogAdd(KEYS[6], ARGV[8], opSeq, nowS, agent, p.q, op, '-1', logReason, to, instance, '', '')
    local seq = redis.call('INCR', KEYS[5])
    -- Every value is a schema-checked id ([A-Za-z0-9_.@-]) or an integer, so formatting the
    -- JSON directly is safe, and much cheaper than building a table for cjson.encode.
    local data = string.format('{"agent":"%s","queue":"%s","state":"%s","prev":"%s","reason":%s,"op":%s,"oplog":%d,"instance":"%s"%s}',
      agent, p.q, to, p.from, evReason, op, opSeq, instance, by)
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[7], string.format('%d-0', seq), 'type', 'agent.state', 'ts', nowS, 'data', data)
    seqs[#seqs + 1] = seq
  end
end

-- Pass 3: write the state.
local out = { 1, #seqs }
for _, s in ipairs(seqs) do out[#out + 1] = s end
for _, p in ipairs(plans) do
  local to = p.from
  if p.kind == 'move' then
    to = p.to
    -- One HSET per move: fields that no longer apply are written empty ('' reads as absent).
    if p.remember then
      -- Wrap-up timer: kept while an other call interrupts it (DESIGN.md 3: "wrap_up continues its timer").
      redis.call('HSET', akey, p.fState, to, p.fSince, nowS, p.fReason, p.reason,
        p.fPrev, p.from, p.fPrevReason, p.curReason, p.fCall, callId)
    else
      local call = ''
      if to == 'queue_call' then call = callId end
      redis.call('HSET', akey, p.fState, to, p.fSince, nowS, p.fReason, p.reason,
        p.fPrev, '', p.fPrevReason, '', p.fCall, call)
      if to == 'wrap_up' then
        if p.from ~= 'other_call' then -- armed on entering wrap-up from a call
          redis.call('ZADD', dkey, now + p.wrapMs, p.wmember)
          redis.call('HDEL', ckey, p.wmember)
        end
      elseif p.from == 'wrap_up' or p.from == 'other_call' then
        redis.call('ZREM', dkey, p.wmember)
        redis.call('HDEL', ckey, p.wmember)
      end
    end
    -- The Ready indexes move with the Ready ZSET, in this script (lib/acd/readyIndex.ts).
    if to == 'ready' then
      redis.call('ZADD', p.rkey, nowS, agent)
      idxRemove(p.rkey, p.idx)
      local rec = idxAdd(p.rkey, agent, idxMember(now, agent), p.spec)
      if rec ~= '' or (p.idx or '') ~= '' then redis.call('HSET', akey, p.fIdx, rec) end
    elseif p.from == 'ready' then
      redis.call('ZREM', p.rkey, agent)
      if (p.idx or '') ~= '' then
        idxRemove(p.rkey, p.idx)
        redis.call('HSET', akey, p.fIdx, '')
      end
    end
  elseif p.kind == 'remember' then
    redis.call('HSET', akey, p.fPrev, p.remembered, p.fPrevReason, '')
    redis.call('ZREM', dkey, p.wmember)
    redis.call('HDEL', ckey, p.wmember)
  end
  local changed = '0'
  if p.kind == 'move' then changed = '1' end
  local skipped = ''
  if p.kind == 'illegal' then skipped = 'illegal_transition' end
  out[#out + 1] = p.q
  out[#out + 1] = p.from
  out[#out + 1] = to
  out[#out + 1] = changed
  out[#out + 1] = skipped
end
return out
`;

/**
 * Brings a sequence counter back in front of its stream, for the rare case where the counter
 * was lost (evicted, deleted by hand) while the stream survived: the engine runs this and
 * retries when XADD refuses an id. Kept out of {@link AGENT_APPLY} so the common path does
 * not pay a stream read per event.
 * KEYS: 1 stream, 2 counter, 3 stream, 4 counter ... (pairs). Returns the number fixed.
 */
export const REPAIR_SEQ = `
local fixed = 0
for i = 1, #KEYS, 2 do
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if last[1] then
    local lastSeq = tonumber(string.match(last[1][1], '^(%d+)'))
    local cur = tonumber(redis.call('GET', KEYS[i + 1]) or '0')
    if cur < lastSeq then
      redis.call('SET', KEYS[i + 1], lastSeq)
      fixed = fixed + 1
    end
  end
end
return fixed
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

/**
 * Arms (or re-arms) a deadline ARGV[2] ms from Redis's clock; a claim of an earlier arming is
 * forgotten, so its claimer cannot remove the new one.
 * KEYS: 1 deadlines, 2 claims. ARGV: 1 member, 2 ms. Returns the due time (ms).
 */
export const DEADLINE_SET = `${PRELUDE}
local due = nowMs() + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], due, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return due
`;

/**
 * Disarms a deadline, claimed or not. KEYS: 1 deadlines, 2 claims. ARGV: 1 member.
 * Returns 1 if it was armed.
 */
export const DEADLINE_CLEAR = `
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
`;

/** Lua: drop an agent's expired bindings and re-arm (or clear) its expiry deadline (also used by the audit repair). */
export const REG_PURGE = `
local function purgeAndArm(regKey, expKey, dkey, ckey, member, now)
  local gone = redis.call('ZRANGEBYSCORE', expKey, '-inf', now)
  for _, c in ipairs(gone) do redis.call('HDEL', regKey, c) end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', expKey, '-inf', now) end
  local nxt = redis.call('ZRANGE', expKey, 0, 0, 'WITHSCORES')
  if nxt[2] then
    redis.call('ZADD', dkey, nxt[2], member)
  else
    redis.call('ZREM', dkey, member)
  end
  redis.call('HDEL', ckey, member)
  return #gone
end
`;

/**
 * Applies one REGISTER to an agent's bindings (RFC 3261 section 10.3), atomically: drops
 * expired bindings, refuses an out-of-order request (same Call-ID, CSeq not higher) and
 * more than `maxContacts` bindings, adds/refreshes/removes the contacts, and arms the
 * expiry deadline at the earliest remaining expiry.
 *
 * KEYS: 1 bindings hash, 2 expiry zset, 3 deadlines, 4 deadline claims.
 * ARGV: 1 deadline member, 2 Call-ID, 3 CSeq, 4 max contacts, 5 '1' to remove all (Contact: *),
 *       then per contact: URI, expires (s), binding JSON.
 * Returns {'ok', uri1, json1, remainingMs1, ...} or {'out_of_order'} / {'too_many', n}.
 */
export const REGISTER_APPLY = `${PRELUDE}${REG_PURGE}
local regKey, expKey, dkey, ckey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local member, callId, cseq, maxContacts = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local now = nowMs()
purgeAndArm(regKey, expKey, dkey, ckey, member, now)
if ARGV[5] == '1' then
  redis.call('DEL', regKey, expKey)
else
  -- Pass 1: checks, nothing written.
  local count = redis.call('HLEN', regKey)
  for i = 6, #ARGV, 3 do
    local uri, expires = ARGV[i], tonumber(ARGV[i + 1])
    local cur = redis.call('HGET', regKey, uri)
    if cur then
      local b = cjson.decode(cur)
      if b.callId == callId and tonumber(b.cseq) >= cseq then return { 'out_of_order' } end
      if expires == 0 then count = count - 1 end
    elseif expires > 0 then
      count = count + 1
    end
  end
  if count > maxContacts then return { 'too_many', count } end
  -- Pass 2: write.
  for i = 6, #ARGV, 3 do
    local uri, expires = ARGV[i], tonumber(ARGV[i + 1])
    if expires == 0 then
      redis.call('HDEL', regKey, uri)
      redis.call('ZREM', expKey, uri)
    else
      redis.call('HSET', regKey, uri, ARGV[i + 2])
      redis.call('ZADD', expKey, now + expires * 1000, uri)
    end
  end
end
purgeAndArm(regKey, expKey, dkey, ckey, member, now)
local out = { 'ok' }
local all = redis.call('ZRANGE', expKey, 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = redis.call('HGET', regKey, all[i])
  out[#out + 1] = tostring(tonumber(all[i + 1]) - now)
end
return out
`;

/**
 * Registration expiry sweep, run by the deadline worker for a claimed `regexp|<agent>`:
 * removes expired bindings and re-arms the deadline, if the claim is still ours.
 * KEYS: 1 bindings hash, 2 expiry zset, 3 deadlines, 4 claims. ARGV: 1 member, 2 token.
 * Returns the number of bindings removed, or -1 for a stale claim.
 */
export const REGISTER_SWEEP = `${PRELUDE}${REG_PURGE}
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return -1 end
return purgeAndArm(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], nowMs())
`;

/**
 * Digest replay guard: accepts nonce count ARGV[1] for a nonce only if it is higher than
 * every count accepted before (RFC 7616 3.4: nc increases with each request on a nonce), so a
 * captured Authorization header cannot be played again.
 * KEYS: 1 the nonce's guard key. ARGV: 1 nc, 2 guard lifetime (ms). Returns 1 accepted, 0 replay.
 */
export const NONCE_USE = `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/**
 * Call guard (crash safety of calls, see lib/calls/guard.ts): records a live call of this
 * process and makes sure the process's liveness deadline exists.
 * KEYS: 1 guard hash (call id -> agents), 2 deadlines. ARGV: 1 call id, 2 agents (comma
 * separated), 3 deadline member, 4 ttl ms.
 */
export const GUARD_TRACK = `${PRELUDE}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', nowMs() + tonumber(ARGV[4]), ARGV[3])
return 1
`;

/**
 * Call guard heartbeat: pushes the process's liveness deadline out by the ttl while it has
 * calls, and removes it (and the claim, if any) once it has none.
 * KEYS: 1 guard hash, 2 deadlines, 3 deadline claims. ARGV: 1 member, 2 ttl ms.
 * Returns the number of calls guarded.
 */
export const GUARD_BEAT = `${PRELUDE}
local n = redis.call('HLEN', KEYS[1])
if n > 0 then
  redis.call('ZADD', KEYS[2], nowMs() + tonumber(ARGV[2]), ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return n
`;

/**
 * One authentication failure of a source address (lib/security/failureLimiter.ts): INCR and,
 * for the window's first failure, its expiry — one script, so no counter is ever left without one.
 * KEYS: 1 counter. ARGV: 1 window ms. Returns the count in the window.
 */
export const AUTH_FAILURE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;
