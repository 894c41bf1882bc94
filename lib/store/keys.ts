/**
 * Every Redis key name ccswitch uses, built in this one module (DESIGN.md section 6).
 * All keys of one call center share the hash tag `{<cc>}`, so every Lua script touches a
 * single slot and works unchanged on Redis Cluster.
 */

/** Key names of one call center. */
export interface CallCenterKeys {
  /** HASH of one agent: per-queue state fields (see {@link agentField}). */
  agent(agentId: string): string;
  /** ZSET of agents Ready in a queue, scored by idle-since (ms). */
  queueReady(queue: string): string;
  /**
   * ZSET index of a queue's Ready agents for one selection order (see lib/acd/readyIndex.ts):
   * `calls` and `talk` scored by the agent's answered calls / talk ms, `skill:<name>` by minus
   * the level; members `<readySince, 15 digits>|<agent>`. The scripts derive these names from
   * {@link queueReady} (`<ready>:<index>`), so the two must stay in step.
   */
  queueReadyIndex(queue: string, index: string): string;
  /** ZSET of waiting queue tasks, scored by priority then age. */
  queueTasks(queue: string): string;
  /** ZSET of timers: member `<kind>|<args>`, score = due time (ms, Redis clock). */
  deadlines: string;
  /** HASH deadline member → fencing token of its current claim. */
  deadlineClaims: string;
  /** Counter issuing deadline claim tokens. */
  deadlineToken: string;
  /** STREAM of events; entry ids are `<seq>-0`. */
  events: string;
  /** Counter of the last event sequence number. */
  eventSeq: string;
  /** STREAM of operation-log entries; entry ids are `<seq>-0`. */
  oplog: string;
  /** Counter of the last operation-log sequence number. */
  oplogSeq: string;
  /** HASH contact URI → binding JSON of an agent's registrations. */
  registrations(agentId: string): string;
  /** ZSET contact URI → expiry (ms, Redis clock) of an agent's registrations. */
  registrationExpiry(agentId: string): string;
  /** Replay guard of one digest nonce: the highest nonce count accepted. */
  nonce(nonceDigest: string): string;
  /** ZSET of a queue's waiting tasks without selection conditions (they are served in order). */
  queueHead(queue: string): string;
  /** Counter of a queue's task arrivals (their order among equal priorities). */
  queueArrivals(queue: string): string;
  /** HASH of a queue's counters (entered, answered, abandoned, overflow, timeout, waitMsTotal, handled, handleMsTotal). */
  queueStats(queue: string): string;
  /** STRING: the last queue.stats figures published for a queue (JSON), to publish only changes. */
  queueStatsLast(queue: string): string;
  /** HASH of a queue's per-minute history: `a:<minute>` answered, `w:<minute>` most waiting (minute = ms / 60000). */
  queueHistory(queue: string): string;
  /** HASH of one queue task. */
  task(taskId: string): string;
  /** STRING `<token>|<task>|<queue>` with a PX expiry: an agent's reservation (lease). */
  reservation(agentId: string): string;
  /** Counter issuing reservation fencing tokens. */
  reservationToken: string;
  /** HASH of an agent's counters in a queue (calls, talkMs, lastCallAt). */
  agentQueueStats(agentId: string, queue: string): string;
  /** HASH call id → agents of the live calls one process (incarnation) handles. */
  callGuard(incarnation: string): string;
  /** HASH of one conversation (DESIGN.md 5.1): id, owner, state, created, task, queue. */
  conv(convId: string): string;
  /** HASH leg id → leg JSON of one conversation. */
  convLegs(convId: string): string;
  /** SET of the conversations an agent has a leg in. */
  agentConvs(agentId: string): string;
  /** ZSET of the call center's live conversations, scored by creation time (ms). */
  convs: string;
  /** LIST of commands handed to one process (incarnation) by other instances (DESIGN.md 5.1). */
  commands(incarnation: string): string;
  /** LIST the reply to one handed-off command is pushed to. */
  commandReply(commandId: string): string;
  /** STRING with a PX expiry: one process is alive and reads its command list. */
  presence(incarnation: string): string;
  /** STRING: outcome (JSON) of the command run with one idempotency key. */
  idempotency(keyDigest: string): string;
  /**
   * STRING `<token>` with a PX expiry: the lease of the one instance that keeps a trunk
   * registered to its carrier (lib/sip/carrierRegistration.ts); the token fences its writes.
   */
  trunkRegLease(trunk: string): string;
  /** HASH of a trunk's carrier registration: state, holder, expiresAt, lastError, lastAt. */
  trunkReg(trunk: string): string;
}

const SAFE = /^[A-Za-z0-9_.-]{1,64}$/;

function safe(kind: string, id: string): string {
  // Ids are validated by the config schema; this guards against a caller passing raw input.
  if (!SAFE.test(id)) throw new Error(`unsafe ${kind} id for a key name: ${JSON.stringify(id)}`);
  return id;
}

function safeIndex(index: string): string {
  if (index === 'calls' || index === 'talk') return index;
  if (index.startsWith('skill:')) return `skill:${safe('skill', index.slice(6))}`;
  throw new Error(`unknown ready index ${JSON.stringify(index)}`);
}

/** Builds the key names of call center `cc` under `prefix`. */
export function callCenterKeys(prefix: string, cc: string): CallCenterKeys {
  const base = `${safe('prefix', prefix)}:{${safe('call center', cc)}}`;
  return {
    agent: (agentId) => `${base}:agent:${safe('agent', agentId)}`,
    queueReady: (queue) => `${base}:queue:${safe('queue', queue)}:ready`,
    queueReadyIndex: (queue, index) => `${base}:queue:${safe('queue', queue)}:ready:${safeIndex(index)}`,
    queueTasks: (queue) => `${base}:queue:${safe('queue', queue)}:tasks`,
    deadlines: `${base}:deadlines`,
    deadlineClaims: `${base}:deadlines:claims`,
    deadlineToken: `${base}:deadlines:token`,
    events: `${base}:events`,
    eventSeq: `${base}:events:seq`,
    oplog: `${base}:oplog`,
    oplogSeq: `${base}:oplog:seq`,
    registrations: (agentId) => `${base}:reg:${safe('agent', agentId)}`,
    registrationExpiry: (agentId) => `${base}:reg:${safe('agent', agentId)}:exp`,
    nonce: (nonceDigest) => `${base}:nonce:${safe('nonce digest', nonceDigest)}`,
    queueHead: (queue) => `${base}:queue:${safe('queue', queue)}:head`,
    queueArrivals: (queue) => `${base}:queue:${safe('queue', queue)}:arrivals`,
    queueStats: (queue) => `${base}:queue:${safe('queue', queue)}:stats`,
    queueStatsLast: (queue) => `${base}:queue:${safe('queue', queue)}:stats:last`,
    queueHistory: (queue) => `${base}:queue:${safe('queue', queue)}:history`,
    task: (taskId) => `${base}:task:${safe('task', taskId)}`,
    reservation: (agentId) => `${base}:resv:${safe('agent', agentId)}`,
    reservationToken: `${base}:resv:token`,
    agentQueueStats: (agentId, queue) => `${base}:queue:${safe('queue', queue)}:agent:${safe('agent', agentId)}`,
    callGuard: (incarnation) => `${base}:guard:${safe('incarnation', incarnation)}`,
    conv: (convId) => `${base}:conv:${safe('conversation', convId)}`,
    convLegs: (convId) => `${base}:conv:${safe('conversation', convId)}:legs`,
    agentConvs: (agentId) => `${base}:agent:${safe('agent', agentId)}:convs`,
    convs: `${base}:convs`,
    commands: (incarnation) => `${base}:cmd:${safe('incarnation', incarnation)}`,
    commandReply: (commandId) => `${base}:cmd:reply:${safe('command', commandId)}`,
    presence: (incarnation) => `${base}:presence:${safe('incarnation', incarnation)}`,
    idempotency: (keyDigest) => `${base}:idem:${safe('idempotency key digest', keyDigest)}`,
    trunkRegLease: (trunk) => `${base}:trunk:${safe('trunk', trunk)}:reg:lease`,
    trunkReg: (trunk) => `${base}:trunk:${safe('trunk', trunk)}:reg`,
  };
}

/** {@link callCenterKeys} for one prefix, built once per call center and reused. */
export function keysCache(prefix: string): (cc: string) => CallCenterKeys {
  const byCc = new Map<string, CallCenterKeys>();
  return (cc) => {
    let k = byCc.get(cc);
    if (k === undefined) byCc.set(cc, (k = callCenterKeys(prefix, cc)));
    return k;
  };
}

/** Field names inside an agent HASH for one queue. */
export const agentField = {
  state: (q: string) => `q:${q}:state`,
  /** State remembered when the agent went to other_call. */
  prev: (q: string) => `q:${q}:prev`,
  /** Not-ready reason code (string), empty when none. */
  reason: (q: string) => `q:${q}:reason`,
  /** Not-ready reason remembered with `prev`. */
  prevReason: (q: string) => `q:${q}:prevReason`,
  /** When the current state was entered (ms, Redis clock). */
  since: (q: string) => `q:${q}:since`,
  /** Call id that put the agent in queue_call / other_call. */
  call: (q: string) => `q:${q}:call`,
  /** While Ready: `<index member> <spec>`, the Ready indexes the agent is in (lib/acd/readyIndex.ts); else empty. */
  idx: (q: string) => `q:${q}:idx`,
} as const;

/** Deadline member of the next registration expiry of an agent. */
export function registrationMember(agentId: string): string {
  return `regexp|${agentId}`;
}

/** Deadline member of an agent's wrap-up in a queue. */
export function wrapUpMember(agentId: string, queue: string): string {
  return `wrapup|${agentId}|${queue}`;
}

/** Deadline member of a process's liveness (its calls are ended if it stops beating). */
export function callGuardMember(incarnation: string): string {
  return `guard|${incarnation}`;
}

/** Deadline member of a queue task's maximum wait. */
export function maxWaitMember(queue: string, taskId: string): string {
  return `maxwait|${queue}|${taskId}`;
}

/** Deadline member of a queue's periodic statistics event. */
export function queueStatsMember(queue: string): string {
  return `qstats|${queue}`;
}
