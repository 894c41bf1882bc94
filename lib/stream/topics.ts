/**
 * Topics of the event stream (DESIGN.md section 7): `queue:<q>`, `agent:<id>`,
 * `conversation:<id>` and `callcenter` (everything). A topic is parsed and checked against the
 * call center's configuration, and every event knows the topics it belongs to.
 */
import type { CallCenterConfig } from '../config/schema';
import type { CcsEvent } from '../events';

/** A parsed topic. */
export type Topic = { kind: 'queue'; id: string } | { kind: 'agent'; id: string } | { kind: 'conversation'; id: string } | { kind: 'callcenter' };

/** Why a topic string was refused. */
export class TopicError extends Error {
  constructor(
    readonly topic: string,
    why: string,
  ) {
    super(`topic ${JSON.stringify(topic).slice(0, 80)}: ${why}`);
    this.name = 'TopicError';
  }
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** The canonical string of a topic. */
export function topicKey(t: Topic): string {
  return t.kind === 'callcenter' ? 'callcenter' : `${t.kind}:${t.id}`;
}

/**
 * Parses `queue:8000`, `agent:1001`, `conversation:<id>` or `callcenter`; a queue or agent
 * must exist in the call center (conversations come and go: any well-formed id is accepted).
 */
export function parseTopic(raw: unknown, cc: CallCenterConfig): Topic {
  if (typeof raw !== 'string') throw new TopicError(String(raw), 'must be a string');
  if (raw === 'callcenter') return { kind: 'callcenter' };
  const i = raw.indexOf(':');
  const kind = i < 0 ? raw : raw.slice(0, i);
  const id = i < 0 ? '' : raw.slice(i + 1);
  if (kind !== 'queue' && kind !== 'agent' && kind !== 'conversation') throw new TopicError(raw, 'unknown kind (queue:<q>, agent:<id>, conversation:<id>, callcenter)');
  if (!ID.test(id)) throw new TopicError(raw, 'bad id');
  if (kind === 'queue' && !Object.hasOwn(cc.queues, id)) throw new TopicError(raw, `no queue ${id} in call center ${cc.id}`);
  if (kind === 'agent' && !Object.hasOwn(cc.agents, id)) throw new TopicError(raw, `no agent ${id} in call center ${cc.id}`);
  return { kind, id };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The topics an event belongs to (besides `callcenter`, which has them all):
 * - `agent.state`: its agent and its queue;
 * - `queue.caller`, `queue.stats`: its queue, and the agents it names (answered, offered);
 * - `conversation`: the conversation, and the agent of the leg it is about.
 */
export function topicsOf(e: CcsEvent): string[] {
  const out: string[] = [];
  const r = e as Record<string, unknown>;
  const queue = str(r.queue);
  if (queue !== undefined && e.type !== 'conversation') out.push(`queue:${queue}`);
  const agent = str(r.agent);
  if (agent !== undefined) out.push(`agent:${agent}`);
  if (Array.isArray(r.agents)) for (const a of r.agents) if (typeof a === 'string' && a !== agent) out.push(`agent:${a}`);
  if (e.type === 'conversation') {
    const id = str(r.id);
    if (id !== undefined) out.push(`conversation:${id}`);
  }
  return out;
}
