/**
 * Who offers the media of a queue call's agent leg (sip.lateOfferToAgents): by default the
 * agent's phone gets an INVITE without SDP, offers in its 200 OK and gets the media server's
 * answer in the ACK; with the option off it gets the media server's offer in the INVITE.
 * Through a real drachtio-server, a sipp trunk caller and a SIP.js agent phone; the media port
 * is the static-SDP fake.
 */
import { AgentState as S } from '../../lib/agent/stateMachine';
import type { CcsEvent } from '../../lib/events';
import { FAKE_SDP } from '../../media/fake';
import { waitForEvent } from '../helpers/events';
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { runSipp, type SippResult } from '../helpers/sipp';

describeLayer('sip', 'the media offer of a queue call to an agent', () => {
  for (const late of [true, false]) {
    describe(late ? 'sip.lateOfferToAgents (default)' : 'sip.lateOfferToAgents false', () => {
      let stack: SipStack;
      beforeAll(async () => {
        stack = await startSipStack({
          sip: { ...(late ? {} : { lateOfferToAgents: false }), trunks: { carrier: { addresses: ['127.0.0.2'], callcenter: 'default' } } },
          wrapUpSeconds8000: 0.5,
        });
      });
      afterAll(async () => {
        await stack?.close();
      });

      const event = (pred: (e: CcsEvent) => boolean): Promise<CcsEvent> => waitForEvent(stack.redisServer.url, 'ccs:{default}:events', pred, 0, 15000);
      const expectOk = (r: SippResult): void => {
        if (r.code !== 0) throw new Error(`sipp exited ${r.code}\n${r.errors}\n${r.output.slice(-1500)}`);
      };

      it(late
        ? 'the agent\'s phone is sent no SDP, offers in its 200 OK and gets the media server\'s answer in the ACK; the call connects'
        : 'the agent\'s phone is sent the media server\'s offer in the INVITE; the call connects', async () => {
        const remote: string[] = [];
        const phone = await stack.phone('1001', { onRemoteSdp: (sdp) => remote.push(sdp) });
        await stack.app.engine.login('default', '1001');
        const incoming = phone.nextIncoming();
        const sipp = runSipp({ scenario: 'trunk-call.xml', target: `127.0.0.1:${stack.drachtio.sipPort}`, service: '8000', user: '5550100', localIp: '127.0.0.2', extra: ['-recv_timeout', '20000'] });
        const call = await incoming;
        const inviteBody = (call.session as unknown as { request: { body?: string } }).request.body ?? '';
        if (late) expect(inviteBody).toBe('');
        else expect(inviteBody).toBe(FAKE_SDP);
        await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.state === S.QueueCall);
        await event((e) => e.type === 'conversation' && (e as { action?: string }).action === 'joined' && (e as { agent?: string }).agent === '1001');
        // Either way the phone ends up with the media server's SDP as its far end, once.
        expect(remote).toEqual([FAKE_SDP]);
        await call.hangup();
        expectOk(await sipp);
        await event((e) => e.type === 'agent.state' && e.agent === '1001' && e.prev === S.WrapUp && e.state === S.Ready);
      });
    });
  }
});
