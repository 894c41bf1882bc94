/**
 * Shapes of what the server sends (README: REST API and Event stream). Declared here rather
 * than imported from lib/: the page is built for the browser and knows only the wire format.
 */

/** Agent states per queue (DESIGN.md section 3). */
export type AgentState = 'logged_out' | 'not_ready' | 'ready' | 'queue_call' | 'other_call' | 'wrap_up';

/** A caller waiting in a queue (snapshot, `GET queue`). */
export interface WireCaller {
  task: string;
  caller: string;
  position: number;
  priority: number;
  state: string;
  waitedMs: number;
}

/** A queue's statistics (snapshot, `GET queue`, `queue.stats`). */
export interface WireStats {
  entered: number;
  answered: number;
  abandoned: number;
  overflow: number;
  timeout: number;
  closed: number;
  waiting: number;
  longestWaitMs: number;
  avgWaitMs: number | null;
  avgHandleMs: number | null;
  slaSeconds: number;
  answeredInSla: number;
  abandonedInSla: number;
  serviceLevel: number | null;
}

/** A queue member (snapshot). */
export interface WireMember {
  agent: string;
  state: AgentState;
  reason: number | null;
  since: number | null;
  callId: string | null;
}

/** The snapshot of a `queue:<q>` topic. */
export interface QueueSnapshot {
  queue: string;
  name: string;
  callers: WireCaller[];
  members: WireMember[];
  stats: WireStats;
}

/** One queue of an agent (`GET agent`, agent snapshot). */
export interface WireQueueState {
  queue: string;
  state: AgentState;
  reason: number | null;
  since: number | null;
}

/** An agent's conversation (agent snapshot, `GET agent`). */
export interface WireAgentConversation {
  id: string;
  leg: string;
  mode: number;
  active: boolean;
}

/** The snapshot of an `agent:<id>` topic. */
export interface AgentSnapshot {
  agent: string;
  queues: WireQueueState[];
  reservation: { task: string; queue: string } | null;
  conversations: WireAgentConversation[];
}

/** A leg of a conversation record. */
export interface WireLeg {
  leg: string;
  kind: 'caller' | 'agent' | 'external' | 'supervisor';
  agent?: string;
  mode: number;
  state: 'dialing' | 'up' | 'gone';
  since?: number;
  supervisor?: string;
  monitor?: string;
}

/** A conversation record (conversation snapshot, `GET conversation`). */
export interface WireConversation {
  id: string;
  state: 'active' | 'ended';
  queue?: string;
  task?: string;
  legs: WireLeg[];
}

/** Any event of the stream. */
export interface WireEvent {
  type: string;
  seq: number;
  ts: number;
  [k: string]: unknown;
}

/** `agent.state`. */
export interface AgentStateEvent extends WireEvent {
  type: 'agent.state';
  agent: string;
  queue: string;
  state: AgentState;
  reason: number | null;
}

/** `queue.caller`. */
export interface QueueCallerEvent extends WireEvent {
  type: 'queue.caller';
  queue: string;
  task: string;
  caller: string;
  position: number;
  reason: string;
  agent?: string;
  agents?: string[];
  waitedMs?: number;
}

/** `queue.stats`. */
export interface QueueStatsEvent extends WireEvent, WireStats {
  type: 'queue.stats';
  queue: string;
}

/** `conversation`. */
export interface ConversationEvent extends WireEvent {
  type: 'conversation';
  id: string;
  action: 'created' | 'joined' | 'mode' | 'left' | 'ended';
  leg?: string;
  kind?: WireLeg['kind'];
  agent?: string;
  mode?: number;
  state?: WireLeg['state'];
  cause?: string;
  supervisor?: string;
  monitor?: string;
}

/** Narrowing helpers. */
export const isAgentState = (e: WireEvent): e is AgentStateEvent => e.type === 'agent.state';
export const isQueueCaller = (e: WireEvent): e is QueueCallerEvent => e.type === 'queue.caller';
export const isQueueStats = (e: WireEvent): e is QueueStatsEvent => e.type === 'queue.stats';
export const isConversation = (e: WireEvent): e is ConversationEvent => e.type === 'conversation';
