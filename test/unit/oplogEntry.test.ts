/** Decoding operation-log stream entries: the compact one-field form and the older field-per-value form. */
import { parseOplog } from '../../lib/events';

describe('operation-log entries', () => {
  it('a compact entry decodes to every field, and a `by` holding `|` survives whole', () => {
    const e = parseOplog(['42-0', ['o', '1764763200123|1001|8000|29|1901|-1|not_ready|ccs-a||wall|board|2']]);
    expect(e).toEqual({ seq: 42, ts: 1764763200123, agent: '1001', queue: '8000', op: 29, object: 1901, reason: -1, state: 'not_ready', instance: 'ccs-a', by: 'wall|board|2' });
  });

  it('a compact entry of a conversation operation without a queue keeps the conversation and reads the missing state as logged out', () => {
    const e = parseOplog(['7-0', ['o', '1764763200000|1002||41|-1|-1||ccs-b|3f2a-conv|']]);
    expect(e).toEqual({ seq: 7, ts: 1764763200000, agent: '1002', queue: '', op: 41, object: -1, reason: -1, state: 'logged_out', instance: 'ccs-b', conversation: '3f2a-conv' });
  });

  it('an entry written before the compact form (one stream field per value) still decodes', () => {
    const e = parseOplog(['5-0', ['ts', '1764763200000', 'agent', '1003', 'queue', '8001', 'op', '3', 'object', '-1', 'reason', '4', 'state', 'not_ready', 'instance', 'ccs-a']]);
    expect(e).toEqual({ seq: 5, ts: 1764763200000, agent: '1003', queue: '8001', op: 3, object: -1, reason: 4, state: 'not_ready', instance: 'ccs-a' });
  });
});
