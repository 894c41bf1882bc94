/**
 * The one place where errors become SIP final responses (DESIGN.md section 4): each FAC
 * failure has its own status and reason phrase, so a desk phone (or a sipp test) sees why.
 */
import { CcsError, type ErrorCode } from '../../lib/errors';

/** A SIP final response: status and reason phrase. */
export interface SipFailure {
  status: number;
  reason: string;
}

const BY_CODE: Readonly<Record<ErrorCode, SipFailure>> = {
  unknown_callcenter: { status: 404, reason: 'Unknown Call Center' },
  unknown_agent: { status: 404, reason: 'Unknown Agent' },
  unknown_queue: { status: 404, reason: 'Unknown Queue' },
  not_member: { status: 403, reason: 'Not A Queue Member' },
  illegal_transition: { status: 409, reason: 'Illegal State Transition' },
  // A reason code out of range makes the dialed code itself malformed.
  invalid_request: { status: 484, reason: 'Invalid Feature Code' },
  malformed_dial_string: { status: 484, reason: 'Address Incomplete' },
  unauthorized: { status: 403, reason: 'Not Authenticated' },
  unavailable: { status: 503, reason: 'Service Unavailable' },
  config_invalid: { status: 500, reason: 'Server Internal Error' },
  unknown_conversation: { status: 481, reason: 'Unknown Conversation' },
  not_in_conversation: { status: 403, reason: 'Not In Conversation' },
  task_not_offered: { status: 409, reason: 'Task Not Offered' },
  task_answered: { status: 409, reason: 'Task Answered' },
  malformed_enqueue: { status: 400, reason: 'Bad Enqueue' },
  owner_unreachable: { status: 503, reason: 'Owner Unreachable' },
  media_failed: { status: 503, reason: 'Media Server Refused' },
  conflict: { status: 409, reason: 'Conflict' },
};

/** The SIP failure for any thrown value; anything unexpected is 500. */
export function toSipFailure(err: unknown): SipFailure {
  if (err instanceof CcsError) return BY_CODE[err.code];
  return { status: 500, reason: 'Server Internal Error' };
}
