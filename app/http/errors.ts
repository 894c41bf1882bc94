/**
 * The one place where errors become HTTP responses `{"error": code, "message": ...}`.
 * Domain errors carry their code; framework and Redis errors are classified here.
 */
import type { FastifyError } from 'fastify';
import { CcsError, type ErrorCode } from '../../lib/errors';

/** HTTP status of each domain error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  unknown_callcenter: 404,
  unknown_agent: 404,
  unknown_queue: 404,
  not_member: 403,
  illegal_transition: 409,
  invalid_request: 422,
  malformed_dial_string: 400,
  unauthorized: 401,
  unavailable: 503,
  config_invalid: 500,
  unknown_conversation: 404,
  not_in_conversation: 403,
  task_not_offered: 409,
  task_answered: 409,
  malformed_enqueue: 400,
  owner_unreachable: 503,
  media_failed: 502,
  conflict: 409,
  no_outbound_trunk: 409,
  agent_unreachable: 409,
  from_not_allowed: 422,
  not_transferable: 409,
  unknown_supervisor: 404,
  forbidden: 403,
  not_on_call: 409,
  not_monitoring: 409,
  supervisor_unreachable: 409,
  too_many_failures: 429,
};

/** An error response. */
export interface HttpError {
  status: number;
  body: { error: string; message: string; details?: Record<string, unknown> };
}

/** Fastify's own error codes for bad requests, mapped to ours. */
const FASTIFY_CODES: Readonly<Record<string, [number, string]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'malformed_body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'malformed_body'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_body'],
};

function isRedisUnavailable(err: Error): boolean {
  // ioredis: MaxRetriesPerRequestError while reconnecting, "Connection is closed", ECONNREFUSED,
  // "Stream isn't writeable" (no offline queue), "Command timed out", "Socket timeout"; and a
  // script Redis refused because it arrived after its write deadline (CCS_STALE).
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable|LOADING|Command timed out|Socket timeout|^CCS_STALE/.test(err.message)
  );
}

/** Classifies any thrown value. `internal` (500) is the only case that deserves an error log. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof CcsError) {
    return { status: HTTP_STATUS[err.code], body: { error: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
  }
  if (err instanceof Error) {
    const fe = err as FastifyError;
    if (fe.validation !== undefined) return { status: 400, body: { error: 'bad_request', message: fe.message } };
    const mapped = fe.code !== undefined ? FASTIFY_CODES[fe.code] : undefined;
    if (mapped !== undefined) return { status: mapped[0], body: { error: mapped[1], message: fe.message } };
    if (err instanceof SyntaxError || fe.statusCode === 400) return { status: 400, body: { error: 'malformed_body', message: fe.message } };
    if (isRedisUnavailable(err)) return { status: 503, body: { error: 'unavailable', message: 'state store (Redis) is unavailable' } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error' } };
}
