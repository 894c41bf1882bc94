/**
 * Repairs of the invariant audit (`--repair`): each broken invariant gets the ending the
 * normal path would have given it, through the same scripts, so the usual events and
 * operation-log entries are written — never a silent delete:
 *
 * - `unguarded_call`: the call ends for the agent (`callEnded`: Wrap Up / Ready / back to the
 *   remembered state, with its `agent.state` events), as the call guard does for a dead instance;
 * - `task_dead_owner`: the task ends with reason `closed` (a `queue.caller` event), as the guard does;
 * - `conversation_dead_owner`: the conversation ends (a `conversation` `ended` event);
 * - `stale_leg`: the ended conversation leaves the agent's list;
 * - `reservation_without_lease`: the reservation gets a lease and ends as every lease does;
 * - `ready_set`: the Ready set follows the agent's state (scored by when it became Ready);
 * - `ready_index`: the agent's Ready-index entries are rebuilt from its state and config, and a
 *   stray member is removed;
 * - `sequence_behind`: the counter is moved up to its stream's last entry;
 * - `registration_expired`: the expired bindings are dropped and the expiry deadline re-armed.
 *
 * Every repair re-checks its invariant atomically, so a repair racing the normal path changes
 * nothing; each one applied is logged at warn with its finding.
 */
import type { Redis } from 'ioredis';
import { agentIndexSpec } from '../acd/readyIndex';
import type { CallCenterConfig } from '../config/schema';
import type { TaskStore } from '../acd/taskStore';
import type { AgentEngine } from '../agent/engine';
import type { ConversationStore } from '../conversation/store';
import { IllegalTransitionError } from '../errors';
import type { Logger } from '../logger';
import { agentField, registrationMember, type CallCenterKeys } from '../store/keys';
import { AUDIT_KINDS, type AuditFinding } from './audit';

/** What a repair needs. */
export interface RepairDeps {
  redis: Redis;
  engine: Pick<AgentEngine, 'callEnded'>;
  tasks: Pick<TaskStore, 'end'>;
  conversations: Pick<ConversationStore, 'end'>;
  logger: Logger;
  /** Lease given to a reservation found without one (ms). */
  reservationLeaseMs?: number;
}

/** One finding and what its repair did. */
export interface RepairOutcome {
  finding: AuditFinding;
  /** What was done, in words. */
  action: string;
  /** False when the invariant held again by the time the repair ran (nothing changed). */
  applied: boolean;
}

const DEFAULT_LEASE_MS = 5000;

/** Applies the repair of each finding, in the order of {@link AUDIT_KINDS} (calls first, bookkeeping last). */
export async function repair(deps: RepairDeps, config: CallCenterConfig, keys: CallCenterKeys, findings: AuditFinding[]): Promise<RepairOutcome[]> {
  const cc = config.id;
  const ordered = [...findings].sort((a, b) => AUDIT_KINDS.indexOf(a.kind) - AUDIT_KINDS.indexOf(b.kind));
  const out: RepairOutcome[] = [];
  const endedCalls = new Set<string>();
  for (const f of ordered) {
    const o = await repairOne(deps, config, keys, f, endedCalls);
    if (o.applied) deps.logger.warn({ cc, kind: f.kind, key: f.key, action: o.action }, `audit repair: ${o.action}`);
    out.push(o);
  }
  return out;
}

async function repairOne(deps: RepairDeps, config: CallCenterConfig, keys: CallCenterKeys, f: AuditFinding, endedCalls: Set<string>): Promise<RepairOutcome> {
  const r = deps.redis;
  const cc = config.id;
  const need = (v: string | undefined, what: string): string => {
    if (v === undefined) throw new Error(`audit finding ${f.kind} at ${f.key} has no ${what}`);
    return v;
  };
  switch (f.kind) {
    case 'unguarded_call': {
      const agent = need(f.agent, 'agent');
      const call = need(f.call, 'call');
      // One finding per queue the agent is on the call in; callEnded ends them all at once.
      if (endedCalls.has(`${agent}|${call}`)) return { finding: f, action: `call ${call} of agent ${agent} already ended above`, applied: false };
      endedCalls.add(`${agent}|${call}`);
      let changed: boolean;
      try {
        changed = (await deps.engine.callEnded(cc, agent, { callId: call })).seqs.length > 0;
      } catch (err) {
        // The agent left the call state meanwhile (the normal path ended it): nothing to mend.
        if (!(err instanceof IllegalTransitionError)) throw err;
        changed = false;
      }
      return { finding: f, action: changed ? `ended call ${call} for agent ${agent} (its normal call end)` : `call ${call} of agent ${agent} had ended meanwhile`, applied: changed };
    }
    case 'task_dead_owner': {
      const task = need(f.task, 'task');
      const queue = need(f.queue, 'queue');
      const ended = await deps.tasks.end(cc, task, queue, 'closed');
      return { finding: f, action: ended ? `closed task ${task} in queue ${queue}` : `task ${task} had ended meanwhile`, applied: ended };
    }
    case 'conversation_dead_owner': {
      const id = need(f.conversation, 'conversation');
      const ended = await deps.conversations.end(cc, id);
      return { finding: f, action: ended ? `ended conversation ${id}` : `conversation ${id} had ended meanwhile`, applied: ended };
    }
    case 'stale_leg': {
      const agent = need(f.agent, 'agent');
      const id = need(f.conversation, 'conversation');
      const n = await r.ccsAuditStaleLeg(keys.agentConvs(agent), keys.conv(id), id);
      return { finding: f, action: n === 1 ? `removed ended conversation ${id} from agent ${agent}'s conversations` : `conversation ${id} is active again or gone from the list`, applied: n === 1 };
    }
    case 'reservation_without_lease': {
      const ms = deps.reservationLeaseMs ?? DEFAULT_LEASE_MS;
      const n = await r.ccsAuditReservationLease(f.key, ms);
      return { finding: f, action: n === 1 ? `gave the reservation a ${ms} ms lease` : 'the reservation has a lease again or is gone', applied: n === 1 };
    }
    case 'ready_set': {
      const agent = need(f.agent, 'agent');
      const queue = need(f.queue, 'queue');
      const done = await r.ccsAuditReadySet(keys.agent(agent), keys.queueReady(queue), agent, agentField.state(queue), agentField.since(queue), agentField.idx(queue), agentIndexSpec(config, agent, queue));
      return { finding: f, action: done === '' ? `agent ${agent}'s Ready set membership in queue ${queue} agrees again` : `${done} agent ${agent} ${done === 'added' ? 'to' : 'from'} queue ${queue}'s Ready set`, applied: done !== '' };
    }
    case 'ready_index': {
      const queue = need(f.queue, 'queue');
      if (f.agent === undefined) {
        // A member that names no agent at all: only the stray can go.
        const n = await r.zrem(f.key, need(f.member, 'member'));
        return { finding: f, action: n === 1 ? `removed ${f.member ?? ''} from ${f.key}` : `${f.member ?? ''} was gone from ${f.key}`, applied: n === 1 };
      }
      const agent = f.agent;
      const done = await r.ccsAuditReadyIndex(keys.agent(agent), keys.queueReady(queue), f.member === undefined ? keys.agent(agent) : f.key, agent, agentField.state(queue), agentField.idx(queue), agentIndexSpec(config, agent, queue), f.member ?? '');
      return { finding: f, action: done === 'rebuilt' ? `rebuilt agent ${agent}'s Ready-index entries in queue ${queue}` : `removed agent ${agent}'s Ready-index entries in queue ${queue} (not Ready)`, applied: true };
    }
    case 'sequence_behind': {
      const stream = f.key === keys.eventSeq ? keys.events : keys.oplog;
      const n = await r.ccsRepairSeq(2, stream, f.key);
      return { finding: f, action: n === 1 ? `moved ${f.key} up to its stream's last entry` : `${f.key} is in front of its stream again`, applied: n === 1 };
    }
    case 'registration_expired': {
      const agent = need(f.agent, 'agent');
      const n = await r.ccsAuditRegistrations(keys.registrations(agent), keys.registrationExpiry(agent), keys.deadlines, keys.deadlineClaims, registrationMember(agent));
      return { finding: f, action: n > 0 ? `dropped ${n} expired binding(s) of agent ${agent}` : `agent ${agent}'s expired bindings were swept meanwhile`, applied: n > 0 };
    }
  }
}
