/** The conversation rules (lib/conversation/model.ts) as tables: one-active, ending, who may act, resume modes. */
import { InvalidRequestError, NotInConversationError, UnknownConversationError } from '../../lib/errors';
import { activeElsewhere, agentLegOf, hearsHoldMusic, LegKind as K, LegState as St, modeFlags, resumeMode, shouldEnd, type ConversationRecord, type LegRecord, type Mode } from '../../lib/conversation/model';

const leg = (id: string, kind: K, mode: Mode, state: St = St.Up, agent?: string): LegRecord => ({ leg: id, kind, mode, state, since: 0, ...(agent ? { agent } : {}) });
const conv = (id: string, legs: LegRecord[], o: Partial<ConversationRecord> = {}): ConversationRecord => ({ id, cc: 'default', owner: 'x', state: 'active', created: 0, taskQueued: false, legs, ...o });

describe('modes', () => {
  it.each([
    [1, false, false],
    [2, true, false],
    [3, false, true],
    [4, true, true],
  ] as const)('mode %i is mute=%s deaf=%s', (mode, mute, deaf) => {
    expect(modeFlags(mode)).toEqual({ mute, deaf });
  });

  it.each([[undefined, 1], [1, 1], [2, 2], [3, 3]] as const)('resume with mode %s resumes in mode %i', (given, want) => {
    expect(resumeMode(given)).toBe(want);
  });

  it.each([4, 0, 5, 1.5, '1', null])('resume with mode %p is refused with 422 invalid_request', (m) => {
    expect(() => resumeMode(m)).toThrow(InvalidRequestError);
  });
});

describe('who may act on a conversation', () => {
  const c = conv('c1', [leg('l1', K.Caller, 1), leg('l2', K.Agent, 1, St.Up, '1001'), leg('l3', K.Agent, 1, St.Gone, '1002')]);
  it('an agent with a live leg in it gets that leg', () => {
    expect(agentLegOf(c, 'c1', '1001').leg).toBe('l2');
  });
  it.each([
    ['an agent whose leg is gone', '1002'],
    ['an agent never in it', '1003'],
  ])('%s is refused with 403 not_in_conversation', (_what, agent) => {
    expect(() => agentLegOf(c, 'c1', agent)).toThrow(NotInConversationError);
  });
  it('a missing or ended conversation is 404 unknown_conversation', () => {
    expect(() => agentLegOf(undefined, 'c9', '1001')).toThrow(UnknownConversationError);
    expect(() => agentLegOf({ ...c, state: 'ended' }, 'c1', '1001')).toThrow(UnknownConversationError);
  });
});

describe('the one-active rule', () => {
  const c1 = conv('c1', [leg('a', K.Agent, 1, St.Up, '1001'), leg('x', K.Caller, 1)]);
  const c2 = conv('c2', [leg('b', K.Agent, 4, St.Up, '1001'), leg('y', K.Caller, 1)]);
  const c3 = conv('c3', [leg('c', K.Agent, 2, St.Up, '1001')]);
  const c4 = conv('c4', [leg('d', K.Agent, 1, St.Gone, '1001')]);
  const c5 = conv('c5', [leg('e', K.Agent, 1, St.Up, '1002')]);

  it.each([
    ['target c2: the agent is active in c1 and c3', 'c2', [c1, c2, c3], ['c1', 'c3']],
    ['target c1: only c3 (c2 is on hold)', 'c1', [c1, c2, c3], ['c3']],
    ['a gone leg does not count', 'c2', [c2, c4], []],
    ["another agent's leg does not count", 'c2', [c2, c5], []],
    ['an ended conversation does not count', 'c2', [{ ...c1, state: 'ended' as const }, c2], []],
  ])('%s', (_what, target, all, want) => {
    expect(activeElsewhere('1001', target, all).map((a) => a.conversation)).toEqual(want);
  });
});

describe('the ending rule', () => {
  it.each([
    ['caller alone with its task queued stays', [leg('c', K.Caller, 1)], true, false],
    ['caller alone without a task ends', [leg('c', K.Caller, 1)], false, true],
    ['caller and agent stay', [leg('c', K.Caller, 1), leg('a', K.Agent, 1, St.Up, '1')], false, false],
    ['agent alone ends (its caller left)', [leg('a', K.Agent, 1, St.Up, '1')], false, true],
    ['two agents stay', [leg('a', K.Agent, 1, St.Up, '1'), leg('b', K.Agent, 4, St.Up, '2')], false, false],
    ['caller and an outside party stay', [leg('c', K.Caller, 1), leg('e', K.External, 1)], false, false],
    ['caller and a supervisor end (a supervisor is no party)', [leg('c', K.Caller, 1), leg('s', K.Supervisor, 2)], false, true],
    ['agent with an outside party still dialing stays', [leg('a', K.Agent, 1, St.Up, '1'), leg('e', K.External, 1, St.Dialing)], false, false],
    ['no leg up ends, even with a task queued', [leg('c', K.Caller, 1, St.Gone)], true, true],
    ['only gone legs end', [leg('c', K.Caller, 1, St.Gone), leg('a', K.Agent, 1, St.Gone, '1')], false, true],
  ])('%s', (_what, legs, taskQueued, ends) => {
    expect(shouldEnd({ legs, taskQueued })).toBe(ends);
  });
});

describe('hold music', () => {
  it.each([
    ['a caller whose only peer is on hold hears it', leg('c', K.Caller, 1), [leg('a', K.Agent, 4)], true],
    ['a caller whose peer listens only does not', leg('c', K.Caller, 1), [leg('a', K.Agent, 2)], false],
    ['a caller alone does not (the conference plays its own)', leg('c', K.Caller, 1), [], false],
    ['a deaf leg does not', leg('c', K.Caller, 3), [leg('a', K.Agent, 4)], false],
    ['one peer on hold of two is not enough', leg('c', K.Caller, 1), [leg('a', K.Agent, 4), leg('b', K.Agent, 1)], false],
  ])('%s', (_what, me, others, hears) => {
    expect(hearsHoldMusic(me, [me, ...others])).toBe(hears);
  });
});
