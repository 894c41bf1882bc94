/**
 * Event and operation-log stream entries (DESIGN.md section 7). Both streams use entry
 * ids `<seq>-0`, so a sequence number is also a stream position: "everything after 41"
 * is `XRANGE key (41-0 +`.
 */
import type { Redis } from 'ioredis';
import { isAgentState, type AgentState } from './agent/stateMachine';
import type { OplogEntry } from './oplog';

/** `agent.state` event payload. */
export interface AgentStateEvent {
  type: 'agent.state';
  seq: number;
  ts: number;
  agent: string;
  queue: string;
  state: AgentState;
  prev: AgentState;
  reason: number | null;
  /** Operation code written to the operation log for this transition. */
  op: number;
  /** Sequence number of that operation-log entry. */
  oplog: number;
  /** Instance that applied the transition. */
  instance: string;
}

/** Why a `queue.caller` event was written. `closed`: the instance holding the caller stopped. */
export type QueueCallerReason = 'enqueued' | 'offered' | 'answered' | 'abandoned' | 'overflow' | 'rejected' | 'forwarded' | 'timeout' | 'closed';

/** `queue.caller` event payload (lib/store/acdScripts.ts writes it). */
export interface QueueCallerEvent {
  type: 'queue.caller';
  seq: number;
  ts: number;
  queue: string;
  task: string;
  caller: string;
  /** Place in the queue (1 = next); 0 once the caller left it. */
  position: number;
  reason: QueueCallerReason;
  /** The agent who answered (answered). */
  agent?: string;
  /** The agents rung (offered). */
  agents?: string[];
  /** How long the caller waited (answered and the ends without an answer). */
  waitedMs?: number;
  /** rejected: the data the agent sent back to the IVR (seed 002 `reject`). */
  data?: string;
}

/** `conversation` event payload (lib/store/convScripts.ts writes it). */
export interface ConversationEvent {
  type: 'conversation';
  seq: number;
  ts: number;
  /** The conversation. */
  id: string;
  action: 'created' | 'joined' | 'mode' | 'left' | 'ended';
  leg?: string;
  kind?: 'caller' | 'agent' | 'external' | 'supervisor';
  agent?: string;
  /** A supervisor leg: the supervisor and how it monitors (DESIGN.md section 12). */
  supervisor?: string;
  monitor?: 'listen' | 'whisper' | 'barge' | 'intercept';
  mode?: number;
  /** The leg's state: `dialing` while a call it places rings, `up`, `gone`. */
  state?: 'dialing' | 'up' | 'gone';
  /** Why a leg left, when it is worth telling: the status of a dial not answered (`486 Busy Here`). */
  cause?: string;
}

/** Any event on the stream. */
export type CcsEvent = AgentStateEvent | QueueCallerEvent | ConversationEvent | { type: string; seq: number; ts: number; [k: string]: unknown };

type StreamEntry = [id: string, fields: string[]];

function fieldsOf(fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out;
}

/** Sequence number of a stream id `<seq>-0`. */
export function seqOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** Decodes one events-stream entry. */
export function parseEvent([id, raw]: StreamEntry): CcsEvent {
  const f = fieldsOf(raw);
  const data = JSON.parse(f.data ?? '{}') as Record<string, unknown>;
  return { ...data, type: f.type ?? 'unknown', seq: seqOf(id), ts: Number(f.ts) };
}

const COMPACT_OPLOG_FIELDS = ['ts', 'agent', 'queue', 'op', 'object', 'reason', 'state', 'instance', 'conversation'] as const;

/**
 * The fields of a compact oplog entry (field `o`, see OPLOG_ADD in lib/store/scripts.ts):
 * nine `|`-separated parts, then `by`, which may itself hold `|`. Entries written before the
 * compact form have one stream field per entry field and are read as they are.
 */
function compactOplog(o: string): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  for (const name of COMPACT_OPLOG_FIELDS) {
    const bar = o.indexOf('|', at);
    out[name] = bar === -1 ? o.slice(at) : o.slice(at, bar);
    at = bar === -1 ? o.length : bar + 1;
  }
  out.by = o.slice(at);
  return out;
}

/** Decodes one oplog-stream entry. */
export function parseOplog([id, raw]: StreamEntry): OplogEntry {
  const f = fieldsOf(raw);
  if (f.o !== undefined) Object.assign(f, compactOplog(f.o));
  const state = f.state;
  return {
    seq: seqOf(id),
    ts: Number(f.ts),
    agent: f.agent ?? '',
    queue: f.queue ?? '',
    op: Number(f.op),
    object: Number(f.object),
    reason: Number(f.reason),
    state: isAgentState(state) ? state : ('logged_out' as AgentState),
    instance: f.instance ?? '',
    ...(f.by === undefined || f.by === '' ? {} : { by: f.by }),
    ...(f.conversation === undefined || f.conversation === '' ? {} : { conversation: f.conversation }),
  };
}

/** Reads up to `count` events with a sequence number greater than `since`. */
export async function readEventsSince(redis: Redis, eventsKey: string, since: number, count = 1000): Promise<CcsEvent[]> {
  const entries = (await redis.xrange(eventsKey, `(${since}-0`, '+', 'COUNT', count)) as StreamEntry[];
  return entries.map(parseEvent);
}
