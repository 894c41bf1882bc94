/**
 * The agent console's browser softphone: a SIP.js user agent registered over
 * drachtio-server's SIP WebSocket (`GET me`'s `softphone.wsUrl`) as the agent, with the SIP
 * password the agent types in the panel. The password is kept in this object only (never
 * stored, never sent anywhere but in SIP digest responses). Its Contact carries the
 * `ccs-webrtc` parameter, so ccswitch sends it calls without SDP: the browser offers WebRTC
 * (ICE, DTLS-SRTP) in its 200 OK and FreeSWITCH answers in the ACK.
 *
 * The microphone is asked for before registering: without one (or when the agent declines)
 * the softphone stays off and the console is a CTI panel for the desk phone. While a call
 * rings the panel shows it and plays a ring; Answer takes it in the browser, Decline
 * refuses it (603), and Hang up ends it.
 */
import { Invitation, Registerer, RegistererState, SessionState, UserAgent, type Session, type Web } from 'sip.js';
import { h, replace } from './dom';

/** Where the softphone registers (`GET me`'s `softphone`). */
export interface SoftphoneSettings {
  wsUrl: string;
  domain: string;
}

/** What the panel shows. */
export type SoftphoneStatus = 'off' | 'starting' | 'registered' | 'ringing' | 'in_call' | 'failed';

/** The Contact URI parameter ccswitch recognises a browser by (app/sip/webrtc.ts). */
const WEBRTC_PARAM = 'ccs-webrtc';

/** A ring while a call rings: two tones (440 + 480 Hz), 2 s on, 4 s off, made with Web Audio. */
class Ringer {
  private ctx: AudioContext | undefined;
  private stopAt: (() => void) | undefined;

  start(): void {
    if (this.stopAt !== undefined) return;
    try {
      this.ctx ??= new AudioContext();
      const ctx = this.ctx;
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(ctx.destination);
      const oscs = [440, 480].map((f) => {
        const o = ctx.createOscillator();
        o.frequency.value = f;
        o.connect(gain);
        o.start();
        return o;
      });
      const t0 = ctx.currentTime;
      for (let i = 0; i < 20; i++) {
        gain.gain.setValueAtTime(0.1, t0 + i * 6);
        gain.gain.setValueAtTime(0, t0 + i * 6 + 2);
      }
      this.stopAt = () => {
        for (const o of oscs) o.stop();
        gain.disconnect();
      };
    } catch {
      // No audio output: the panel still shows the call.
    }
  }

  stop(): void {
    this.stopAt?.();
    this.stopAt = undefined;
  }
}

/** The softphone and its panel. */
export class Softphone {
  readonly panel: HTMLElement;
  private readonly body = h('div');
  private status: SoftphoneStatus = 'off';
  private detail = '';
  private ua: UserAgent | undefined;
  private registerer: Registerer | undefined;
  private incoming: Invitation | undefined;
  private session: Session | undefined;
  private readonly audio = h('audio', { autoplay: true, 'data-testid': 'softphone-audio' });
  private readonly ringer = new Ringer();

  /**
   * `settings` null: the server has no softphone configured. `onChange` is called whenever
   * the softphone's state changes (the console re-renders its offer's Answer button).
   */
  constructor(
    private readonly settings: SoftphoneSettings | null,
    private readonly agent: string,
    private readonly onChange: () => void,
  ) {
    this.panel = h('section', { class: 'panel softphone', 'aria-label': 'Softphone', 'data-testid': 'softphone' }, h('h2', {}, 'Softphone'), this.body, this.audio);
    this.render();
  }

  /** True while a call rings in the browser (Answer can take it). */
  get ringing(): boolean {
    return this.status === 'ringing';
  }

  /** Answers the ringing call in the browser. */
  async answer(): Promise<void> {
    const inv = this.incoming;
    if (inv === undefined) throw new Error('no call is ringing in the browser');
    this.ringer.stop();
    await inv.accept({ sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } } });
  }

  /** Declines the ringing call (603 Decline). */
  async decline(): Promise<void> {
    const inv = this.incoming;
    if (inv === undefined) throw new Error('no call is ringing in the browser');
    this.ringer.stop();
    await inv.reject({ statusCode: 603, reasonPhrase: 'Decline' });
  }

  /** Ends the call in the browser. */
  async hangUp(): Promise<void> {
    const s = this.session;
    if (s === undefined) return;
    if (s.state === SessionState.Established) await s.bye();
  }

  /** Unregisters and stops (the page is closing or the agent turned it off). */
  async stop(): Promise<void> {
    this.ringer.stop();
    const ua = this.ua;
    this.ua = undefined;
    try {
      if (this.registerer?.state === RegistererState.Registered) await this.registerer.unregister();
    } catch {
      // The transport may be gone already.
    }
    await ua?.stop();
    this.set('off', 'Turned off: calls ring on your desk phone or SIP client.');
  }

  private set(status: SoftphoneStatus, detail: string): void {
    this.status = status;
    this.detail = detail;
    this.panel.dataset.status = status;
    this.render();
    this.onChange();
  }

  private render(): void {
    if (this.settings === null) {
      replace(this.body, h('p', { class: 'note', 'data-testid': 'softphone-off' }, 'The browser softphone is not configured on this server (sip.softphone.wsUrl): calls ring on your desk phone or SIP client.'));
      return;
    }
    const status = h('p', { 'data-testid': 'softphone-status' }, this.detail);
    if (this.status === 'off' || this.status === 'failed') {
      const password = h('input', { type: 'password', id: 'sip-password', autocomplete: 'current-password', 'data-testid': 'sip-password', placeholder: 'SIP password' });
      const form = h(
        'form',
        {
          class: 'row',
          onsubmit: (e: Event) => {
            e.preventDefault();
            void this.start(password.value);
          },
        },
        h('label', { for: 'sip-password' }, `SIP user ${this.agent}`),
        password,
        h('button', { type: 'submit', 'data-op': 'softphone-start' }, 'Use this browser as my phone'),
      );
      replace(this.body, status, form, h('p', { class: 'note' }, 'Asks for your microphone first. Without one the console still works: calls ring on your desk phone.'));
      return;
    }
    const buttons: HTMLElement[] = [];
    if (this.status === 'ringing') {
      buttons.push(h('button', { type: 'button', 'data-op': 'softphone-answer', onclick: () => void this.answer().catch((err: unknown) => this.set('registered', `Answer failed: ${String(err)}`)) }, 'Answer'));
      buttons.push(h('button', { type: 'button', class: 'warn', 'data-op': 'softphone-decline', onclick: () => void this.decline().catch(() => undefined) }, 'Decline'));
    }
    if (this.status === 'in_call') buttons.push(h('button', { type: 'button', class: 'warn', 'data-op': 'softphone-hangup', onclick: () => void this.hangUp() }, 'Hang up'));
    buttons.push(h('button', { type: 'button', class: 'ghost', 'data-op': 'softphone-stop', onclick: () => void this.stop() }, 'Turn off'));
    replace(this.body, status, h('div', { class: 'row' }, buttons));
  }

  /** Checks the microphone, then registers with `password`. */
  private async start(password: string): Promise<void> {
    const settings = this.settings;
    if (settings === null || this.ua !== undefined) return;
    if (password === '') {
      this.set('failed', 'Type your SIP password first.');
      return;
    }
    this.set('starting', 'Asking for the microphone…');
    try {
      const mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      for (const t of mic.getTracks()) t.stop();
    } catch (err) {
      this.set('failed', `No microphone (${err instanceof Error ? err.name : String(err)}): the softphone stays off; calls ring on your desk phone.`);
      return;
    }
    const uri = UserAgent.makeURI(`sip:${this.agent}@${settings.domain}`);
    if (uri === undefined) {
      this.set('failed', `"${this.agent}@${settings.domain}" is not a SIP address.`);
      return;
    }
    this.set('starting', `Registering over ${settings.wsUrl}…`);
    const ua = new UserAgent({
      uri,
      authorizationUsername: this.agent,
      authorizationPassword: password,
      transportOptions: { server: settings.wsUrl, connectionTimeout: 5 },
      contactParams: { transport: 'ws', [WEBRTC_PARAM]: '1' },
      logBuiltinEnabled: false,
      delegate: { onInvite: (inv) => this.onInvite(inv) },
    });
    this.ua = ua;
    try {
      await ua.start();
      const registerer = new Registerer(ua);
      this.registerer = registerer;
      const done = new Promise<void>((resolve, reject) => {
        registerer.stateChange.addListener((s) => {
          if (s === RegistererState.Registered) resolve();
          else if (s === RegistererState.Unregistered || s === RegistererState.Terminated) reject(new Error('the registrar refused the registration (check the password)'));
        });
      });
      await registerer.register({ requestDelegate: { onReject: (r) => this.set('failed', `Registration refused: ${r.message.statusCode} ${r.message.reasonPhrase}`) } });
      await done;
      this.set('registered', 'Registered: calls ring here and on your other phones.');
    } catch (err) {
      this.ua = undefined;
      await ua.stop().catch(() => undefined);
      if (this.status !== 'failed') this.set('failed', `Could not register: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private onInvite(inv: Invitation): void {
    if (this.incoming !== undefined || this.session !== undefined) {
      void inv.reject({ statusCode: 486 });
      return;
    }
    this.incoming = inv;
    this.ringer.start();
    const from = inv.remoteIdentity.uri.user ?? '';
    this.set('ringing', `Ringing: a call from ${from}`);
    inv.stateChange.addListener((s) => {
      if (s === SessionState.Established) {
        this.incoming = undefined;
        this.session = inv;
        const sdh = inv.sessionDescriptionHandler as Web.SessionDescriptionHandler | undefined;
        if (sdh !== undefined) {
          this.audio.srcObject = sdh.remoteMediaStream;
          void this.audio.play().catch(() => undefined);
        }
        this.set('in_call', `On a call with ${from} in the browser`);
      } else if (s === SessionState.Terminated) {
        this.ringer.stop();
        this.incoming = undefined;
        this.session = undefined;
        this.audio.srcObject = null;
        if (this.ua !== undefined) this.set('registered', 'Registered: calls ring here and on your other phones.');
      }
    });
  }
}
