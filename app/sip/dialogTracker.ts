/**
 * The SIP dialogs of this instance and what becomes of them when the connection to
 * drachtio-server is lost (issue "faults", item 3).
 *
 * A dialog lives in drachtio-server, tied to the app connection that made it. When that
 * connection drops (drachtio-server restarted, or the link broke), no request of the far end
 * reaches us any more: a caller's BYE gets 481 from a restarted drachtio-server, or goes to a
 * client that is gone. Left alone, the agents on those calls would stay in Queue Call / Other
 * Call for ever. So on a lost connection every dialog is ended here as if its far end had hung
 * up (its 'destroy' event), and the normal call end runs: conversations end, agents wrap up,
 * tasks close, media is released. Our own BYE cannot go out meanwhile; it is sent when the
 * connection is back: first inside the dialog (a drachtio-server that kept running still has
 * it), else as a request outside any dialog with the dialog's Call-ID, tags and a higher CSeq
 * (a restarted one does not), so that phones and carriers hang up too.
 *
 * Calls being set up when the connection drops (an INVITE we sent, or a 200 we are sending)
 * would never settle: drachtio-srf forgets their callbacks with the socket. They fail here at
 * once as a 503, so the code that placed them moves on (next agent, caller released).
 *
 * The keepalive ({@link DialogTracker.startKeepalive}) finds far ends that went away without
 * a BYE reaching us (a BYE lost on UDP, a phone that lost power): each dialog up for a period
 * gets an in-dialog OPTIONS; 481 (no such dialog), 408 or silence ends it the same way, with our
 * BYE. Any other answer, 200 or 501 alike, says the far end still has the call. Kamailio's and
 * OpenSIPS's dialog keepalives do the same; it is a local timer because it probes dialogs
 * this instance holds and ends with them.
 */
import type { Logger } from '../../lib/logger';
import { sendOutOfDialog, type SipRequester } from '../../lib/sip/carrierRegistration';
import type { SipDialog, SipOfferIn2xx, SrfLike } from './types';

/** The parts of a drachtio-srf Dialog used to say goodbye from outside it. */
interface DialogInternals {
  id?: string;
  type?: 'uas' | 'uac';
  sip?: { callId: string; localTag?: string; remoteTag?: string };
  remote?: { uri?: string };
  req?: { get(name: string): string | undefined };
  res?: { get(name: string): string | undefined };
  emit?(event: string): boolean;
  srf?: { removeDialog?(d: unknown): void };
}

/** A BYE still owed to the far end of a lost dialog. */
interface OwedBye {
  callId: string;
  dialogId: string | undefined;
  uri: string;
  from: string;
  to: string;
}

/** The error a call being set up fails with when the connection drops (a SipErrorLike). */
export class ConnectionLostError extends Error {
  readonly status = 503;
  readonly reason = 'drachtio connection lost';
  constructor() {
    super('the connection to drachtio-server was lost');
    this.name = 'ConnectionLostError';
  }
}

/** CSeq of a BYE sent from outside a lost dialog: above any the dialog can have used. */
const OUTSIDE_BYE_CSEQ = 2_000_000_000;

/** True for the answer to an offerless INVITE (drachtio-srf `noAck`), which is no dialog yet. */
function isOfferIn2xx(r: SipDialog | SipOfferIn2xx): r is SipOfferIn2xx {
  return typeof (r as Partial<SipOfferIn2xx>).ack === 'function' && typeof (r as Partial<SipDialog>).modify !== 'function';
}

/** Tracks every dialog made through {@link DialogTracker.srf}. */
export class DialogTracker {
  private readonly live = new Set<SipDialog>();
  /** When each live dialog is next probed by the keepalive (ms, host clock). */
  private readonly probeAt = new Map<SipDialog, number>();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveMs = 0;
  private readonly owed: OwedBye[] = [];
  private lost: { promise: Promise<never>; fire: () => void } = DialogTracker.arm();
  private connectedOnce = false;
  private stopped = false;
  /** The application object to hand to the call handlers: drachtio-srf's, with its dialogs tracked. */
  readonly srf: SrfLike;

  constructor(
    private readonly inner: SrfLike,
    private readonly log: Logger,
  ) {
    const track = <T extends SipDialog>(d: T): T => this.track(d);
    const settleOrLose = <T>(p: Promise<T>): Promise<T> => Promise.race([p, this.lost.promise]);
    this.srf = new Proxy(inner, {
      get: (target, prop, receiver) => {
        if (prop === 'createUAS') return (...args: Parameters<SrfLike['createUAS']>) => settleOrLose(target.createUAS(...args)).then(track);
        if (prop === 'createUAC') {
          // An offerless INVITE (noAck) resolves with the far end's offer; its dialog exists once we ACK.
          const uac = (target.createUAC as (...a: unknown[]) => Promise<SipDialog | SipOfferIn2xx>).bind(target);
          return (...args: unknown[]) =>
            settleOrLose(uac(...args)).then((r) => (isOfferIn2xx(r) ? { sdp: r.sdp, destroy: () => r.destroy(), ack: (sdp: string) => settleOrLose(r.ack(sdp)).then(track) } : track(r)));
        }
        // Everything else as it is (not bound: drachtio-srf's `_app` is a function with
        // properties, and methods called through the proxy still read and write the target).
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    inner.on('connect', (err) => {
      if (err !== null) return;
      this.connectedOnce = true;
      void this.payDebts();
    });
    inner.on('close', () => {
      if (!this.stopped && this.connectedOnce) this.connectionLost();
    });
  }

  /** Dialogs up now. */
  get size(): number {
    return this.live.size;
  }

  /** BYEs owed to far ends of lost dialogs, not sent yet. */
  get owedByes(): number {
    return this.owed.length;
  }

  /** The instance is stopping: a closing connection is not a lost one. */
  stop(): void {
    this.stopped = true;
    if (this.keepaliveTimer !== undefined) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
  }

  /**
   * Probes every dialog up for `periodMs` with an in-dialog OPTIONS, then every `periodMs`;
   * a dialog whose far end answers 481 or 408, or nothing within min(10 s, period / 2), is ended
   * as hung up (its 'destroy' event: the normal call end) and gets our BYE.
   */
  startKeepalive(periodMs: number): void {
    if (periodMs <= 0 || this.keepaliveTimer !== undefined) return;
    this.keepaliveMs = periodMs;
    const tick = Math.max(250, Math.min(5000, Math.floor(periodMs / 4)));
    this.keepaliveTimer = setInterval(() => this.probeDue(), tick);
    this.keepaliveTimer.unref();
  }

  private probeDue(): void {
    const now = Date.now();
    for (const [d, at] of this.probeAt) {
      if (at > now) continue;
      // Not probed again until this probe is over (the answer re-arms it).
      this.probeAt.set(d, Number.POSITIVE_INFINITY);
      void this.probe(d);
    }
  }

  private async probe(d: SipDialog): Promise<void> {
    if (d.request === undefined) return;
    const waitMs = Math.min(10_000, Math.floor(this.keepaliveMs / 2));
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<'silence'>((resolve) => (timer = setTimeout(() => resolve('silence'), waitMs)));
    let verdict: number | 'silence' | 'error';
    try {
      verdict = await Promise.race([d.request({ method: 'OPTIONS' }).then((r) => r.status), silence]);
    } catch {
      verdict = 'error'; // the request could not be sent (connection lost: handled there)
    } finally {
      clearTimeout(timer);
    }
    if (!this.live.has(d)) return; // it ended meanwhile
    if (verdict === 481 || verdict === 408 || verdict === 'silence') {
      this.log.warn({ callId: d.sip.callId, answer: verdict }, 'dialog keepalive: the far end no longer has the call; ending it as hung up');
      this.live.delete(d);
      this.probeAt.delete(d);
      (d as unknown as DialogInternals).emit?.('destroy');
      // Our BYE, for a far end that is still there but lost the dialog's state.
      d.destroy().catch(() => undefined);
      return;
    }
    this.probeAt.set(d, Date.now() + this.keepaliveMs);
  }

  private static arm(): { promise: Promise<never>; fire: () => void } {
    let fire: () => void = () => undefined;
    const promise = new Promise<never>((_resolve, reject) => (fire = () => reject(new ConnectionLostError())));
    // Nobody may be waiting when it fires.
    promise.catch(() => undefined);
    return { promise, fire };
  }

  private track<T extends SipDialog>(d: T): T {
    this.live.add(d);
    this.probeAt.set(d, Date.now() + this.keepaliveMs);
    d.on('destroy', () => {
      this.live.delete(d);
      this.probeAt.delete(d);
    });
    return d;
  }

  /** Ends every dialog as if its far end had hung up, and fails the calls being set up. */
  private connectionLost(): void {
    const dialogs = [...this.live];
    this.live.clear();
    this.probeAt.clear();
    const pending = this.lost;
    this.lost = DialogTracker.arm();
    pending.fire();
    if (dialogs.length > 0) this.log.warn({ dialogs: dialogs.length }, 'drachtio connection lost: ending its calls as hung up; BYEs go out when it is back');
    for (const d of dialogs) {
      const owed = owedBye(d as unknown as DialogInternals);
      if (owed !== undefined) this.owed.push(owed);
      // Our BYE cannot go out on the dead connection (it would wait for ever): it is owed.
      d.destroy = () => Promise.resolve();
      d.modify = () => Promise.reject(new ConnectionLostError());
      const internals = d as unknown as DialogInternals;
      internals.emit?.('destroy');
      internals.srf?.removeDialog?.(d);
    }
  }

  /** Sends the BYEs owed since the connection was lost. */
  private async payDebts(): Promise<void> {
    const debts = this.owed.splice(0);
    if (debts.length === 0 || !isRequester(this.inner)) return;
    const requester = this.inner;
    await Promise.all(
      debts.map(async (b) => {
        const log = this.log.child({ callId: b.callId });
        // Inside the dialog: a drachtio-server that kept running still knows it.
        if (b.dialogId !== undefined) {
          const inside = await sendOutOfDialog(requester, b.uri, { method: 'BYE', headers: {}, ...({ stackDialogId: b.dialogId } as object) }, 5000);
          if (inside.kind === 'answer') return log.info({ status: inside.status }, 'BYE of a lost dialog answered (inside the dialog)');
        }
        const outside = await sendOutOfDialog(requester, b.uri, { method: 'BYE', headers: { 'Call-ID': b.callId, From: b.from, To: b.to, CSeq: `${OUTSIDE_BYE_CSEQ} BYE` } }, 5000);
        if (outside.kind === 'answer') log.info({ status: outside.status }, 'BYE of a lost dialog answered');
        else log.warn({ error: outside.error }, 'BYE of a lost dialog not answered; the far end ends the call by itself');
      }),
    );
  }
}

function isRequester(srf: unknown): srf is SipRequester {
  return typeof (srf as { request?: unknown }).request === 'function';
}

/** The headers of our BYE for `d`, from what drachtio-srf kept of the dialog. */
function owedBye(d: DialogInternals): OwedBye | undefined {
  const callId = d.sip?.callId;
  const uri = d.remote?.uri;
  if (callId === undefined || uri === undefined || d.req === undefined) return undefined;
  const withTag = (header: string | undefined, tag: string | undefined): string | undefined => {
    if (header === undefined || tag === undefined) return undefined;
    return /;\s*tag=/i.test(header) ? header : `${header};tag=${tag}`;
  };
  // UAS: we were the To of their INVITE; UAC: the From of ours.
  const from = d.type === 'uas' ? withTag(d.req.get('To'), d.sip?.localTag) : d.req.get('From');
  const to = d.type === 'uas' ? d.req.get('From') : withTag(d.res?.get('To') ?? d.req.get('To'), d.sip?.remoteTag);
  if (from === undefined || to === undefined) return undefined;
  return { callId, dialogId: d.id, uri, from, to };
}
