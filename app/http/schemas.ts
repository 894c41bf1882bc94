/** JSON Schemas of the REST API (validation and the OpenAPI document at /docs). */
// Brings in the swagger plugin's FastifySchema fields (tags, summary) for route schemas.
import type {} from '@fastify/swagger';
import { Type, type Static } from '@sinclair/typebox';
import { AgentState } from '../../lib/agent/stateMachine';
import { AUDIT_KINDS } from '../../lib/audit/audit';

const QueueId = Type.String({ pattern: '^[0-9]{2,16}$', description: 'Queue number; omitted: every queue the agent belongs to' });
const StateEnum = Type.Union(Object.values(AgentState).map((s) => Type.Literal(s)), { description: 'Agent state in one queue' });

export const AgentParams = Type.Object({ cc: Type.String({ maxLength: 64 }), agent: Type.String({ maxLength: 64 }) });
export const CcParams = Type.Object({ cc: Type.String({ maxLength: 64 }) });
export const QueueParams = Type.Object({ cc: Type.String({ maxLength: 64 }), q: Type.String({ maxLength: 64 }) });
export type AgentParamsT = Static<typeof AgentParams>;
export type CcParamsT = Static<typeof CcParams>;
export type QueueParamsT = Static<typeof QueueParams>;

export const QueueBody = Type.Object({ queue: Type.Optional(QueueId) }, { additionalProperties: false });
export const LogoutBody = Type.Object(
  { queue: Type.Optional(QueueId), reason: Type.Optional(Type.Integer({ description: 'Sign-out reason (seed 004, operation 0): 258 self (default), 257 forced, 256 disconnected, 1-264' })) },
  { additionalProperties: false },
);
export const NotReadyBody = Type.Object(
  { queue: Type.Optional(QueueId), reason: Type.Optional(Type.Integer({ description: 'Busy reason (seed 004, operation 3): 1 busy (default), 2 no answer, 4 rest, 7 rejected, 200-250 site-defined' })) },
  { additionalProperties: false },
);
export type QueueBodyT = Static<typeof QueueBody>;
export type ReasonBodyT = Static<typeof LogoutBody>;

export const ErrorBody = Type.Object(
  { error: Type.String({ description: 'Stable error code' }), message: Type.String(), details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
  { $id: 'Error' },
);

export const ApplyResultBody = Type.Object({
  agent: Type.String(),
  results: Type.Array(
    Type.Object({
      queue: Type.String(),
      from: StateEnum,
      to: StateEnum,
      changed: Type.Boolean({ description: 'False when the operation was a no-op in this queue' }),
      skipped: Type.Optional(Type.Literal('illegal_transition', { description: 'Set when an all-queue operation skipped this queue' })),
    }),
  ),
  seqs: Type.Array(Type.Integer(), { description: 'Sequence numbers of the events written' }),
});

const Nullable = <T extends ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()]);

export const QueueStateBody = Type.Object({
  queue: Type.String(),
  state: StateEnum,
  reason: Nullable(Type.Integer()),
  since: Nullable(Type.Integer({ description: 'ms since epoch (Redis clock)' })),
  remembered: Type.Union([StateEnum, Type.Null()], { description: 'State to return to after the current other call' }),
  callId: Type.Union([Type.String(), Type.Null()]),
  wrapUpEndsAt: Nullable(Type.Integer()),
  skills: Type.Record(Type.String(), Type.Integer()),
});

export const AgentBody = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  extension: Type.String(),
  queues: Type.Array(QueueStateBody),
  registration: Type.Union(
    [
      Type.Object({
        contacts: Type.Array(
          Type.Object({ contact: Type.String(), expires: Type.Integer({ description: 'seconds left' }), transport: Type.String(), source: Type.String(), userAgent: Type.String() }),
        ),
      }),
      Type.Null(),
    ],
    { description: 'Live SIP registrations; null when the agent has none' },
  ),
  reservation: Type.Union(
    [
      Type.Object({
        task: Type.String(),
        queue: Type.String(),
        token: Type.Integer({ description: 'fencing token of the lease' }),
        expiresInMs: Type.Integer({ description: 'time left before the lease lapses by itself' }),
      }),
      Type.Null(),
    ],
    { description: 'ACD reservation lease while a queue call is offered to the agent; null when none' },
  ),
  acdCall: Type.Union(
    [
      Type.Object({
        task: Type.String(),
        queue: Type.String(),
        caller: Type.String(),
        callId: Type.String(),
        waitedMs: Type.Integer({ description: 'how long the caller waited in the queue' }),
        answeredAt: Type.Integer({ description: 'ms since epoch (Redis clock)' }),
      }),
      Type.Null(),
    ],
    { description: 'The queue call the agent is talking on; null when none' },
  ),
  conversations: Type.Array(Type.Object({ id: Type.String(), leg: Type.String(), mode: Type.Integer(), active: Type.Boolean() }), {
    description: 'The live conversations the agent has a leg in, with its mode there; at most one is active (not on hold)',
  }),
});

/** One agent in `GET agents`: its state per queue. */
export const AgentsBody = Type.Object({
  agents: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.Union([Type.String(), Type.Null()]),
      extension: Type.String(),
      queues: Type.Array(Type.Object({ queue: Type.String(), state: StateEnum, reason: Nullable(Type.Integer()), since: Nullable(Type.Integer({ description: 'ms since epoch (Redis clock)' })) })),
    }),
  ),
});

const StateCountsBody = Type.Record(Type.String(), Type.Integer(), { description: 'Agents in each state' });
const QueueSummaryFields = {
  id: Type.String(),
  name: Type.String(),
  strategy: Type.String(),
  autoReady: Type.Boolean(),
  wrapUpSeconds: Type.Number(),
  ringSeconds: Type.Number(),
  maxWaitSeconds: Type.Number(),
  slaSeconds: Type.Number({ description: 'Service-level threshold: answered within this many seconds counts as in time' }),
  agents: StateCountsBody,
  waiting: Type.Integer({ description: 'Callers waiting in the queue' }),
};

/** `GET queues`. */
export const QueuesBody = Type.Object({ queues: Type.Array(Type.Object(QueueSummaryFields)) });

/** `GET queue/{q}`: options, members, waiting callers in queue order and counters. */
export const QueueViewBody = Type.Object({
  ...QueueSummaryFields,
  members: Type.Array(Type.Object({ agent: Type.String(), state: StateEnum, reason: Nullable(Type.Integer()), since: Nullable(Type.Integer()) })),
  callers: Type.Array(Type.Object({ task: Type.String(), caller: Type.String(), position: Type.Integer(), priority: Type.Number(), state: Type.String(), waitedMs: Type.Number() })),
  stats: Type.Object({
    entered: Type.Number(),
    answered: Type.Number(),
    abandoned: Type.Number(),
    overflow: Type.Number(),
    timeout: Type.Number(),
    closed: Type.Number(),
    waiting: Type.Number(),
    longestWaitMs: Type.Number(),
    avgWaitMs: Type.Union([Type.Number(), Type.Null()]),
    avgHandleMs: Type.Union([Type.Number(), Type.Null()]),
    slaSeconds: Type.Number({ description: 'The queue\'s service-level threshold' }),
    answeredInSla: Type.Number({ description: 'Callers answered within slaSeconds' }),
    abandonedInSla: Type.Number({ description: 'Callers who hung up within slaSeconds (short abandons)' }),
    serviceLevel: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()], { description: 'answeredInSla / (answered + abandoned - abandonedInSla); null while that is 0' }),
  }),
});

/** `GET queue/{q}/history`: the last hour, minute by minute. */
export const QueueHistoryBody = Type.Object({
  queue: Type.String(),
  now: Type.Integer({ description: 'Redis time of the read (ms since epoch)' }),
  minutes: Type.Array(
    Type.Object({
      minute: Type.Integer({ description: 'Start of the minute (ms since epoch, Redis clock)' }),
      answered: Type.Integer({ description: 'Callers answered in the minute' }),
      waiting: Type.Union([Type.Integer(), Type.Null()], { description: 'Most callers waiting at once in the minute; null when no instance looked' }),
    }),
    { description: 'Oldest first; the last is the current, unfinished minute' },
  ),
});

/** `GET me`: what the token is. */
export const MeBody = Type.Object({
  callcenter: Type.String(),
  name: Type.String({ description: 'The token\'s name in logs (never the token)' }),
  role: Type.Union([Type.Literal('admin'), Type.Literal('supervisor'), Type.Literal('agent')]),
  agent: Type.Union([Type.String(), Type.Null()], { description: 'An agent token\'s agent' }),
  supervisor: Type.Union([Type.String(), Type.Null()], { description: 'The supervisor a supervisor token acts as (monitoring), if any' }),
  queues: Type.Array(Type.String(), { description: 'The queues of this call center the token may see' }),
  softphone: Type.Union(
    [
      Type.Object({
        wsUrl: Type.String({ description: 'drachtio-server\'s SIP WebSocket (config sip.softphone.wsUrl)' }),
        domain: Type.String({ description: 'The SIP domain of agents\' addresses (sip:<agent>@<domain>), the digest realm' }),
      }),
      Type.Null(),
    ],
    { description: 'Where the agent console\'s browser softphone registers (no credentials: the agent types its SIP password); null when it is off' },
  ),
});

/** `GET reasons`: Not Ready reasons to offer. */
export const ReasonsBody = Type.Object({
  notReady: Type.Array(
    Type.Object({
      code: Type.Integer(),
      label: Type.String(),
      origin: Type.Union([Type.Literal('seed'), Type.Literal('site')], { description: 'seed: the operation-log table (seed 004); site: config busyReasons (200-250)' }),
      system: Type.Boolean({ description: 'Set by the platform or a supervisor (no answer, forced, rejected a call), not chosen by agents themselves' }),
    }),
  ),
});

export const OplogQuery = Type.Object(
  {
    agent: Type.Optional(Type.String({ maxLength: 64 })),
    // Bounded: a larger number (or `1e400`, which coerces to Infinity) is no stream id Redis takes.
    since: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Entries after this sequence number, oldest first; omitted: the latest entries' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);
export type OplogQueryT = Static<typeof OplogQuery>;

export const OplogBody = Type.Object({
  entries: Type.Array(
    Type.Object({
      seq: Type.Integer(),
      ts: Type.Integer(),
      agent: Type.String(),
      queue: Type.String(),
      op: Type.Integer({ description: 'Operation type (seed 004)' }),
      object: Type.Integer(),
      reason: Type.Integer(),
      state: StateEnum,
      instance: Type.String(),
      by: Type.Optional(Type.String({ description: 'Who forced the change or monitored the agent (a supervisor id or a token name)' })),
      conversation: Type.Optional(Type.String({ description: 'The conversation of a call operation' })),
    }),
  ),
  next: Type.Union([Type.Integer(), Type.Null()], { description: 'Pass as `since` to continue' }),
});

const AuditFindingSchema = Type.Object({
  kind: Type.Union(AUDIT_KINDS.map((k) => Type.Literal(k))),
  key: Type.String({ description: 'The Redis key where the invariant is broken' }),
  explanation: Type.String(),
  agent: Type.Optional(Type.String()),
  queue: Type.Optional(Type.String()),
  call: Type.Optional(Type.String()),
  task: Type.Optional(Type.String()),
  conversation: Type.Optional(Type.String()),
});

/** The invariant audit: empty `findings` is a healthy call center. */
export const AuditBody = Type.Object({ findings: Type.Array(AuditFindingSchema) });

/** An audit repair: what each finding's repair did, then what the audit finds afterwards. */
export const AuditRepairBody = Type.Object({
  repaired: Type.Array(Type.Object({ finding: AuditFindingSchema, action: Type.String(), applied: Type.Boolean({ description: 'False when the invariant held again by the time the repair ran' }) })),
  findings: Type.Array(AuditFindingSchema),
});

/** Standard error responses of an authenticated route. */
export const errorResponses = (...codes: number[]): Record<number, { $ref: string }> =>
  Object.fromEntries([401, ...codes].map((c) => [c, { $ref: 'Error#' }]));

const ConversationId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Conversation id' });

export const ConversationParams = Type.Object({ cc: Type.String({ maxLength: 64 }), id: ConversationId });
export type ConversationParamsT = Static<typeof ConversationParams>;

export const ConversationsQuery = Type.Object(
  { agent: Type.Optional(Type.String({ maxLength: 64 })), queue: Type.Optional(QueueId) },
  { additionalProperties: false },
);
export type ConversationsQueryT = Static<typeof ConversationsQuery>;

export const PauseBody = Type.Object({ conversation_id: ConversationId }, { additionalProperties: false });
export type PauseBodyT = Static<typeof PauseBody>;

export const ResumeBody = Type.Object(
  {
    conversation_id: ConversationId,
    mode: Type.Optional(Type.Integer({ description: 'Listen/speak mode after the resume: 1 listen and speak (default), 2 listen only, 3 speak only; 4 (hold) is refused with 422' })),
  },
  { additionalProperties: false },
);
export type ResumeBodyT = Static<typeof ResumeBody>;

/** The Idempotency-Key header of the operations that may be handed to another instance. */
export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'A retried request with the same key is not executed twice' })),
});
export type IdempotencyHeadersT = Static<typeof IdempotencyHeaders>;

const ModeEnum = Type.Integer({ minimum: 1, maximum: 4, description: '1 listen and speak, 2 listen only, 3 speak only, 4 neither (hold)' });

export const LegBody = Type.Object({
  leg: Type.String(),
  kind: Type.Union(['caller', 'agent', 'external', 'supervisor'].map((k) => Type.Literal(k))),
  agent: Type.Optional(Type.String()),
  supervisor: Type.Optional(Type.String({ description: 'A supervisor leg: the supervisor' })),
  monitor: Type.Optional(Type.Union(['listen', 'whisper', 'barge', 'intercept'].map((k) => Type.Literal(k)), { description: 'A supervisor leg: how it monitors' })),
  mode: ModeEnum,
  state: Type.Union(['dialing', 'up', 'gone'].map((k) => Type.Literal(k))),
  since: Type.Integer({ description: 'ms since epoch (Redis clock) the leg is in its state' }),
});

export const ConversationBody = Type.Object({
  id: Type.String(),
  state: Type.Union([Type.Literal('active'), Type.Literal('ended')]),
  owner: Type.String({ description: 'Incarnation of the instance holding its calls' }),
  created: Type.Integer(),
  task: Type.Union([Type.String(), Type.Null()], { description: 'The queue task of the conversation' }),
  queue: Type.Union([Type.String(), Type.Null()]),
  taskQueued: Type.Boolean({ description: 'True while the task waits in its queue' }),
  legs: Type.Array(LegBody),
});

/** `GET conversations`. */
export const ConversationsBody = Type.Object({ conversations: Type.Array(ConversationBody) });

export const ModeResultBody = Type.Object({ conversation: Type.String(), leg: Type.String(), prev: ModeEnum, mode: ModeEnum });

export const AgentConversationBody = Type.Object({ id: Type.String(), leg: Type.String(), mode: ModeEnum, active: Type.Boolean({ description: 'The agent is not on hold (mode 4) there' }) });

const TaskId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Queue task id (queue.caller events, X-CCS-Task on the offer INVITE)' });

export const RejectBody = Type.Object(
  { queue_task_id: TaskId, data: Type.Optional(Type.String({ maxLength: 1024, description: 'Returned to the IVR that queued the caller (BYE header X-CCS-Reject-Data, percent-encoded)' })) },
  { additionalProperties: false },
);
export type RejectBodyT = Static<typeof RejectBody>;

export const ForwardBody = Type.Object(
  { queue_task_id: TaskId, enqueue: Type.String({ minLength: 1, maxLength: 8192, description: 'enqueue XML: the new target-agent conditions (same queue); priority kept unless set' }) },
  { additionalProperties: false },
);
export type ForwardBodyT = Static<typeof ForwardBody>;

export const VerdictBody = Type.Object({
  task: Type.String(),
  agent: Type.String(),
  outcome: Type.Literal('applied'),
});

const PhoneNumber = Type.String({ minLength: 1, maxLength: 32, description: 'Phone number: digits, an optional leading +, * and #' });
const OutsideLimits = {
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'Calling number presented: one of the outbound trunk\'s callerIds (default: its first, else the agent\'s extension)' })),
  max_dial_seconds: Type.Optional(Type.Integer({ description: 'Ring limit, 1..300 s (default 60); a Redis deadline' })),
  max_answer_seconds: Type.Integer({ description: 'Longest the call may last once answered, 1..86400 s; a Redis deadline, so it holds if the instance dies' }),
};

export const CallOutBody = Type.Object({ to: PhoneNumber, ...OutsideLimits }, { additionalProperties: false });
export type CallOutBodyT = Static<typeof CallOutBody>;

export const XferOutBody = Type.Object({ conversation_id: ConversationId, to: PhoneNumber, ...OutsideLimits }, { additionalProperties: false });
export type XferOutBodyT = Static<typeof XferOutBody>;

export const XferAgentBody = Type.Object(
  { conversation_id: ConversationId, queue: Type.String({ minLength: 1, maxLength: 8192, description: 'enqueue XML: the queue and target-agent conditions the caller is queued with' }) },
  { additionalProperties: false },
);
export type XferAgentBodyT = Static<typeof XferAgentBody>;

export const CallStartedBody = Type.Object({
  conversation: Type.String(),
  agent: Type.String(),
  to: Type.String(),
  state: Type.String({ description: 'ringing_agent (click-to-dial: the agent\'s phone rings first) or dialing' }),
  leg: Type.Optional(Type.String()),
});

export const TransferredBody = Type.Object({ conversation: Type.String(), task: Type.String(), queue: Type.String() });

/** What the owner answers to consult, consult_complete and consult_cancel: the conversations involved, and more per operation. */
export const ConsultResultBody = Type.Object(
  {
    conversation: Type.String({ description: 'consult: the new conversation with the consulted party; consult_complete / consult_cancel: the caller\'s conversation' }),
    consulting: Type.Optional(Type.String({ description: 'consult: the caller\'s conversation, on hold meanwhile' })),
    consultation: Type.Optional(Type.String({ description: 'consult_complete / consult_cancel: the consultation\'s conversation' })),
  },
  { additionalProperties: true },
);

export const CallAgentBody = Type.Object(
  { enqueue: Type.String({ minLength: 1, maxLength: 8192, description: 'enqueue XML: the queue and target-agent conditions the colleague is chosen by' }) },
  { additionalProperties: false },
);
export type CallAgentBodyT = Static<typeof CallAgentBody>;

export const CallAgentStartedBody = Type.Object({
  conversation: Type.String(),
  agent: Type.String(),
  task: Type.String({ description: 'The queue task the colleague is chosen by (queue.caller events)' }),
  queue: Type.String(),
  state: Type.String({ description: 'ringing_agent (the calling agent\'s phone rings first) or queued' }),
});

export const ConsultBody = Type.Object(
  {
    conversation_id: ConversationId,
    enqueue: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: 'enqueue XML choosing the colleague to consult (as call_agent); or give `to`' })),
    to: Type.Optional(PhoneNumber),
    from: OutsideLimits.from,
    max_dial_seconds: OutsideLimits.max_dial_seconds,
    max_answer_seconds: Type.Optional(Type.Integer({ description: 'With `to`: longest the consultation call may last, 1..86400 s (default 3600)' })),
  },
  { additionalProperties: false },
);
export type ConsultBodyT = Static<typeof ConsultBody>;

export const ConsultCompleteBody = Type.Object(
  { conversation_id: ConversationId, how: Type.Union([Type.Literal('transfer'), Type.Literal('conference')], { description: 'transfer: the consulted party joins the caller and the agent leaves; conference: all three together' }) },
  { additionalProperties: false },
);
export type ConsultCompleteBodyT = Static<typeof ConsultCompleteBody>;

/** Supervisor routes (DESIGN.md section 12). */
export const SupervisorParams = Type.Object({ cc: Type.String({ maxLength: 64 }), sup: Type.String({ maxLength: 64 }) });
export type SupervisorParamsT = Static<typeof SupervisorParams>;

const SupervisorId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'A configured supervisor, named as the entry\'s object (admin tokens only; a supervisor token is its own)' });

export const ForceLogoutBody = Type.Object(
  { queue: Type.Optional(QueueId), reason: Type.Optional(Type.Integer({ description: 'Sign-out reason of the agent\'s own entry (op 0): 257 forced (default), 1-264' })), supervisor: Type.Optional(SupervisorId) },
  { additionalProperties: false },
);
export const ForceReadyBody = Type.Object({ queue: Type.Optional(QueueId), supervisor: Type.Optional(SupervisorId) }, { additionalProperties: false });
export const ForceNotReadyBody = Type.Object(
  { queue: Type.Optional(QueueId), reason: Type.Optional(Type.Integer({ description: 'Busy reason of the agent\'s own entry (op 3): 3 forced by a QC inspector (default), 1-7, 200-250' })), supervisor: Type.Optional(SupervisorId) },
  { additionalProperties: false },
);
export type ForceBodyT = Static<typeof ForceLogoutBody>;

export const MonitorBody = Type.Object(
  {
    agent: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'The agent whose active conversation to join' }),
    mode: Type.Union(['listen', 'whisper', 'barge', 'intercept'].map((k) => Type.Literal(k)), { default: 'listen' }),
  },
  { additionalProperties: false },
);
export type MonitorBodyT = Static<typeof MonitorBody>;

export const MonitorStartedBody = Type.Object({
  conversation: Type.String(),
  agent: Type.String(),
  supervisor: Type.String(),
  mode: Type.String(),
  state: Type.Union([Type.Literal('ringing_supervisor'), Type.Literal('monitoring')], { description: 'ringing_supervisor: its phones ring first (the join comes as a conversation event); monitoring: the mode of a leg already there changed' }),
});

export const MonitorStoppedBody = Type.Object({ conversation: Type.String(), supervisor: Type.String(), stopped: Type.Literal(true) });

export const SupervisorBody = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  extension: Type.String(),
  queues: Type.Array(Type.String()),
  registered: Type.Boolean({ description: 'Has a live registration' }),
  monitoring: Type.Union([Type.Object({ conversation: Type.String(), monitor: Type.String() }), Type.Null()]),
});
