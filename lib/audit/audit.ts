/**
 * The invariant audit (issue "faults", item 1): reads a call center's state in Redis and lists
 * every broken invariant, each with its key and a plain explanation. Read-only; the repairs
 * are in ./repair.ts. Kinds:
 *
 * - `ready_set`: an agent Ready in a queue but missing from its Ready set, or in the set while
 *   not Ready (the ACD would skip or offer it wrongly);
 * - `unguarded_call`: an agent on Queue Call / Other Call whose call no live instance guards
 *   (nobody would ever end it: the agent is stuck);
 * - `reservation_without_lease`: a reservation key without an expiry (it would hold the agent forever);
 * - `task_dead_owner`: a waiting (or offered) queue task whose owning instance is gone (nobody
 *   holds the caller's call, yet the task holds its place in the queue);
 * - `conversation_dead_owner`: a live conversation whose owning instance is gone;
 * - `stale_leg`: an agent's list of conversations names one that is no longer active (the
 *   agent's views would show a leg that does not exist);
 * - `sequence_behind`: an event or operation-log counter behind its stream;
 * - `registration_expired`: a binding past its expiry that no sweep removed;
 * - `ready_index`: a queue's Ready indexes (lib/acd/readyIndex.ts) disagreeing with its Ready
 *   set, the agents' counters or the config (an agent missing, a stale score, a member for an
 *   agent that is not Ready): the ACD would order or skip agents wrongly.
 *
 * An instance counts as alive while its presence key exists (renewed every command-bus beat)
 * or its call guard's liveness deadline is still in the future: a dead instance is one whose
 * both signals are gone, i.e. after the guard time, when the guard itself would have acted.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig } from '../config/schema';
import { agentField, callGuardMember, type CallCenterKeys } from '../store/keys';
import { agentIndexSpec, parseReadyMember, readyMember } from '../acd/readyIndex';

/** One broken invariant. */
export interface AuditFinding {
  kind: AuditKind;
  key: string;
  explanation: string;
  /** What the finding is about, for the repair (and for people filtering the list). */
  agent?: string;
  queue?: string;
  call?: string;
  task?: string;
  conversation?: string;
  /** For `ready_index`: a member of the index `key` that belongs to no Ready agent's record. */
  member?: string;
}

/** The kinds of broken invariants, in the order repairs apply them. */
export const AUDIT_KINDS = ['unguarded_call', 'task_dead_owner', 'conversation_dead_owner', 'stale_leg', 'reservation_without_lease', 'ready_set', 'ready_index', 'sequence_behind', 'registration_expired'] as const;
/** One kind of broken invariant. */
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** How long a binding may stay past its expiry before it counts (the sweep runs on a timer). */
const SWEEP_GRACE_MS = 10_000;

/** Lists every key matching `pattern` (SCAN, never KEYS). */
async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}

/** Audits call center `cc`; `now` is the Redis clock (ms). */
export async function audit(redis: Redis, keys: CallCenterKeys, cc: CallCenterConfig): Promise<AuditFinding[]> {
  const findings: AuditFinding[] = [];
  const [sec, micro] = await redis.time();
  const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);

  const guardDue = async (incarnation: string): Promise<number> => Number((await redis.zscore(keys.deadlines, callGuardMember(incarnation))) ?? -1);
  const alive = new Map<string, boolean>();
  const isAlive = async (incarnation: string): Promise<boolean> => {
    let v = alive.get(incarnation);
    if (v === undefined) alive.set(incarnation, (v = (await redis.exists(keys.presence(incarnation))) === 1 || (await guardDue(incarnation)) >= now));
    return v;
  };

  // Calls guarded by live instances: a guard hash counts while its liveness deadline is due in the future.
  const guarded = new Set<string>();
  const guardPrefix = keys.callGuard('x').slice(0, -1);
  for (const key of await scanKeys(redis, `${guardPrefix}*`)) {
    if ((await guardDue(key.slice(guardPrefix.length))) < now) continue;
    for (const callId of await redis.hkeys(key)) guarded.add(callId);
  }

  /** Index records (`<member> <spec>`) of Ready agents, by `<queue>|<agent>`, to check index members against. */
  const records = new Map<string, string>();
  for (const [agentId, agent] of Object.entries(cc.agents)) {
    const h = await redis.hgetall(keys.agent(agentId));
    for (const q of Object.keys(agent.queues)) {
      const state = h[agentField.state(q)] ?? 'logged_out';
      const readyScore = await redis.zscore(keys.queueReady(q), agentId);
      const inSet = readyScore !== null;
      const record = h[agentField.idx(q)] ?? '';
      if (state === 'ready' && inSet) {
        records.set(`${q}|${agentId}`, record);
        const why = await indexProblem(redis, keys, q, agentId, Number(readyScore), record, agentIndexSpec(cc, agentId, q));
        if (why !== undefined) findings.push({ kind: 'ready_index', key: keys.agent(agentId), agent: agentId, queue: q, explanation: `agent ${agentId} is Ready in queue ${q} but ${why}: the ACD would order it wrongly` });
      } else if (state !== 'ready' && !inSet && record !== '') {
        findings.push({ kind: 'ready_index', key: keys.agent(agentId), agent: agentId, queue: q, explanation: `agent ${agentId} is ${state} in queue ${q} but still has Ready-index entries (${record.split(' ').slice(1).join(', ')}): the ACD may offer it a call` });
      }
      if ((state === 'ready') !== inSet)
        findings.push({ kind: 'ready_set', key: keys.queueReady(q), agent: agentId, queue: q, explanation: state === 'ready' ? `agent ${agentId} is Ready in queue ${q} but not in its Ready set: the ACD never offers it calls` : `agent ${agentId} is in queue ${q}'s Ready set while ${state}: the ACD may offer it a call` });
      const call = h[agentField.call(q)] ?? '';
      if ((state === 'queue_call' || state === 'other_call') && call !== '' && !guarded.has(call))
        findings.push({ kind: 'unguarded_call', key: keys.agent(agentId), agent: agentId, queue: q, call, explanation: `agent ${agentId} is ${state} in queue ${q} on call ${call}, which no live instance guards: nobody will end it` });
    }
    const resv = keys.reservation(agentId);
    if ((await redis.pttl(resv)) === -1) findings.push({ kind: 'reservation_without_lease', key: resv, agent: agentId, explanation: `agent ${agentId}'s reservation has no lease (no expiry): it would hold the agent forever` });
    const expired = await redis.zrangebyscore(keys.registrationExpiry(agentId), '-inf', now - SWEEP_GRACE_MS);
    if (expired.length > 0) findings.push({ kind: 'registration_expired', key: keys.registrations(agentId), agent: agentId, explanation: `agent ${agentId} has ${expired.length} binding(s) past their expiry that no sweep removed` });
    for (const id of await redis.smembers(keys.agentConvs(agentId))) {
      if ((await redis.hget(keys.conv(id), 'state')) !== 'active')
        findings.push({ kind: 'stale_leg', key: keys.agentConvs(agentId), agent: agentId, conversation: id, explanation: `agent ${agentId}'s conversations still name ${id}, which is no longer active: the agent would show a leg that does not exist` });
    }
  }

  for (const q of Object.keys(cc.queues)) {
    // Index members nobody's record accounts for (left by a crash of a script in between, or by hand).
    const ready = keys.queueReady(q);
    for (const key of await scanKeys(redis, `${ready}:*`)) {
      const index = key.slice(ready.length + 1);
      for (const member of await redis.zrange(key, 0, -1)) {
        const m = parseReadyMember(member);
        const record = m === undefined ? undefined : records.get(`${q}|${m.id}`);
        if (m !== undefined && record !== undefined && record.startsWith(`${member} `) && specHas(record, index)) continue;
        findings.push({ kind: 'ready_index', key, queue: q, member, ...(m === undefined ? {} : { agent: m.id }), explanation: `queue ${q}'s ${index} index holds ${member}, which is no Ready agent's entry: the ACD may offer a call to an agent that is not Ready, or in the wrong order` });
      }
    }
    for (const id of await redis.zrange(keys.queueTasks(q), 0, -1)) {
      const [owner, caller] = await redis.hmget(keys.task(id), 'owner', 'caller');
      if (owner === null || owner === undefined || (await isAlive(owner))) continue;
      findings.push({ kind: 'task_dead_owner', key: keys.task(id), queue: q, task: id, explanation: `caller ${caller ?? '?'} (task ${id}) waits in queue ${q}, but its owner ${owner} is gone: nobody holds the call, yet it keeps its place in the queue` });
    }
  }

  for (const id of await redis.zrange(keys.convs, 0, -1)) {
    const [state, owner] = await redis.hmget(keys.conv(id), 'state', 'owner');
    if (state !== 'active' || owner === null || owner === undefined) continue;
    if (!(await isAlive(owner)))
      findings.push({ kind: 'conversation_dead_owner', key: keys.conv(id), conversation: id, explanation: `conversation ${id} is active but its owner ${owner} is gone: its legs will never be released by it` });
  }

  for (const [stream, counter, what] of [
    [keys.events, keys.eventSeq, 'event'],
    [keys.oplog, keys.oplogSeq, 'operation-log'],
  ] as const) {
    const top = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
    const last = top[0] === undefined ? 0 : Number(top[0][0].split('-')[0]);
    const seq = Number((await redis.get(counter)) ?? 0);
    if (seq < last) findings.push({ kind: 'sequence_behind', key: counter, explanation: `the ${what} counter is ${seq}, behind its stream's last entry ${last}: the next append would be refused` });
  }
  return findings;
}

/** Whether an index record's spec names `index` (`calls`, `talk`, `skill:<name>`). */
function specHas(record: string, index: string): boolean {
  return record
    .split(' ')
    .slice(1)
    .some((t) => t === index || (index.startsWith('skill:') && t.startsWith(`${index}:`)));
}

/**
 * What is wrong with a Ready agent's index entries in queue `q`, or undefined: the record
 * must match the spec the config gives now and the agent's Ready score, and every index it
 * names must hold the member with the right score (calls, talk ms, minus the level).
 */
async function indexProblem(redis: Redis, keys: CallCenterKeys, q: string, agent: string, readySince: number, record: string, spec: string): Promise<string | undefined> {
  if (record === '') return spec === '' ? undefined : `is in none of its indexes (${spec})`;
  const member = readyMember(readySince, agent);
  const [recMember, ...tokens] = record.split(' ');
  if (recMember !== member) return `its index entries are for another Ready time (${recMember ?? ''}, not ${member})`;
  if (tokens.join(' ') !== spec) return `its index entries (${tokens.join(' ')}) are not the ones its config gives (${spec || 'none'})`;
  const stats = await redis.hmget(keys.agentQueueStats(agent, q), 'calls', 'talkMs');
  for (const t of tokens) {
    const skill = /^skill:([^:]+):(\d+)$/.exec(t);
    const index = skill === null ? t : `skill:${skill[1]!}`;
    const want = t === 'calls' ? Number(stats[0] ?? 0) : t === 'talk' ? Number(stats[1] ?? 0) : -Number(skill?.[2] ?? 0);
    const got = await redis.zscore(keys.queueReadyIndex(q, index), member);
    if (got === null) return `is missing from its ${index} index`;
    if (Number(got) !== want) return `has ${got} in its ${index} index instead of ${want}`;
  }
  return undefined;
}
