/**
 * The invariant audit (issue "faults", item 1): reads a call center's state in Redis and lists
 * every broken invariant, each with its key and a plain explanation. Read-only; repairs are
 * the guard's and the scripts' endings (a later step). Kinds found so far:
 *
 * - `ready_set`: an agent Ready in a queue but missing from its Ready set, or in the set while
 *   not Ready (the ACD would skip or offer it wrongly);
 * - `unguarded_call`: an agent on Queue Call / Other Call whose call no live instance guards
 *   (nobody would ever end it: the agent is stuck);
 * - `reservation_without_lease`: a reservation key without an expiry (it would hold the agent forever);
 * - `conversation_dead_owner`: a live conversation whose owning instance is gone;
 * - `sequence_behind`: an event or operation-log counter behind its stream;
 * - `registration_expired`: a binding past its expiry that no sweep removed.
 */
import type { Redis } from 'ioredis';
import type { CallCenterConfig } from '../config/schema';
import { agentField, callGuardMember, type CallCenterKeys } from '../store/keys';

/** One broken invariant. */
export interface AuditFinding {
  kind: 'ready_set' | 'unguarded_call' | 'reservation_without_lease' | 'conversation_dead_owner' | 'sequence_behind' | 'registration_expired';
  key: string;
  explanation: string;
}

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

  // Calls guarded by live instances: a guard hash counts while its liveness deadline is due in the future.
  const guarded = new Set<string>();
  const guardPrefix = keys.callGuard('x').slice(0, -1);
  for (const key of await scanKeys(redis, `${guardPrefix}*`)) {
    const incarnation = key.slice(guardPrefix.length);
    const due = await redis.zscore(keys.deadlines, callGuardMember(incarnation));
    if (due === null || Number(due) < now) continue;
    for (const callId of await redis.hkeys(key)) guarded.add(callId);
  }

  for (const [agentId, agent] of Object.entries(cc.agents)) {
    const h = await redis.hgetall(keys.agent(agentId));
    for (const q of Object.keys(agent.queues)) {
      const state = h[agentField.state(q)] ?? 'logged_out';
      const inSet = (await redis.zscore(keys.queueReady(q), agentId)) !== null;
      if ((state === 'ready') !== inSet)
        findings.push({ kind: 'ready_set', key: keys.queueReady(q), explanation: state === 'ready' ? `agent ${agentId} is Ready in queue ${q} but not in its Ready set: the ACD never offers it calls` : `agent ${agentId} is in queue ${q}'s Ready set while ${state}: the ACD may offer it a call` });
      const call = h[agentField.call(q)] ?? '';
      if ((state === 'queue_call' || state === 'other_call') && call !== '' && !guarded.has(call))
        findings.push({ kind: 'unguarded_call', key: keys.agent(agentId), explanation: `agent ${agentId} is ${state} in queue ${q} on call ${call}, which no live instance guards: nobody will end it` });
    }
    const resv = keys.reservation(agentId);
    if ((await redis.pttl(resv)) === -1) findings.push({ kind: 'reservation_without_lease', key: resv, explanation: `agent ${agentId}'s reservation has no lease (no expiry): it would hold the agent forever` });
    const expired = await redis.zrangebyscore(keys.registrationExpiry(agentId), '-inf', now - SWEEP_GRACE_MS);
    if (expired.length > 0) findings.push({ kind: 'registration_expired', key: keys.registrations(agentId), explanation: `agent ${agentId} has ${expired.length} binding(s) past their expiry that no sweep removed` });
  }

  for (const id of await redis.zrange(keys.convs, 0, -1)) {
    const [state, owner] = await redis.hmget(keys.conv(id), 'state', 'owner');
    if (state !== 'active' || owner === null || owner === undefined) continue;
    if ((await redis.exists(keys.presence(owner))) === 0)
      findings.push({ kind: 'conversation_dead_owner', key: keys.conv(id), explanation: `conversation ${id} is active but its owner ${owner} is gone: its legs will never be released by it` });
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
