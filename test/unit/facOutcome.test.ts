/** The outcome of every FAC result (fac/outcome.ts) and the prompt each gets (fac/prompts.ts). */
import { failureOf, outcomeOf, reasonHeader, reasonPhrase, statusOf } from '../../fac/outcome';
import { DEFAULT_PATTERNS, promptFor, QUEUE_BEEP } from '../../fac/prompts';
import type { ApplyResult, QueueResult } from '../../lib/agent/engine';
import { AgentState as S } from '../../lib/agent/stateMachine';
import { CcsError, IllegalTransitionError, InvalidRequestError, MalformedDialStringError, NotFoundError, NotMemberError, UnavailableError } from '../../lib/errors';

const r = (queue: string, from: S, to: S, changed = true, skipped = false): QueueResult => ({ queue, from, to, changed, ...(skipped ? { skipped: 'illegal_transition' as const } : {}) });
const result = (...results: QueueResult[]): ApplyResult => ({ agent: '1003', results, seqs: [] });

describe('FAC outcomes of successful operations', () => {
  it.each([
    ['*38 to two autoReady queues', 'login', result(r('8000', S.LoggedOut, S.Ready), r('8002', S.LoggedOut, S.Ready)), 'logged_in_ready', 2, 'logged in: ready in 2 queues'],
    ['*38 to one autoReady and one other queue', 'login', result(r('8000', S.LoggedOut, S.Ready), r('8001', S.LoggedOut, S.NotReady)), 'logged_in_ready', 2, 'logged in: ready in 1 queue, not ready in 1 queue'],
    ['*388001 (no autoReady)', 'login', result(r('8001', S.LoggedOut, S.NotReady)), 'logged_in_not_ready', 1, 'logged in: not ready in 1 queue'],
    ['*38 while logged in everywhere', 'login', result(r('8000', S.Ready, S.Ready, false)), 'logged_in_ready', 0, 'already logged in'],
    ['*36 in all queues, one skipped', 'ready', result(r('8000', S.NotReady, S.Ready), r('8001', S.LoggedOut, S.LoggedOut, false, true)), 'ready', 1, 'ready in 1 queue'],
    ['*36 while ready', 'ready', result(r('8000', S.Ready, S.Ready, false)), 'ready', 0, 'already ready'],
    ['*37*4 in two queues', 'notReady', result(r('8000', S.Ready, S.NotReady), r('8001', S.Ready, S.NotReady)), 'not_ready', 2, 'not ready in 2 queues'],
    ['*39', 'logout', result(r('8000', S.Ready, S.LoggedOut), r('8001', S.NotReady, S.LoggedOut)), 'logged_out', 2, 'logged out of 2 queues'],
    ['*39 while logged out', 'logout', result(r('8000', S.LoggedOut, S.LoggedOut, false)), 'logged_out', 0, 'already logged out'],
  ] as const)('%s: %s', (_what, action, res, outcome, queues, text) => {
    expect(outcomeOf(action, res)).toEqual({ outcome, queues, text, status: 200 });
  });

  it('status reads the states back: one entry per queue', () => {
    expect(statusOf([{ queue: '8000', state: S.Ready }, { queue: '8001', state: S.NotReady }])).toEqual({ outcome: 'status', queues: 2, text: '8000 ready, 8001 not ready', status: 200 });
  });
});

describe('FAC outcomes of refusals', () => {
  it.each([
    ['not a member', new NotMemberError('1001', '8001'), 'not_member', 403, 'not a member of queue 8001'],
    ['no such queue', new NotFoundError('queue', '9999'), 'unknown_queue', 404, 'no queue 9999'],
    ['not allowed now', new IllegalTransitionError('logged_out', 'ready', '8000'), 'not_allowed', 409, 'not allowed while logged out in queue 8000'],
    ['a reason out of range', new InvalidRequestError('reason 999'), 'malformed', 484, 'malformed feature code'],
    ['a malformed code', new MalformedDialStringError('*3', 'incomplete'), 'malformed', 484, 'malformed feature code'],
    ['not authenticated', new CcsError('unauthorized', 'x'), 'not_authenticated', 403, 'not authenticated'],
    ['Redis away', new UnavailableError('redis'), 'failed', 503, 'service unavailable'],
    ['a bug', new Error('boom'), 'failed', 500, 'server error'],
  ])('%s', (_what, err, outcome, status, text) => {
    expect(failureOf(err)).toEqual({ outcome, queues: 0, text, status });
  });

  it('texts become the BYE Reason and the reason phrase', () => {
    const f = failureOf(new NotMemberError('1001', '8001'));
    expect(reasonHeader(f)).toBe('SIP;cause=403;text="not a member of queue 8001"');
    expect(reasonPhrase(f)).toBe('Not a member of queue 8001');
  });
});

describe('FAC prompts', () => {
  it('every outcome has its own default pattern', () => {
    const patterns = Object.entries(DEFAULT_PATTERNS).filter(([o]) => o !== 'status').map(([, p]) => p.join(';'));
    expect(new Set(patterns).size).toBe(patterns.length);
  });
  it('a success adds one beep per queue changed; a failure none; a site prompt replaces the pattern', () => {
    const ok = outcomeOf('ready', result(r('8000', S.NotReady, S.Ready), r('8001', S.NotReady, S.Ready)));
    expect(promptFor(ok, undefined)).toBe(`tone_stream://${[...DEFAULT_PATTERNS.ready, QUEUE_BEEP, QUEUE_BEEP].join(';')}`);
    expect(promptFor(failureOf(new NotMemberError('1001', '8001')), undefined)).toBe(`tone_stream://${DEFAULT_PATTERNS.not_member.join(';')}`);
    expect(promptFor(ok, { ready: 'say:en:you are ready' })).toBe('say:en:you are ready');
  });
  it('status plays one tone per queue by state', () => {
    expect(promptFor(statusOf([{ queue: '8000', state: S.Ready }, { queue: '8001', state: S.LoggedOut }]), undefined, [S.Ready, S.LoggedOut])).toBe('tone_stream://%(250,350,880);%(250,350,392)');
  });
});
