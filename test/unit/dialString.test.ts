import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DialPlan, type Destination } from '../../fac/dialString';
import { loadConfig } from '../../lib/config/load';
import { MalformedDialStringError } from '../../lib/errors';

const config = loadConfig({ text: readFileSync(join(__dirname, '../../config/default.yaml'), 'utf8') });
const plan = new DialPlan(config.callcenters.default!, config.fac);

describe('dial plan of the default call center', () => {
  it.each<[string, Destination]>([
    ['*38', { kind: 'fac', action: 'login' }],
    ['*388000', { kind: 'fac', action: 'login', queue: '8000' }],
    ['*36', { kind: 'fac', action: 'ready' }],
    ['*368001', { kind: 'fac', action: 'ready', queue: '8001' }],
    ['*37*4', { kind: 'fac', action: 'notReady', reason: 4 }],
    ['*378000', { kind: 'fac', action: 'notReady', queue: '8000' }],
    ['*378000*4', { kind: 'fac', action: 'notReady', queue: '8000', reason: 4 }],
    ['*39', { kind: 'fac', action: 'logout' }],
    ['*398000*257', { kind: 'fac', action: 'logout', queue: '8000', reason: 257 }],
    ['*389999', { kind: 'fac', action: 'login', queue: '9999' }],
    ['8000', { kind: 'queue', queue: '8000' }],
    ['1002', { kind: 'agent', agent: '1002' }],
    ['5551234', { kind: 'unknown', dial: '5551234' }],
    ['*99', { kind: 'unknown', dial: '*99' }],
  ])('%s → %j', (dial, want) => {
    expect(plan.classify(dial)).toEqual(want);
  });

  it.each([
    ['*3', /incomplete/],
    ['*', /incomplete/],
    ['*3612a', /expected \*36\[<queue>\]/],
    ['*36*4', /takes no reason/],
    ['*38' + '1'.repeat(30), /longer than 32|expected/],
    ['*388000*', /expected/],
    ['*37*1234', /expected/],
  ])('%s is a malformed feature code (484)', (dial, why) => {
    expect(() => plan.classify(dial)).toThrow(MalformedDialStringError);
    expect(() => plan.classify(dial)).toThrow(why);
  });

  it('honours configured codes instead of the defaults', () => {
    const custom = new DialPlan(config.callcenters.default!, { ready: '#71', notReady: '#72', login: '#73', logout: '#74' });
    expect(custom.classify('#738000')).toEqual({ kind: 'fac', action: 'login', queue: '8000' });
    expect(custom.classify('*38')).toEqual({ kind: 'unknown', dial: '*38' });
  });
});
