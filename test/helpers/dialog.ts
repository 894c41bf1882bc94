/** A stand-in SIP dialog for layers that exercise no SIP (test/redis): counts BYEs, hangs up on demand. */
import { EventEmitter } from 'node:events';
import type { SipDialog } from '../../app/sip/types';

/** A stand-in dialog: `hangUp()` plays the far end hanging up; our BYE counts in `byes` and ends it too. */
export function standInDialog(): SipDialog & { hangUp(): void; byes: number } {
  const em = new EventEmitter();
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    em.emit('destroy');
  };
  const d = {
    byes: 0,
    on: ((ev: string, fn: () => void) => void em.on(ev, fn)) as SipDialog['on'],
    destroy: () => {
      d.byes += 1;
      end();
      return Promise.resolve();
    },
    modify: () => Promise.reject(new Error('no re-INVITE in this layer')),
    remote: { sdp: '' },
    sip: { callId: `call-${Math.random()}` },
    hangUp: end,
  };
  return d;
}
