import { AgentEvent as E, AgentState as S, transition, type TransitionContext } from '../../lib/agent/stateMachine';
import { IllegalTransitionError } from '../../lib/errors';

/**
 * The expected matrix, written from DESIGN.md section 3 (not derived from the table under
 * test). Context: autoReady on, wrapUpSeconds 5, remembered state not_ready.
 * 'X' = illegal, '=' = legal no-op, otherwise the state moved to.
 */
const ctx: TransitionContext = { autoReady: true, wrapUpSeconds: 5, remembered: S.NotReady, currentReason: '1', reason: '4' };
const expected: Record<S, Record<E, S | 'X' | '='>> = {
  [S.LoggedOut]: {
    [E.Login]: S.Ready, [E.Logout]: '=', [E.Ready]: 'X', [E.NotReady]: 'X',
    [E.AcdCallAnswered]: 'X', [E.OtherCallStarted]: '=', [E.CallEnded]: '=', [E.WrapUpExpired]: '=',
  },
  [S.NotReady]: {
    [E.Login]: '=', [E.Logout]: S.LoggedOut, [E.Ready]: S.Ready, [E.NotReady]: S.NotReady,
    [E.AcdCallAnswered]: 'X', [E.OtherCallStarted]: S.OtherCall, [E.CallEnded]: '=', [E.WrapUpExpired]: '=',
  },
  [S.Ready]: {
    [E.Login]: '=', [E.Logout]: S.LoggedOut, [E.Ready]: '=', [E.NotReady]: S.NotReady,
    [E.AcdCallAnswered]: S.QueueCall, [E.OtherCallStarted]: S.OtherCall, [E.CallEnded]: '=', [E.WrapUpExpired]: '=',
  },
  [S.QueueCall]: {
    [E.Login]: '=', [E.Logout]: S.LoggedOut, [E.Ready]: 'X', [E.NotReady]: 'X',
    [E.AcdCallAnswered]: 'X', [E.OtherCallStarted]: '=', [E.CallEnded]: S.WrapUp, [E.WrapUpExpired]: '=',
  },
  [S.OtherCall]: {
    [E.Login]: '=', [E.Logout]: S.LoggedOut, [E.Ready]: 'X', [E.NotReady]: 'X',
    [E.AcdCallAnswered]: 'X', [E.OtherCallStarted]: '=', [E.CallEnded]: S.NotReady, [E.WrapUpExpired]: '=',
  },
  [S.WrapUp]: {
    [E.Login]: '=', [E.Logout]: S.LoggedOut, [E.Ready]: S.Ready, [E.NotReady]: S.NotReady,
    [E.AcdCallAnswered]: 'X', [E.OtherCallStarted]: S.OtherCall, [E.CallEnded]: '=', [E.WrapUpExpired]: S.Ready,
  },
};

const pairs = Object.values(S).flatMap((from) => Object.values(E).map((ev) => [from, ev, expected[from][ev]] as const));

describe('agent transition table', () => {
  it('covers every state and every event', () => {
    expect(pairs).toHaveLength(Object.values(S).length * Object.values(E).length);
  });

  it.each(pairs)('%s + %s → %s', (from, ev, want) => {
    if (want === 'X') {
      expect(() => transition(from, ev, ctx)).toThrow(IllegalTransitionError);
      return;
    }
    const out = transition(from, ev, ctx);
    if (want === '=') expect(out.kind).toBe('noop');
    else expect(out).toEqual({ kind: 'move', to: want, remember: want === S.OtherCall });
  });

  it('an illegal move throws a typed error naming the state and the event', () => {
    try {
      transition(S.LoggedOut, E.Ready, ctx);
      throw new Error('no throw');
    } catch (err) {
      expect(err).toBeInstanceOf(IllegalTransitionError);
      expect((err as IllegalTransitionError).code).toBe('illegal_transition');
      expect((err as IllegalTransitionError).from).toBe(S.LoggedOut);
      expect((err as IllegalTransitionError).event).toBe(E.Ready);
    }
  });

  describe('queue options decide the target', () => {
    it('login goes to not_ready when the queue has no autoReady', () => {
      expect(transition(S.LoggedOut, E.Login, { ...ctx, autoReady: false })).toEqual({ kind: 'move', to: S.NotReady, remember: false });
    });
    it('a queue call ends in ready when there is no wrap-up and autoReady is on', () => {
      expect(transition(S.QueueCall, E.CallEnded, { ...ctx, wrapUpSeconds: 0 })).toEqual({ kind: 'move', to: S.Ready, remember: false });
    });
    it('a queue call ends in not_ready when there is no wrap-up and autoReady is off', () => {
      expect(transition(S.QueueCall, E.CallEnded, { autoReady: false, wrapUpSeconds: 0 })).toEqual({ kind: 'move', to: S.NotReady, remember: false });
    });
    it('the wrap-up deadline ends in not_ready without autoReady', () => {
      expect(transition(S.WrapUp, E.WrapUpExpired, { autoReady: false, wrapUpSeconds: 5 })).toEqual({ kind: 'move', to: S.NotReady, remember: false });
    });
  });

  describe('other call remembers the state before it', () => {
    it.each([S.Ready, S.NotReady, S.WrapUp])('returns to %s when the call ends', (remembered) => {
      expect(transition(S.OtherCall, E.CallEnded, { ...ctx, remembered })).toEqual({ kind: 'move', to: remembered, remember: false });
    });
    it('a wrap-up that runs out during the other call makes the remembered state the auto state', () => {
      expect(transition(S.OtherCall, E.WrapUpExpired, { ...ctx, remembered: S.WrapUp })).toEqual({ kind: 'remember', remembered: S.Ready });
    });
    it('with nothing remembered, the call ends in the auto state', () => {
      expect(transition(S.OtherCall, E.CallEnded, { autoReady: false, wrapUpSeconds: 0 })).toEqual({ kind: 'move', to: S.NotReady, remember: false });
    });
  });

  describe('not ready reasons', () => {
    it('not_ready again with the same reason is a no-op', () => {
      expect(transition(S.NotReady, E.NotReady, { ...ctx, currentReason: '4', reason: '4' }).kind).toBe('noop');
    });
    it('not_ready again with another reason is a move (the new reason is logged)', () => {
      expect(transition(S.NotReady, E.NotReady, { ...ctx, currentReason: '1', reason: '4' })).toEqual({ kind: 'move', to: S.NotReady, remember: false });
    });
  });
});
