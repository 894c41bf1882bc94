/** The X-CCS-Enqueue header of trunk queue calls (app/sip/invite.ts enqueueOf). */
import { enqueueOf } from '../../app/sip/invite';
import type { SipRequest } from '../../app/sip/types';
import { testConfig } from '../helpers/config';

const cc = testConfig({ redisUrl: 'redis://127.0.0.1:1' }).callcenters.default!;
const req = (header: string | undefined): SipRequest => ({ get: (name: string) => (name.toLowerCase() === 'x-ccs-enqueue' ? header : undefined) }) as unknown as SipRequest;
const enc = encodeURIComponent;

describe('X-CCS-Enqueue on a queue call', () => {
  it('without the header, the task takes the queue defaults', () => {
    expect(enqueueOf(req(undefined), true, '8000', cc)).toEqual({});
  });

  it('from a trunk, gives the priority, the max wait and the target conditions', () => {
    const doc = enc('<enqueue queue="8000" priority="5" timeout="30"><agent id="1002"/><skill name="billing" min="3"/></enqueue>');
    expect(enqueueOf(req(doc), true, '8000', cc)).toEqual({ priority: 5, maxWaitSeconds: 30, conditions: { agents: ['1002'], skills: [{ name: 'billing', min: 3 }] } });
  });

  it('without conditions in the document, sets none (the task keeps its place in line)', () => {
    expect(enqueueOf(req(enc('<queue queue="8000" priority="9"/>')), true, '8000', cc)).toEqual({ priority: 9 });
  });

  it('from an agent phone is refused with 403', () => {
    expect(enqueueOf(req(enc('<enqueue queue="8000"/>')), false, '8000', cc)).toMatchObject({ refuse: 403 });
  });

  it.each([
    ['broken percent-encoding', '%E0%A4%A'],
    ['an entity declaration', enc('<!DOCTYPE e [<!ENTITY x "y">]><enqueue queue="8000"/>')],
    ['another queue', enc('<enqueue queue="8001"/>')],
    ['an unknown agent', enc('<enqueue queue="8000"><agent id="nobody"/></enqueue>')],
    ['a priority out of range', enc('<enqueue queue="8000" priority="101"/>')],
  ])('with %s is refused with 400 and says why', (_what, value) => {
    const r = enqueueOf(req(value), true, '8000', cc);
    expect(r).toMatchObject({ refuse: 400, reason: 'Bad Enqueue' });
    expect((r as { why: string }).why.length).toBeGreaterThan(5);
  });
});
