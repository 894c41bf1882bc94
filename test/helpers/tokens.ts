/**
 * Bearer tokens of every role for the scope tests (DESIGN.md section 12), against the test
 * configuration of test/helpers/config.ts: call center `default` (queues 8000 and 8001, agents
 * 1001-1005, supervisors s1 over 8000 with extension 1901 and s2 over 8001 with 1902) and
 * call center `other` (queue 9000, agent 2001).
 */

/** The tokens, by who holds them. */
export const TOKENS = {
  /** A plain string: admin, named `token-0` (its place in the list). */
  admin: 'admin-token-0123456789',
  /** Acts as supervisor s1 (queues 8000). */
  s1: 'sup-s1-token-0123456789',
  /** Acts as supervisor s2 (queues 8001). */
  s2: 'sup-s2-token-0123456789',
  /** A supervisor token with queue 8001 only and no configured supervisor. */
  q8001: 'sup-q8001-token-0123456789',
  /** Agent 1001 (queue 8000). */
  agent1001: 'agent-1001-token-0123456789',
  /** Agent 2001 of call center `other`. */
  other: 'other-cc-token-0123456789',
} as const;

/** Who holds a token. */
export type Holder = keyof typeof TOKENS;

/** Config `apiTokens`: the admin token first (so `RunningApp.call` sends it by default). */
export const API_TOKENS: (string | Record<string, unknown>)[] = [
  TOKENS.admin,
  { token: TOKENS.s1, role: 'supervisor', callcenter: 'default', supervisor: 's1', name: 'lead-s1' },
  { token: TOKENS.s2, role: 'supervisor', callcenter: 'default', supervisor: 's2', name: 'lead-s2' },
  { token: TOKENS.q8001, role: 'supervisor', callcenter: 'default', queues: ['8001'], name: 'support-desk' },
  { token: TOKENS.agent1001, role: 'agent', callcenter: 'default', agent: '1001', name: 'agent-1001' },
  { token: TOKENS.other, role: 'agent', callcenter: 'other', agent: '2001', name: 'other-2001' },
];

/** The request headers that send `holder`'s token. */
export const as = (holder: Holder): { authorization: string } => ({ authorization: `Bearer ${TOKENS[holder]}` });
