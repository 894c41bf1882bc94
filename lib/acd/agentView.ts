/**
 * The ACD part of `GET /callcenter/{cc}/agent/{agent}`: the reservation (lease) the agent is
 * under while its phone rings, and the queue call it is talking on (queue, task, caller and
 * how long the caller waited). Read-only pipelined reads; the answer claim script records
 * the task on the agent (field `acd:task`), and it is shown only while the agent is in
 * Queue Call on that task's call, so an old record never shows up as a current call.
 */
import type { Redis } from 'ioredis';
import type { QueueStateView } from '../agent/queries';
import { AgentState } from '../agent/stateMachine';
import type { CallCenterKeys } from '../store/keys';
import { pipelineReplies } from '../store/redis';

/** A lease on the agent for one task. */
export interface ReservationView {
  task: string;
  queue: string;
  /** Fencing token of the lease. */
  token: number;
  /** Time left before the lease lapses by itself. */
  expiresInMs: number;
}

/** The queue call the agent is on. */
export interface AcdCallView {
  task: string;
  queue: string;
  caller: string;
  callId: string;
  /** How long the caller waited in the queue before this agent answered. */
  waitedMs: number;
  /** When the agent answered (ms since epoch, Redis clock). */
  answeredAt: number;
}

/** The agent's reservation and queue call, each null when there is none. */
export async function agentAcdView(
  redis: Redis,
  keys: CallCenterKeys,
  agentId: string,
  states: QueueStateView[],
): Promise<{ reservation: ReservationView | null; acdCall: AcdCallView | null }> {
  const [value, pttl, taskId] = await pipelineReplies(redis.pipeline().get(keys.reservation(agentId)).pttl(keys.reservation(agentId)).hget(keys.agent(agentId), 'acd:task'));
  let reservation: ReservationView | null = null;
  if (typeof value === 'string') {
    const [token = '', task = '', queue = ''] = value.split('|');
    reservation = { task, queue, token: Number(token), expiresInMs: Math.max(0, Number(pttl)) };
  }
  const onCall = states.find((s) => s.state === AgentState.QueueCall && s.callId !== null);
  let acdCall: AcdCallView | null = null;
  if (onCall !== undefined && typeof taskId === 'string' && taskId !== '') {
    const [queue, caller, callId, state, enqueuedAt, answeredAt, agent] = await redis.hmget(keys.task(taskId), 'queue', 'caller', 'callId', 'state', 'enqueuedAt', 'answeredAt', 'agent');
      if (state === 'answered' && agent === agentId && callId === onCall.callId && queue === onCall.queue && queue !== null) {
      acdCall = { task: taskId, queue, caller: caller ?? '', callId: onCall.callId!, waitedMs: Number(answeredAt) - Number(enqueuedAt), answeredAt: Number(answeredAt) };
    }
  }
  // After an answer the lease is kept until the agent is on the call; once it is, that lease
  // is part of the call being connected, not an offer any more.
  if (reservation !== null && acdCall !== null && reservation.task === acdCall.task) reservation = null;
  return { reservation, acdCall };
}
