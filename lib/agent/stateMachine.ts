/**
 * The agent state machine of DESIGN.md section 3, per agent per queue, as one explicit
 * transition table. The same table is compiled into the Redis Lua script
 * (lib/store/scripts.ts) so the checked move and the stored move can never disagree;
 * test/redis/stateMachineParity.test.ts proves that for every (state, event) pair.
 */
import { IllegalTransitionError } from '../errors';

/** Agent state in one queue; the values are the wire names. */
export enum AgentState {
  LoggedOut = 'logged_out',
  NotReady = 'not_ready',
  Ready = 'ready',
  QueueCall = 'queue_call',
  OtherCall = 'other_call',
  WrapUp = 'wrap_up',
}

/** Everything that can happen to an agent in one queue. */
export enum AgentEvent {
  Login = 'login',
  Logout = 'logout',
  Ready = 'ready',
  NotReady = 'not_ready',
  /** An ACD call of this queue was answered by the agent. */
  AcdCallAnswered = 'acd_call_answered',
  /** Any call this queue did not assign started (non-ACD, or ACD of another queue). */
  OtherCallStarted = 'other_call_started',
  CallEnded = 'call_ended',
  WrapUpExpired = 'wrap_up_expired',
}

/** Targets resolved from the queue's options or the agent's remembered state. */
export enum Target {
  /** `ready` if the queue has autoReady, else `not_ready`. */
  Auto = '@auto',
  /** `wrap_up` if the queue has wrapUpSeconds > 0, else Auto. */
  AfterCall = '@after_call',
  /** The state remembered when the agent went to other_call. */
  Remembered = '@remembered',
}

/** One cell of the table. */
export type Rule =
  /** Change state; `remember` stores the state left behind (going to other_call). */
  | { readonly kind: 'move'; readonly to: AgentState | Target; readonly remember?: boolean }
  /** Nothing to do, and that is fine (idempotent request, stale timer, call event of a logged-out queue). */
  | { readonly kind: 'ignore' }
  /** Stay, but the remembered state becomes the Auto state (wrap-up ran out during an other call). */
  | { readonly kind: 'remember_auto' };

const move = (to: AgentState | Target, remember = false): Rule => (remember ? { kind: 'move', to, remember } : { kind: 'move', to });
const ignore: Rule = { kind: 'ignore' };
const S = AgentState;
const E = AgentEvent;

/**
 * The transition table. A missing cell is an illegal move. Login while logged in and
 * logout while logged out are idempotent (ignored), which is what a REST client or a desk
 * phone user retrying a code expects; DESIGN.md is silent on them.
 */
export const TRANSITIONS: Readonly<Record<AgentState, Partial<Record<AgentEvent, Rule>>>> = {
  [S.LoggedOut]: {
    [E.Login]: move(Target.Auto),
    [E.Logout]: ignore,
    [E.OtherCallStarted]: ignore,
    [E.CallEnded]: ignore,
    [E.WrapUpExpired]: ignore,
  },
  [S.NotReady]: {
    [E.Login]: ignore,
    [E.Logout]: move(S.LoggedOut),
    [E.Ready]: move(S.Ready),
    [E.NotReady]: move(S.NotReady),
    [E.OtherCallStarted]: move(S.OtherCall, true),
    [E.CallEnded]: ignore,
    [E.WrapUpExpired]: ignore,
  },
  [S.Ready]: {
    [E.Login]: ignore,
    [E.Logout]: move(S.LoggedOut),
    [E.Ready]: ignore,
    [E.NotReady]: move(S.NotReady),
    [E.AcdCallAnswered]: move(S.QueueCall),
    [E.OtherCallStarted]: move(S.OtherCall, true),
    [E.CallEnded]: ignore,
    [E.WrapUpExpired]: ignore,
  },
  [S.QueueCall]: {
    [E.Login]: ignore,
    [E.Logout]: move(S.LoggedOut),
    [E.OtherCallStarted]: ignore,
    [E.CallEnded]: move(Target.AfterCall),
    [E.WrapUpExpired]: ignore,
  },
  [S.OtherCall]: {
    [E.Login]: ignore,
    [E.Logout]: move(S.LoggedOut),
    [E.OtherCallStarted]: ignore,
    [E.CallEnded]: move(Target.Remembered),
    [E.WrapUpExpired]: { kind: 'remember_auto' },
  },
  [S.WrapUp]: {
    [E.Login]: ignore,
    [E.Logout]: move(S.LoggedOut),
    [E.Ready]: move(S.Ready),
    [E.NotReady]: move(S.NotReady),
    [E.OtherCallStarted]: move(S.OtherCall, true),
    [E.CallEnded]: ignore,
    [E.WrapUpExpired]: move(Target.Auto),
  },
};

/** Queue options and agent memory a transition may depend on. */
export interface TransitionContext {
  readonly autoReady: boolean;
  readonly wrapUpSeconds: number;
  /** State remembered when the agent went to other_call, if any. */
  readonly remembered?: AgentState | undefined;
  /** Current not-ready reason, and the one requested: a not_ready → not_ready move with the same reason is a no-op. */
  readonly currentReason?: string | undefined;
  readonly reason?: string | undefined;
}

/** What a legal event does. */
export type Outcome =
  | { readonly kind: 'move'; readonly to: AgentState; readonly remember: boolean }
  | { readonly kind: 'noop' }
  | { readonly kind: 'remember'; readonly remembered: AgentState };

const STATES = new Set<string>(Object.values(AgentState));

/** Type guard for wire names read back from storage or requests. */
export function isAgentState(value: unknown): value is AgentState {
  return typeof value === 'string' && STATES.has(value);
}

function resolve(to: AgentState | Target, ctx: TransitionContext): AgentState {
  const auto = ctx.autoReady ? S.Ready : S.NotReady;
  switch (to) {
    case Target.Auto:
      return auto;
    case Target.AfterCall:
      return ctx.wrapUpSeconds > 0 ? S.WrapUp : auto;
    case Target.Remembered:
      return ctx.remembered ?? auto;
    default:
      return to;
  }
}

/**
 * The one checked transition: returns what `event` does to an agent in state `from`,
 * or throws {@link IllegalTransitionError} when the table has no such move.
 */
export function transition(from: AgentState, event: AgentEvent, ctx: TransitionContext): Outcome {
  const rule = TRANSITIONS[from][event];
  if (rule === undefined) throw new IllegalTransitionError(from, event);
  switch (rule.kind) {
    case 'ignore':
      return { kind: 'noop' };
    case 'remember_auto':
      return ctx.remembered === S.WrapUp ? { kind: 'remember', remembered: resolve(Target.Auto, ctx) } : { kind: 'noop' };
    case 'move': {
      const to = resolve(rule.to, ctx);
      if (to === from && (to !== S.NotReady || (ctx.reason ?? '') === (ctx.currentReason ?? ''))) return { kind: 'noop' };
      return { kind: 'move', to, remember: rule.remember === true };
    }
  }
}
