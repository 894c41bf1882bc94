import { checkOutsideCall } from '../../app/calls/outside';
import { loadConfig } from '../../lib/config/load';
import { CcsError } from '../../lib/errors';
import { outboundTrunk, trunkUri } from '../../lib/sip/trunks';
import { Deadlines } from '../../lib/timers/deadlines';

const config = loadConfig({
  source: 'test',
  text: `
sip:
  trunks:
    carrier: { addresses: [192.0.2.1], callcenter: default, outbound: "192.0.2.1:5070;transport=tcp", callerIds: ["+4930100", "4930200"] }
    inbound: { addresses: [192.0.2.2], callcenter: other }
callcenters:
  default: { queues: { "8000": { name: Sales } }, agents: { "1001": { extension: "1001", password: secret-1001, queues: ["8000"] } } }
  other: { queues: { "9000": { name: Other } }, agents: { "2001": { extension: "2001", password: secret-2001, queues: ["9000"] } } }
  bare: { queues: { "7000": { name: Bare } }, agents: { "3001": { extension: "3001", password: secret-3001, queues: ["7000"] } } }
`,
});
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof CcsError ? err.code : 'not a CcsError';
  }
  return undefined;
};

describe('calls to outside numbers: the trunk, the numbers and the limits', () => {
  it('a call goes through the call center\'s outbound trunk, its number the request-URI user, the trunk\'s parameters kept', () => {
    const t = outboundTrunk(config.sip.trunks, 'default')!;
    expect(t).toEqual({ name: 'carrier', targets: ['192.0.2.1:5070;transport=tcp'], callerIds: ['+4930100', '4930200'], pai: false });
    expect(trunkUri(t, '+4930999')).toBe('sip:+4930999@192.0.2.1:5070;transport=tcp');
  });

  it('without from, the trunk\'s first caller id is presented; a listed from is kept; limits become milliseconds (ring limit 60 s by default)', () => {
    expect(checkOutsideCall(config, 'default', { to: '5551234', max_answer_seconds: 30 }, '1001')).toMatchObject({ to: '5551234', from: '+4930100', maxDialMs: 60_000, maxAnswerMs: 30_000 });
    expect(checkOutsideCall(config, 'default', { to: '5551234', from: '4930200', max_dial_seconds: 5, max_answer_seconds: 30 }, '1001')).toMatchObject({ from: '4930200', maxDialMs: 5000 });
  });

  it('a call center without an outbound trunk is refused with no_outbound_trunk', () => {
    expect(codeOf(() => checkOutsideCall(config, 'other', { to: '5551234', max_answer_seconds: 30 }, '2001'))).toBe('no_outbound_trunk');
    expect(codeOf(() => checkOutsideCall(config, 'bare', { to: '5551234', max_answer_seconds: 30 }, '3001'))).toBe('no_outbound_trunk');
  });

  it.each([['sip:x@evil'], ['555 1234'], ['5551234;user=phone'], [''], ['1'.repeat(33)], ['"><script>']])('to %j is not a number: invalid_request', (to) => {
    expect(codeOf(() => checkOutsideCall(config, 'default', { to, max_answer_seconds: 30 }, '1001'))).toBe('invalid_request');
  });

  it.each([['5550000'], ['+4930100\r\nX-Evil: 1'], ['anonymous']])('from %j that the trunk does not list is refused with from_not_allowed, never written into a header', (from) => {
    expect(codeOf(() => checkOutsideCall(config, 'default', { to: '5551234', from, max_answer_seconds: 30 }, '1001'))).toBe('from_not_allowed');
  });

  it.each([
    [{ max_dial_seconds: 0, max_answer_seconds: 30 }],
    [{ max_dial_seconds: 301, max_answer_seconds: 30 }],
    [{ max_dial_seconds: 1.5, max_answer_seconds: 30 }],
    [{ max_answer_seconds: 0 }],
    [{ max_answer_seconds: 86_401 }],
  ])('limits out of range %j are invalid_request', (limits) => {
    expect(codeOf(() => checkOutsideCall(config, 'default', { to: '5551234', ...limits }, '1001'))).toBe('invalid_request');
  });

  it('a trunk without caller ids presents the agent\'s extension and refuses any from', () => {
    const c = loadConfig({
      source: 'test',
      text: `
sip: { trunks: { carrier: { addresses: [192.0.2.1], callcenter: default, outbound: "192.0.2.1" } } }
callcenters: { default: { queues: { "8000": { name: Sales } }, agents: { "1001": { extension: "1001", password: secret-1001, queues: ["8000"] } } } }
`,
    });
    expect(checkOutsideCall(c, 'default', { to: '5551234', max_answer_seconds: 30 }, '1001').from).toBe('1001');
    expect(codeOf(() => checkOutsideCall(c, 'default', { to: '5551234', from: '1001', max_answer_seconds: 30 }, '1001'))).toBe('from_not_allowed');
  });

  it('a caller id that is not a number is a configuration error', () => {
    expect(() => loadConfig({ source: 'test', text: `
sip: { trunks: { carrier: { addresses: [192.0.2.1], callcenter: default, outbound: "192.0.2.1", callerIds: ["Sales <sip:x>"] } } }
callcenters: { default: { queues: { "8000": { name: Sales } }, agents: { "1001": { extension: "1001", password: secret-1001, queues: ["8000"] } } } }
` })).toThrow(/callerIds/);
  });

  it('deadline members join kind and arguments with |, and refuse an argument containing |', () => {
    expect(Deadlines.member('maxdial', 'c1', 'l1')).toBe('maxdial|c1|l1');
    expect(() => Deadlines.member('maxdial', 'c|1')).toThrow(/contains/);
  });
});
