/**
 * Requests ccswitch must not answer because answering them crashes drachtio-server.
 *
 * drachtio-server (0.9.4 up to its main branch of 2026) builds a dialog for an INVITE on the
 * app's first response to it, whatever the status (a 100, a 407 or a 403 alike:
 * `SipDialogController::doRespondToSipRequest` → `setupLegForIncomingRequest` →
 * `SipDialog::SipDialog`). Over UDP, without Record-Route, that constructor compares the
 * source address with the host of the first Contact (its NAT check, src/sip-dialog.cpp) and
 * never checks that there is one. sofia-sip parses `*` and the opaque URI schemes `tel:`,
 * `fax:`, `modem:` and `cid:` with no host, so `strlen(NULL)` ends the process: one
 * unauthenticated UDP packet takes every call of the platform down (found by the SIP fuzz
 * test, test/sip/fuzz.test.ts). Such an INVITE is left unanswered, as a firewall would drop
 * it: its sender retransmits and gives up. Over TCP, TLS and WebSocket the check is skipped.
 */
import type { SipRequest } from './types';

/** sofia-sip URI types parsed without a host (url.c `url_type_is_opaque`, and `*`). */
const HOSTLESS_CONTACT = /^\s*(?:[^<]*<\s*)?(?:\*|(?:tel|fax|modem|cid):)/i;

/** Whether answering this INVITE in any way would crash drachtio-server (see the module comment). */
export function answerCrashesDrachtio(req: Pick<SipRequest, 'method' | 'protocol' | 'get' | 'has'>): boolean {
  if (req.method !== 'INVITE' || !/^udp$/i.test(req.protocol) || req.has('Record-Route')) return false;
  const contact = req.get('Contact');
  if (contact === undefined) return false;
  // The first Contact of a list (a `*` Contact stands alone).
  return HOSTLESS_CONTACT.test(contact);
}
