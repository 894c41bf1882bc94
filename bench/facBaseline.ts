/**
 * The fair baseline of part 3 (issue "performance", item 3): a drachtio-srf app that performs
 * the same SIP exchange as a feature code — 407 challenge, digest check, 200 with the same null
 * SDP, then the caller's ACK and BYE — with no Redis and no state: one fixed password per user
 * held in memory, stateless MAC'd nonces, no replay check, no state change, no log entry. What
 * ccswitch does on top of that (the Redis nonce-count check, the agent lookup, the transition
 * script, the events) is what the ratio against this target measures.
 *
 * It uses the product's digest primitives (lib/sip/digest.ts) and null SDP (media/nullSdp.ts),
 * so both sides compute the same hashes and send the same bodies.
 */
import { randomBytes } from 'node:crypto';
import type { SipRequest, SipResponse, SrfLike } from '../app/sip/types';
import { challenge, NonceIssuer, parseDigest, verifyDigest } from '../lib/sip/digest';
import { nullSdpAnswer } from '../media/nullSdp';

/** Answers every INVITE on `srf` like a FAC: challenged, then 200 with a null SDP if the password matches. */
export function attachFacBaseline(srf: Pick<SrfLike, 'invite' | 'createUAS'>, o: { realm: string; passwords: ReadonlyMap<string, string> }): void {
  const nonces = new NonceIssuer(randomBytes(32), 300_000);
  const ask = (res: SipResponse, stale = false): void =>
    res.send(407, 'Proxy Authentication Required', { headers: { 'Proxy-Authenticate': challenge({ realm: o.realm, nonce: nonces.issue(Date.now()), stale }) } });
  srf.invite((req: SipRequest, res: SipResponse) => {
    const header = req.get('Proxy-Authorization');
    const creds = header === undefined ? null : parseDigest(header);
    if (creds === null) return ask(res);
    const verdict = verifyDigest(creds, { realm: o.realm, method: req.method, passwordFor: (u) => o.passwords.get(u), nonces, nowMs: Date.now() });
    if (verdict.kind === 'challenge') return ask(res, verdict.stale);
    if (verdict.kind === 'forbidden') return res.send(403);
    // As a FAC: answer, wait for the ACK (RFC 3261 15), then hang up with a Reason header.
    srf
      .createUAS(req, res, { localSdp: nullSdpAnswer(req.body) })
      .then((dialog) => dialog.on('ack', () => void dialog.destroy({ headers: { Reason: 'SIP;cause=200;text="baseline"' } }).catch(() => undefined)))
      .catch(() => undefined);
  });
}
