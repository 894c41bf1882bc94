/**
 * The event-stream snapshot (DESIGN.md section 7): what a subscriber sees first, read in one
 * script together with the event sequence number it is consistent with. Every change writes
 * its event in the same script as the change, so nothing can happen between the read of the
 * state and the read of the sequence: an event with a higher sequence is not in the snapshot,
 * one with a lower or equal sequence is.
 *
 * Task hashes and conversation legs are found through the tasks ZSET and the agent's
 * conversation set, so their keys are built here from the call center's key prefix. They carry
 * the call center's hash tag like every declared key, so the script still touches one slot
 * (Redis Cluster runs it on the node of that slot).
 */

/**
 * KEYS: 1 event seq, 2 deadlines, then 2 per queue (tasks zset, stats hash), then 3 per agent
 * (agent hash, reservation, agent conversations set), then 2 per conversation (hash, legs hash).
 * ARGV: 1 task key prefix, 2 conversation key prefix, 3 queues n, 4 agents n, 5 conversations n,
 * 6 most callers per queue, then the queue ids, then per agent `<id>|<q1>,<q2>...`, then the
 * conversation ids.
 * Returns JSON {seq, now, queues: {q: {total, tasks: [[id, caller, priority, state, enqueuedAt]],
 * stats: {field: value}}}, agents: {id: {hash, wrap: {q: due}, resv, convs: [{id, state, legs}]}},
 * convs: {id: {hash, legs}}}.
 */
export const SNAPSHOT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local taskPrefix, convPrefix = ARGV[1], ARGV[2]
local nq, na, nc, maxCallers = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function hash(flat)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
local out = { seq = seq, now = now, queues = {}, agents = {}, convs = {} }
local k = 3
local a = 7
for i = 1, nq do
  local q = ARGV[a]
  a = a + 1
  local ids = redis.call('ZRANGE', KEYS[k], 0, maxCallers - 1)
  local tasks = {}
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', taskPrefix .. id, 'caller', 'priority', 'state', 'enqueuedAt')
    if f[3] then tasks[#tasks + 1] = { id, f[1] or '', f[2] or '0', f[3], f[4] or '0' } end
  end
  out.queues[q] = { total = redis.call('ZCARD', KEYS[k]), tasks = tasks, stats = hash(redis.call('HGETALL', KEYS[k + 1])) }
  k = k + 2
end
for i = 1, na do
  local spec = ARGV[a]
  a = a + 1
  local bar = string.find(spec, '|', 1, true)
  local id, queues = string.sub(spec, 1, bar - 1), string.sub(spec, bar + 1)
  local wrap = {}
  for q in string.gmatch(queues, '[^,]+') do
    local due = redis.call('ZSCORE', KEYS[2], 'wrapup|' .. id .. '|' .. q)
    if due then wrap[q] = due end
  end
  local convs = {}
  for _, cid in ipairs(redis.call('SMEMBERS', KEYS[k + 2])) do
    convs[#convs + 1] = { id = cid, state = redis.call('HGET', convPrefix .. cid, 'state') or '', legs = redis.call('HVALS', convPrefix .. cid .. ':legs') }
  end
  out.agents[id] = { hash = hash(redis.call('HGETALL', KEYS[k])), wrap = wrap, resv = redis.call('GET', KEYS[k + 1]) or '', convs = convs }
  k = k + 3
end
for i = 1, nc do
  local id = ARGV[a]
  a = a + 1
  out.convs[id] = { hash = hash(redis.call('HGETALL', KEYS[k])), legs = redis.call('HVALS', KEYS[k + 1]) }
  k = k + 2
end
return cjson.encode(out)
`;
