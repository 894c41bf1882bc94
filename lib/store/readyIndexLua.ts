/**
 * Lua helpers that keep a queue's Ready indexes (lib/acd/readyIndex.ts) in step with its Ready
 * ZSET, included by every script that changes either. Index keys are derived from the Ready
 * ZSET's key (`<ready>:calls`, `<ready>:talk`, `<ready>:skill:<name>`) and the agent's queue
 * counters from its prefix (`<base>:queue:<q>:agent:<id>`), as lib/store/keys.ts names them:
 * which skill keys an agent needs is only known inside the script, and they share the call
 * center's hash slot.
 */
import { READY_MEMBER_DIGITS } from '../acd/readyIndex';

/**
 * `idxMember(now, agent)`; `idxAdd(rkey, agent, member, spec)` adds the agent to the indexes
 * its spec names and returns the record to keep in the agent hash (`''` for an empty spec);
 * `idxRemove(rkey, record)` removes what a record says was added; `idxScore(rkey, record,
 * index, score)` moves the agent's score in one index if it is in it.
 */
export const READY_INDEX_LUA = `
local function idxMember(readySince, agent)
  return string.format('%0${READY_MEMBER_DIGITS}d|%s', readySince, agent)
end
local function idxAdd(rkey, agent, member, spec)
  if spec == nil or spec == '' then return '' end
  local stats = nil
  for tok in string.gmatch(spec, '%S+') do
    if tok == 'calls' or tok == 'talk' then
      if stats == nil then
        stats = redis.call('HMGET', string.sub(rkey, 1, -7) .. ':agent:' .. agent, 'calls', 'talkMs')
      end
      local v = stats[2]
      if tok == 'calls' then v = stats[1] end
      redis.call('ZADD', rkey .. ':' .. tok, tonumber(v or '0') or 0, member)
    else
      local name, level = string.match(tok, '^skill:([A-Za-z0-9_.-]+):(%d+)$')
      if name then redis.call('ZADD', rkey .. ':skill:' .. name, -tonumber(level), member) end
    end
  end
  return member .. ' ' .. spec
end
local function idxRemove(rkey, record)
  if record == nil or record == false or record == '' then return end
  local member, spec = string.match(record, '^(%S+) (.*)$')
  if member == nil then return end
  for tok in string.gmatch(spec, '%S+') do
    if tok == 'calls' or tok == 'talk' then
      redis.call('ZREM', rkey .. ':' .. tok, member)
    else
      local name = string.match(tok, '^skill:([A-Za-z0-9_.-]+):')
      if name then redis.call('ZREM', rkey .. ':skill:' .. name, member) end
    end
  end
end
local function idxScore(rkey, record, index, score)
  if record == nil or record == false or record == '' then return end
  local member = string.match(record, '^(%S+) ')
  if member then redis.call('ZADD', rkey .. ':' .. index, 'XX', score, member) end
end
`;
