/**
 * The event stream end to end (issue 10): a feature code dialed from a registered SIP.js phone
 * through a real drachtio-server reaches a WebSocket client subscribed to the agent.
 */
import { describeLayer } from '../helpers/layers';
import { startSipStack, type SipStack } from '../helpers/sipStack';
import { connectEvents } from '../helpers/wsClient';

describeLayer('sip', 'event stream from the phone to the WebSocket client', () => {
  let s: SipStack;
  beforeAll(async () => {
    s = await startSipStack({});
  });
  afterAll(async () => {
    await s?.close();
  });

  it('*38 dialed by 1001 reaches a client subscribed to agent:1001 as agent.state events, one per queue, after its snapshot', async () => {
    const addr = s.app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const client = await connectEvents(`ws://127.0.0.1:${port}/callcenter/default/events`, { token: 'test-token-0123456789' });
    try {
      await client.next('hello', (f) => f.op === 'hello');
      client.send({ op: 'subscribe', topics: ['agent:1001'] });
      const snap = await client.next('snapshot', (f) => f.op === 'snapshot');
      expect(snap.data).toMatchObject({ agent: '1001', queues: [{ queue: '8000', state: 'logged_out' }] });
      const phone = await s.phone('1001');
      const call = await phone.dial('*38');
      await call.ended;
      const ev = await client.next('agent.state of the FAC', (f) => f.op === 'event');
      expect(ev.event).toMatchObject({ type: 'agent.state', agent: '1001', queue: '8000', prev: 'logged_out', state: 'ready', op: 1 });
      expect((ev.event as { seq: number }).seq).toBeGreaterThan(snap.seq as number);
    } finally {
      await client.close();
    }
  });
});
