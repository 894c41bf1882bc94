/**
 * SIP.js phones in Node for the test/sip layer (DESIGN.md section 10): a real SIP.js
 * UserAgent over drachtio-server's WebSocket transport, with a session-description handler
 * that offers and answers a static SDP (there is no browser media here).
 *
 * sip.js 0.21 is ESM-only; jest.config.js transforms it. Node 20 has no global WebSocket,
 * so the `ws` package is installed as one before a UserAgent starts.
 */
import WebSocket from 'ws';
import {
  Invitation,
  Inviter,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
  type Session,
  type SessionDescriptionHandler,
  type SessionDescriptionHandlerFactory,
} from 'sip.js';

(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/** The SDP a test phone offers and answers with, naming its RTP address. */
export function phoneSdp(rtp: { ip: string; port: number; telephoneEvent?: number | undefined } = { ip: '127.0.0.1', port: 41000 }): string {
  // With a telephone-event payload type the phone sends DTMF in the media (RFC 4733), as desk phones do.
  const te = rtp.telephoneEvent;
  const media = te === undefined ? [`m=audio ${rtp.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000'] : [`m=audio ${rtp.port} RTP/AVP 0 ${te}`, 'a=rtpmap:0 PCMU/8000', `a=rtpmap:${te} telephone-event/8000`, `a=fmtp:${te} 0-16`];
  return ['v=0', `o=- 1 1 IN IP4 ${rtp.ip}`, 's=sipjs-test-phone', `c=IN IP4 ${rtp.ip}`, 't=0 0', ...media, 'a=sendrecv', ''].join('\r\n');
}

/** The SDP of a phone without an RTP port of its own (nothing listens on 41000). */
export const PHONE_SDP = phoneSdp();

/**
 * A session-description handler with static SDP out. The phone's media, when it has any, is
 * a UDP port of the test's (test/helpers/freeswitch.ts listenRtp) named in that SDP.
 */
function staticSdh(sdp: string, onRemoteSdp?: (sdp: string) => void): SessionDescriptionHandlerFactory {
  return () => {
    const h: SessionDescriptionHandler = {
      close: () => undefined,
      sendDtmf: () => false,
      hasDescription: (contentType: string) => contentType === 'application/sdp',
      getDescription: () => Promise.resolve({ body: sdp, contentType: 'application/sdp' }),
      setDescription: (remote: string) => {
        onRemoteSdp?.(remote);
        return Promise.resolve();
      },
      rollbackDescription: () => Promise.resolve(),
    };
    return h;
  };
}

/** What a phone does with an incoming call. */
export type AnswerPolicy = { answer: true } | { ring: true } | { reject: number };

/** An established or ringing call on a test phone. */
export interface PhoneCall {
  session: Session;
  /** Resolves when the call is over (either side hung up). */
  ended: Promise<void>;
  /** The Reason header of the far end's BYE (undefined if it sent none, or we hung up). */
  byeReason: Promise<string | undefined>;
  hangup(): Promise<void>;
}

/** An outgoing call before its answer. */
export interface Dialing {
  answered: Promise<PhoneCall>;
  cancel(): Promise<void>;
}

/** A registered (or not) SIP.js user agent. */
export interface Phone {
  readonly user: string;
  policy: AnswerPolicy;
  register(): Promise<void>;
  unregister(): Promise<void>;
  /** Dials `target` (user part); resolves once answered, rejects with {@link CallRefused} on failure. */
  dial(target: string): Promise<PhoneCall>;
  /** Starts dialing `target`; `cancel()` hangs up before the answer (CANCEL). */
  startDial(target: string): Dialing;
  /** Resolves with the next incoming call once it has been handled by the policy. */
  nextIncoming(): Promise<PhoneCall>;
  stop(): Promise<void>;
}

/** Error thrown by {@link Phone.dial} when the call is refused. */
export class CallRefused extends Error {
  constructor(readonly status: number) {
    super(`SIP ${status}`);
  }
}

function track(session: Session): PhoneCall {
  let reason: string | undefined;
  session.delegate = {
    onBye: (bye) => {
      reason = bye.request.getHeader('Reason');
      void bye.accept();
    },
  };
  const ended = new Promise<void>((resolve) => {
    if (session.state === SessionState.Terminated) resolve();
    session.stateChange.addListener((s) => {
      if (s === SessionState.Terminated) resolve();
    });
  });
  return {
    session,
    ended,
    byeReason: ended.then(() => reason),
    async hangup() {
      if (session.state === SessionState.Established) await session.bye();
      else if (session instanceof Inviter && session.state === SessionState.Establishing) await session.cancel();
      else if (session instanceof Invitation && session.state === SessionState.Initial) await session.reject();
      await ended;
    },
  };
}

/** Starts a phone for `user` connected to drachtio-server's WebSocket port. */
export async function startPhone(o: {
  user: string;
  password: string;
  wsPort: number;
  domain?: string;
  policy?: AnswerPolicy;
  rtp?: { ip: string; port: number; telephoneEvent?: number | undefined };
  /** Called with the far end's SDP of every call (a phone that talks from the answer on starts sending there). */
  onRemoteSdp?: (sdp: string) => void;
}): Promise<Phone> {
  const domain = o.domain ?? '127.0.0.1';
  const waiting: ((c: PhoneCall) => void)[] = [];
  const pending: PhoneCall[] = [];
  const phone: Phone = {
    user: o.user,
    policy: o.policy ?? { answer: true },
    register: async () => {
      const registered = new Promise<void>((resolve, reject) => {
        registerer.stateChange.addListener((s) => {
          if (s === RegistererState.Registered) resolve();
        });
        void registerer
          .register({ requestDelegate: { onReject: (r) => reject(new CallRefused(r.message.statusCode ?? 0)) } })
          .catch(reject);
      });
      await registered;
    },
    unregister: async () => {
      if (registerer.state !== RegistererState.Registered) return;
      const done = new Promise<void>((resolve) => {
        registerer.stateChange.addListener((s) => {
          if (s === RegistererState.Unregistered) resolve();
        });
      });
      await registerer.unregister();
      await done;
    },
    dial: (target) => phone.startDial(target).answered,
    startDial: (target) => {
      const uri = UserAgent.makeURI(`sip:${target}@${domain}`);
      if (uri === undefined) throw new Error(`bad target ${target}`);
      const inviter = new Inviter(ua, uri);
      const call = track(inviter);
      let refusedWith: number | undefined;
      const answered = new Promise<PhoneCall>((resolve, reject) => {
        inviter.stateChange.addListener((s) => {
          if (s === SessionState.Established) resolve(call);
          // SIP.js ends the session before it calls onReject: let that run first.
          if (s === SessionState.Terminated) setImmediate(() => reject(refusedWith === undefined ? new Error('call ended before it was answered') : new CallRefused(refusedWith)));
        });
        void inviter
          .invite({ requestDelegate: { onReject: (r) => (refusedWith = r.message.statusCode) } })
          .catch(reject);
      });
      return {
        answered,
        cancel: async () => {
          await inviter.cancel();
        },
      };
    },
    nextIncoming: () => {
      const c = pending.shift();
      if (c) return Promise.resolve(c);
      return new Promise((resolve) => waiting.push(resolve));
    },
    stop: async () => {
      await ua.stop();
    },
  };
  const ua = new UserAgent({
    uri: UserAgent.makeURI(`sip:${o.user}@${domain}`),
    authorizationUsername: o.user,
    authorizationPassword: o.password,
    transportOptions: { server: `ws://127.0.0.1:${o.wsPort}`, connectionTimeout: 5 },
    logLevel: 'error',
    logBuiltinEnabled: false,
    sessionDescriptionHandlerFactory: staticSdh(phoneSdp(o.rtp), o.onRemoteSdp),
    delegate: {
      onInvite: (inv: Invitation) => {
        const call = track(inv);
        const deliver = (): void => {
          const w = waiting.shift();
          if (w) w(call);
          else pending.push(call);
        };
        const p = phone.policy;
        if ('answer' in p) {
          // Delivered once answered, or once over if the caller cancelled before our answer
          // went through (a ring-all branch that lost the race): the test then sees it ended.
          let delivered = false;
          inv.stateChange.addListener((s) => {
            if (delivered || (s !== SessionState.Established && s !== SessionState.Terminated)) return;
            delivered = true;
            deliver();
          });
          void inv.accept();
        } else if ('reject' in p) {
          void inv.reject({ statusCode: p.reject }).then(deliver);
        } else {
          void inv.progress().then(deliver);
        }
      },
    },
  });
  const registerer = new Registerer(ua, { expires: 300 });
  await ua.start();
  return phone;
}
