/**
 * Domain errors. Each carries a stable machine-readable `code`; the mapping of codes to
 * HTTP statuses (app/http/errors.ts) and SIP statuses (fac/outcome.ts) lives in exactly one place each,
 * so lib/ never knows about transports.
 */

/** Stable error codes shared by REST (`{"error": code}`), SIP reason phrases and logs. */
export type ErrorCode =
  | 'unknown_callcenter'
  | 'unknown_agent'
  | 'unknown_queue'
  | 'not_member'
  | 'illegal_transition'
  | 'invalid_request'
  | 'malformed_dial_string'
  | 'unauthorized'
  | 'unavailable'
  | 'config_invalid'
  | 'unknown_conversation'
  | 'not_in_conversation'
  | 'task_not_offered'
  | 'task_answered'
  | 'malformed_enqueue'
  | 'owner_unreachable'
  | 'media_failed'
  | 'conflict'
  | 'no_outbound_trunk'
  | 'agent_unreachable'
  | 'from_not_allowed'
  | 'not_transferable'
  | 'unknown_supervisor'
  | 'forbidden'
  | 'not_on_call'
  | 'not_monitoring'
  | 'supervisor_unreachable'
  | 'too_many_failures';

/** Base class of every error ccswitch raises on purpose. */
export class CcsError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A call center, agent or queue that the configuration does not declare. */
export class NotFoundError extends CcsError {
  constructor(kind: 'callcenter' | 'agent' | 'queue' | 'supervisor', id: string) {
    super(`unknown_${kind}`, `unknown ${kind === 'callcenter' ? 'call center' : kind} '${id}'`, { [kind]: id });
  }
}

/** The agent exists and the queue exists, but the agent is not one of its members. */
export class NotMemberError extends CcsError {
  constructor(agent: string, queue: string) {
    super('not_member', `agent '${agent}' is not a member of queue '${queue}'`, { agent, queue });
  }
}

/** A state-machine move that the transition table does not allow; never applied. */
export class IllegalTransitionError extends CcsError {
  constructor(
    readonly from: string,
    readonly event: string,
    readonly queue?: string,
  ) {
    super(
      'illegal_transition',
      queue === undefined
        ? `'${event}' is not allowed from state '${from}'`
        : `'${event}' is not allowed from state '${from}' in queue '${queue}'`,
      { from, event, ...(queue === undefined ? {} : { queue }) },
    );
  }
}

/** Input that passed the schema but makes no sense (e.g. a reason code out of range). */
export class InvalidRequestError extends CcsError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('invalid_request', message, details);
  }
}

/** A dialed string that is not a complete, well-formed feature code (SIP 484 Address Incomplete). */
export class MalformedDialStringError extends CcsError {
  constructor(dial: string, why: string) {
    super('malformed_dial_string', `'${dial}' is not a valid feature code: ${why}`, { dial });
  }
}

/** A dependency (Redis, drachtio, media server) is not reachable right now. */
export class UnavailableError extends CcsError {
  constructor(what: string, cause?: unknown) {
    super('unavailable', `${what} is unavailable`, cause instanceof Error ? { cause: cause.message } : undefined);
  }
}

/** The configuration file is invalid; the message names every offending key. */
export class ConfigError extends CcsError {
  constructor(readonly problems: string[]) {
    super('config_invalid', `invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
}

/** No live conversation with that id in the call center (REST 404). */
export class UnknownConversationError extends CcsError {
  constructor(id: string) {
    super('unknown_conversation', `unknown conversation '${id}'`, { conversation: id });
  }
}

/** The agent has no leg in that conversation (REST 403). */
export class NotInConversationError extends CcsError {
  constructor(agent: string, conversation: string) {
    super('not_in_conversation', `agent '${agent}' is not in conversation '${conversation}'`, { agent, conversation });
  }
}

/** The queue task is not being offered to this agent (REST 409), or was answered already. */
export class TaskStateError extends CcsError {
  constructor(code: 'task_not_offered' | 'task_answered', agent: string, task: string) {
    super(code, code === 'task_answered' ? `queue task '${task}' was answered already` : `queue task '${task}' is not being offered to agent '${agent}'`, { agent, task });
  }
}

/** An `enqueue` / `queue` XML document that does not parse or names what does not exist (REST 400). */
export class MalformedEnqueueError extends CcsError {
  constructor(why: string) {
    super('malformed_enqueue', `bad enqueue document: ${why}`);
  }
}

/**
 * The instance owning a conversation did not take the command in time (REST 503): nothing was
 * applied; the caller may retry with the same Idempotency-Key.
 */
export class OwnerUnreachableError extends CcsError {
  constructor(owner: string, conversation?: string) {
    super('owner_unreachable', `the instance holding ${conversation === undefined ? 'this call' : `conversation '${conversation}'`} did not answer`, { owner, ...(conversation === undefined ? {} : { conversation }) });
  }
}

/** The media server refused a change; nothing of it was recorded (REST 502). */
export class MediaFailedError extends CcsError {
  constructor(what: string, cause?: unknown) {
    super('media_failed', `the media server refused ${what}`, cause instanceof Error ? { cause: cause.message } : undefined);
  }
}

/** Another change to the same thing won a race; retry (REST 409). */
export class ConflictError extends CcsError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('conflict', message, details);
  }
}

/** The call center has no trunk with an `outbound` target: nobody outside can be called (REST 409). */
export class NoOutboundTrunkError extends CcsError {
  constructor(cc: string) {
    super('no_outbound_trunk', `call center '${cc}' has no outbound trunk (sip.trunks.<name>.outbound)`, { callcenter: cc });
  }
}

/** The agent has no registered device to ring (REST 409). */
export class AgentUnreachableError extends CcsError {
  constructor(agent: string) {
    super('agent_unreachable', `agent '${agent}' has no registered device`, { agent });
  }
}

/** A calling number the outbound trunk does not allow (REST 422): never free text in a SIP header. */
export class FromNotAllowedError extends CcsError {
  constructor(from: string, allowed: readonly string[]) {
    super('from_not_allowed', `'${from}' is not a calling number the outbound trunk allows`, { from, allowed: [...allowed] });
  }
}

/** The conversation cannot be transferred that way (REST 409), e.g. no caller to transfer. */
export class NotTransferableError extends CcsError {
  constructor(conversation: string, why: string) {
    super('not_transferable', `conversation '${conversation}' cannot be transferred: ${why}`, { conversation });
  }
}

/**
 * The token's role does not reach what the request acts on (REST 403, WS error frame, SIP 403):
 * an agent acting on another agent, a supervisor outside its queues (DESIGN.md section 12).
 */
export class ForbiddenError extends CcsError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** The agent to monitor is in no active conversation (REST 409; SIP: the error prompt, then BYE). */
export class NotOnCallError extends CcsError {
  constructor(agent: string) {
    super('not_on_call', `agent '${agent}' is not on a call`, { agent });
  }
}

/** The supervisor monitors nobody (monitor/stop, REST 409). */
export class NotMonitoringError extends CcsError {
  constructor(supervisor: string) {
    super('not_monitoring', `supervisor '${supervisor}' is not monitoring`, { supervisor });
  }
}

/** The supervisor has no registered device to ring for a REST monitor (REST 409). */
export class SupervisorUnreachableError extends CcsError {
  constructor(supervisor: string) {
    super('supervisor_unreachable', `supervisor '${supervisor}' has no registered device`, { supervisor });
  }
}
