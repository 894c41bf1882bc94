/**
 * Digest brute force through a real drachtio-server (issue "faults", item 7): wrong passwords
 * are counted per source address in Redis; past `sip.authFailureLimit` that source gets 403
 * for the rest of the window even with the right password, while other sources are served.
 */
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'digest brute force is limited per source address', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({ sip: { authFailureLimit: { count: 4, seconds: 1 } } });
  });
  afterAll(async () => {
    await s?.close();
  });

  const register = (password: string, status: number, localIp: string): Promise<SippResult> =>
    runSipp({ scenario: 'register.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: 'x', user: '1002', password, status, localIp });
  const expectOk = (r: SippResult, what: string): void => {
    if (r.code !== 0) throw new Error(`${what}: sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1200)}`);
  };

  it('after 4 wrong passwords from 127.0.0.7 its next REGISTER is refused with 403 before any challenge, 127.0.0.8 is served, and 127.0.0.7 again once the window is over', async () => {
    for (let i = 0; i < 4; i++) expectOk(await register('wrong-password', 403, '127.0.0.7'), `wrong password ${i + 1}`);
    // Refused before any challenge: the source's right password is never even asked for.
    expectOk(await runSipp({ scenario: 'register-refused.xml', target: `127.0.0.1:${s.drachtio.sipPort}`, service: 'x', user: '1002', localIp: '127.0.0.7' }), 'the blocked source');
    expect(await s.app.registrar.bindings('default', '1002')).toEqual([]);
    expectOk(await register('secret-1002', 200, '127.0.0.8'), 'the right password from another source');
    // The window is a Redis key expiry: wait for the key to go, then the source is served again.
    while ((await s.raw.pttl('ccs:authfail:sip:127.0.0.7')) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    expectOk(await register('secret-1002', 200, '127.0.0.7'), 'the right password after the window');
  });
});
