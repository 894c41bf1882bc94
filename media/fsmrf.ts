/**
 * The media port (media/port.ts) on FreeSWITCH through drachtio-fsmrf 4.1.2.
 *
 * - Legs: each {@link Endpoint} is a FreeSWITCH channel reached by an INVITE from drachtio to
 *   the `drachtio_mrf` SIP profile, controlled through the outbound event socket FreeSWITCH
 *   opens back to us (config/freeswitch/dialplan/mrf.xml).
 * - Conversations: each {@link Conference} is a mod_conference conference that exists while
 *   it has members: the first join creates it, mod_conference ends it when the last member
 *   leaves and a later join creates it afresh (members' modes, relations and music are set per
 *   member, so nothing of it is lost). No control leg holds it open: fsmrf's design, a third
 *   SIP/RTP channel per conversation, cost FreeSWITCH a third of a call's CPU (measured in
 *   `npm run bench -- vs-callcenter`).
 * - Modes (DESIGN.md section 5) are member mute/deaf flags; hold music is the conference's
 *   own music for a member alone, plus a per-member stream for a member whose peers are all
 *   on hold (mode 4), which mod_conference does not do by itself.
 * - Prompts are tone streams, so no sound files need to be installed.
 *
 * Every raw FreeSWITCH command string of ccswitch lives in this file (DESIGN.md section 2).
 */
import { EventEmitter } from 'node:events';
import { createConnection } from 'node:net';
import Mrf from 'drachtio-fsmrf';
import type { Logger } from '../lib/logger';
import { UnavailableError } from '../lib/errors';
import { createAnswerFirstEndpoint } from './fsmrfAnswerFirst';
import { modeFlags, type Announcement, type Conference, type Endpoint, type EndpointOptions, type LegMode, type MediaServer, type Prompt } from './port';

/** Where FreeSWITCH's event socket is (config.freeswitch). */
export interface FreeswitchAddress {
  host: string;
  port: number;
  secret: string;
}

/** Options of {@link createFsmrfMediaServer}. */
export interface FsmrfOptions {
  /** The drachtio-srf instance the app uses (INVITEs to FreeSWITCH go through it). */
  srf: object;
  /** FreeSWITCH's event socket. */
  freeswitch: FreeswitchAddress;
  logger: Logger;
  /**
   * Address our outbound-socket server listens on and FreeSWITCH connects back to for each
   * channel. Default: 127.0.0.1 when FreeSWITCH is on loopback, else fsmrf's choice (the
   * host's first non-internal IPv4 address).
   */
  listenAddress?: string;
  /** FreeSWITCH SIP profile the INVITEs go to (default `drachtio_mrf`, DESIGN.md section 11). */
  profile?: string;
  /** Reconnect backoff: first delay and cap, in ms (default 250 and 10000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Longest wait for one FreeSWITCH operation before it fails (default 10000 ms). */
  operationTimeoutMs?: number;
}

/**
 * Tone streams for the prompts (teletone `%(on_ms,off_ms,freq...)` segments): confirm is a
 * short rising two-tone, error a low triple beep.
 */
export const PROMPT_TONES: Readonly<Record<Prompt, string>> = {
  confirm: 'tone_stream://%(120,40,660);%(220,0,880)',
  error: 'tone_stream://%(150,100,330);%(150,100,330);%(150,0,330)',
};

/** Most beeps a position announcement renders without sound files (beyond: a long tone). */
const MAX_POSITION_BEEPS = 9;

/**
 * What FreeSWITCH plays for a prompt or announcement. A position without a template is
 * rendered without sound files: one short beep per place (up to 9; from 10 on, a long tone),
 * so a caller still hears the queue move.
 */
export function soundOf(p: Prompt | Announcement): string {
  if (typeof p === 'string') return PROMPT_TONES[p];
  if (p.kind === 'sound') return p.sound;
  if (p.template !== undefined) return p.template.split('{n}').join(String(p.position));
  if (p.position > MAX_POSITION_BEEPS) return 'tone_stream://%(1200,300,523)';
  return `tone_stream://${Array.from({ length: Math.max(1, p.position) }, () => '%(120,180,880)').join(';')}`;
}

/**
 * Hold music when the conversation names none: a slow arpeggio looped forever. The same
 * tone is the conference profile's moh-sound in config/freeswitch.
 */
export const DEFAULT_MOH = 'tone_stream://%(300,100,523);%(300,100,659);%(300,100,784);%(600,1500,659);loops=-1';

/** The FreeSWITCH api commands ccswitch sends. Conference arguments are split on spaces. */
const fsApi = {
  sofiaStatus: 'sofia status',
  mute: (conf: string, member: number, on: boolean) => `conference ${conf} ${on ? 'mute' : 'unmute'} ${member} quiet`,
  deaf: (conf: string, member: number, on: boolean) => `conference ${conf} ${on ? 'deaf' : 'undeaf'} ${member}`,
  playToMember: (conf: string, file: string, member: number) => `conference ${conf} play ${file} ${member}`,
  stopMemberFiles: (conf: string, member: number) => `conference ${conf} stop all ${member}`,
  // mod_conference `relate <member> <other> nospeak`: member is not heard by other; `clear` undoes it.
  relate: (conf: string, member: number, others: readonly number[], heard: boolean) => `conference ${conf} relate ${member} ${others.join(',')} ${heard ? 'clear' : 'nospeak'}`,
  // The member leaves: its conference application ends and the channel is back with our socket.
  // Not `transfer`: in 1.10 that is a dialplan transfer to an inline `conference` extension,
  // which takes the channel from our socket application and hangs it up when that conference ends.
  kick: (conf: string, member: number) => `conference ${conf} kick ${member}`,
  kickAll: (conf: string) => `conference ${conf} kick all`,
} as const;

/** The channel variable mod_conference takes a new conference's music from. */
const MOH_VARIABLE = 'conference_moh_sound';
/** mod_conference's maintenance event subclass and the action marking a member play's end. */
const CONF_EVENT = 'conference::maintenance';
/** The maintenance actions of a member entering and leaving a conference. */
const ADD_MEMBER = 'add-member';
const DEL_MEMBER = 'del-member';
const MEMBER_PLAY_DONE = 'play-file-member-done';

/** True if `sofia status` shows `profile` running with an IPv4 SIP address (fsmrf's own test). */
function profileRunning(status: string, profile: string): boolean {
  const escaped = profile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\s*${escaped}\\s.*sip:mod_sofia@(?:\\d{1,3}\\.){3}\\d{1,3}:\\d+`, 'm').test(status);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from FreeSWITCH within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** One event-socket frame: its headers and its body. */
export interface EslFrame {
  headers: Record<string, string>;
  body: string;
}

/**
 * Splits event-socket traffic into frames (headers, a blank line, then Content-Length bytes of
 * body), across however the bytes arrive.
 */
export class EslFrameReader {
  private buf = Buffer.alloc(0);

  /** Adds received bytes; returns the frames they completed, in order. */
  push(chunk: Buffer): EslFrame[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: EslFrame[] = [];
    for (;;) {
      const end = this.buf.indexOf('\n\n');
      if (end < 0) return out;
      const headers = Object.fromEntries(
        this.buf
          .subarray(0, end)
          .toString()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      const len = Number(headers['Content-Length'] ?? 0);
      if (this.buf.length < end + 2 + len) return out;
      out.push({ headers, body: this.buf.subarray(end + 2, end + 2 + len).toString() });
      this.buf = this.buf.subarray(end + 2 + len);
    }
  }
}

/**
 * Runs one api command on a fresh event-socket connection and resolves with the response
 * body. Used before handing the connection to fsmrf: fsmrf throws from inside a socket
 * callback (an uncaught exception) when the SIP profile is missing and never settles on a
 * wrong password, so both are checked here first. Tests use it to look at FreeSWITCH
 * independently of the adapter.
 */
export function eslApi(fs: FreeswitchAddress, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: fs.host, port: fs.port });
    const frames = new EslFrameReader();
    let step: 'auth' | 'authed' | 'api' = 'auth';
    let settled = false;
    const done = (err: Error | null, body?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeAllListeners('data');
      sock.on('error', () => undefined);
      sock.destroy();
      if (err) reject(err);
      else resolve(body ?? '');
    };
    const timer = setTimeout(() => done(new Error(`event socket ${fs.host}:${fs.port}: no answer to "${command}" within ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', (err) => done(new Error(`event socket ${fs.host}:${fs.port}: ${err.message}`)));
    sock.on('close', () => done(new Error(`event socket ${fs.host}:${fs.port} closed before answering "${command}"`)));
    sock.on('data', (chunk: Buffer) => {
      for (const { headers, body } of frames.push(chunk)) {
        const type = headers['Content-Type'];
        if (type === 'auth/request' && step === 'auth') {
          sock.write(`auth ${fs.secret}\n\n`);
          step = 'authed';
        } else if (type === 'command/reply' && step === 'authed') {
          const reply = headers['Reply-Text'] ?? '';
          if (!reply.startsWith('+OK')) return done(new Error(`event socket ${fs.host}:${fs.port} refused the password: ${reply}`));
          sock.write(`api ${command}\n\n`);
          step = 'api';
        } else if (type === 'api/response' && step === 'api') {
          return done(null, body);
        } else if (type === 'text/rude-rejection') {
          return done(new Error(`event socket ${fs.host}:${fs.port} rejected us (acl): ${body.trim()}`));
        }
      }
    });
  });
}

/** The drachtio-fsmrf media server adapter. Create it with {@link createFsmrfMediaServer}. */
export class FsmrfMediaServer implements MediaServer {
  private readonly mrf: Mrf;
  private ms: Mrf.MediaServer | undefined;
  private readonly events = new EventEmitter();
  private readonly profile: string;
  private readonly listenAddress: string | undefined;
  private readonly initialMs: number;
  private readonly maxMs: number;
  /** Longest wait for one FreeSWITCH operation. */
  readonly opTimeoutMs: number;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastError = 'not connected yet';
  private readonly log: Logger;

  constructor(private readonly opts: FsmrfOptions) {
    this.log = opts.logger.child({ component: 'media' });
    this.mrf = new Mrf(opts.srf);
    this.profile = opts.profile ?? 'drachtio_mrf';
    const fsHost = opts.freeswitch.host;
    this.listenAddress = opts.listenAddress ?? (fsHost === 'localhost' || fsHost.startsWith('127.') ? '127.0.0.1' : undefined);
    this.initialMs = opts.backoff?.initialMs ?? 250;
    this.maxMs = opts.backoff?.maxMs ?? 10000;
    this.opTimeoutMs = opts.operationTimeoutMs ?? 10000;
    this.events.setMaxListeners(0);
  }

  /** True while the event socket to FreeSWITCH is up. */
  get available(): boolean {
    return this.ms !== undefined && this.ms.connected();
  }

  /** Health for /healthz: never throws. */
  health(): { up: boolean; detail?: string } {
    const where = `${this.opts.freeswitch.host}:${this.opts.freeswitch.port}`;
    return this.available ? { up: true, detail: `freeswitch ${where}` } : { up: false, detail: `freeswitch ${where}: ${this.lastError}` };
  }

  /** Starts connecting (and reconnecting) in the background. Idempotent. */
  start(): void {
    if (this.stopped || this.ms || this.retryTimer) return;
    this.retryTimer = setTimeout(() => void this.connect(), 0);
  }

  /** Resolves once connected; rejects after `timeoutMs`. */
  async whenAvailable(timeoutMs = 10000): Promise<void> {
    if (this.available) return;
    await withTimeout(
      new Promise<void>((resolve) => this.events.once('available', () => resolve())),
      timeoutMs,
      `connecting to ${this.opts.freeswitch.host}:${this.opts.freeswitch.port} (last error: ${this.lastError})`,
    ).catch((err: unknown) => {
      throw new UnavailableError('media server (FreeSWITCH)', err);
    });
  }

  /** Stops reconnecting and closes the event socket. Legs already on FreeSWITCH are left alone. */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const ms = this.ms;
    this.ms = undefined;
    if (ms) {
      try {
        ms.disconnect();
      } catch (err) {
        this.log.warn({ err }, 'error while disconnecting from FreeSWITCH');
      }
    }
    return Promise.resolve();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.stopped) return;
    const { host, port, secret } = this.opts.freeswitch;
    try {
      const status = await eslApi(this.opts.freeswitch, fsApi.sofiaStatus, this.opTimeoutMs);
      if (!profileRunning(status, this.profile)) throw new Error(`FreeSWITCH has no running SIP profile "${this.profile}" with an IPv4 address`);
      const ms = await withTimeout(
        this.mrf.connect({ address: host, port, secret, profile: this.profile, ...(this.listenAddress ? { listenAddress: this.listenAddress } : {}) }),
        this.opTimeoutMs,
        'fsmrf connect',
      );
      if (this.stopped) {
        ms.disconnect();
        return;
      }
      this.ms = ms;
      this.attempt = 0;
      this.lastError = '';
      ms.on('error', (err: Error) => this.log.warn({ err: err.message }, 'FreeSWITCH event socket error'));
      ms.once('end', () => this.lost(ms));
      this.log.info({ freeswitch: `${host}:${port}`, outboundPort: ms.listenPort }, 'connected to FreeSWITCH');
      this.events.emit('available');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Log each distinct failure once at warn, repeats at debug: FreeSWITCH may be down a while.
      if (message !== this.lastError) this.log.warn({ err: message, freeswitch: `${host}:${port}` }, 'cannot connect to FreeSWITCH; retrying');
      else this.log.debug({ err: message }, 'still cannot connect to FreeSWITCH');
      this.lastError = message;
      this.retry();
    }
  }

  private lost(ms: Mrf.MediaServer): void {
    if (this.ms !== ms) return;
    this.ms = undefined;
    this.lastError = 'event socket closed';
    this.log.warn({ freeswitch: `${this.opts.freeswitch.host}:${this.opts.freeswitch.port}` }, 'lost the FreeSWITCH event socket; reconnecting');
    try {
      // drachtio-modesl would reconnect by itself with an uncapped backoff and without
      // re-subscribing; close this MediaServer and make a fresh one on our own schedule.
      ms.disconnect();
    } catch (err) {
      this.log.debug({ err }, 'closing the lost FreeSWITCH connection');
    }
    this.retry();
  }

  private retry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 16));
    this.attempt += 1;
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  private server(): Mrf.MediaServer {
    if (!this.ms || !this.ms.connected()) throw new UnavailableError('media server (FreeSWITCH)');
    return this.ms;
  }

  /**
   * Runs an api command on the inbound connection, with the operation timeout.
   * @internal For this module's conferences; callers outside media/ use the port.
   */
  async api(command: string): Promise<string> {
    return withTimeout(this.server().api(command), this.opTimeoutMs, command);
  }

  /**
   * Runs an api command that answers `+OK ...`; anything else is an error.
   * @internal As {@link FsmrfMediaServer.api}.
   */
  async apiOk(command: string): Promise<string> {
    const body = await this.api(command);
    if (!body.startsWith('+OK')) throw new Error(`FreeSWITCH refused "${command}": ${body.trim()}`);
    return body;
  }

  async createEndpoint(opts: EndpointOptions = {}): Promise<Endpoint> {
    const ms = this.server();
    if (opts.sendAnswer !== undefined) {
      if (opts.remoteSdp === undefined) throw new Error('createEndpoint: sendAnswer needs remoteSdp (the far end\'s offer)');
      return new FsEndpoint(this, await createAnswerFirstEndpoint(ms, opts.remoteSdp, opts.sendAnswer, this.opTimeoutMs), this.log);
    }
    const ep = await withTimeout(ms.createEndpoint(opts.remoteSdp ? { remoteSdp: opts.remoteSdp } : {}), this.opTimeoutMs, 'create endpoint');
    return new FsEndpoint(this, ep, this.log);
  }

  createConference(name: string, opts: { moh?: string } = {}): Promise<Conference> {
    if (!/^[\w.@-]+$/.test(name)) return Promise.reject(new Error(`conference name "${name}" must be letters, digits, _ . @ -`));
    // In use: one of ours. Not asked of FreeSWITCH (`conference <name> list count`): names are
    // conversation ids, unique across instances, and under load that one api command took
    // 40 ms of the caller's set-up (measured in `npm run bench -- vs-callcenter`).
    if (this.conferences.has(name)) return Promise.reject(new Error(`cannot create conference ${name}: conference exists`));
    // Nothing to create yet: mod_conference creates the conference with its first member.
    this.conferences.add(name);
    return Promise.resolve(new FsConference(this, name, opts.moh, this.log.child({ conference: name }), () => this.conferences.delete(name)));
  }

  /** Names of this adapter's conferences not destroyed yet. */
  private readonly conferences = new Set<string>();
}

/** A FreeSWITCH channel as a port {@link Endpoint}. */
class FsEndpoint implements Endpoint {
  readonly id: string;
  /** The conference this leg is in (a channel can be in one at a time) and its member id. */
  membership: { conf: FsConference; memberId: number } | undefined;
  private destroyed = false;
  /** Settles when FreeSWITCH reports the channel gone. */
  readonly gone: Promise<void>;
  readonly lost: Promise<void>;

  constructor(
    private readonly owner: FsmrfMediaServer,
    readonly raw: Mrf.Endpoint,
    private readonly log: Logger,
  ) {
    this.id = raw.uuid;
    this.gone = new Promise((resolve) => raw.once('destroy', () => resolve()));
    this.lost = new Promise((resolve) => {
      void this.gone.then(() => {
        if (!this.destroyed) {
          this.log.warn({ endpoint: this.id }, 'FreeSWITCH lost the channel');
          resolve();
        }
      });
    });
    void this.gone.then(() => {
      this.membership?.conf.memberLeft(this);
      this.membership = undefined;
    });
  }

  get localSdp(): string {
    return this.raw.local.sdp;
  }

  /** The channel's conference_moh_sound (the dialplan's until we set another). */
  mohVar: string = DEFAULT_MOH;

  /** Rejects when the channel goes away before `p` settles. */
  whileAlive<T>(p: Promise<T>, what: string): Promise<T> {
    return Promise.race([p, this.gone.then(() => Promise.reject(new Error(`${what}: FreeSWITCH channel ${this.id} is gone`)))]);
  }

  async modify(remoteSdp: string): Promise<void> {
    await withTimeout(this.whileAlive(this.raw.modify(remoteSdp), 'modify'), this.owner.opTimeoutMs, 'modify endpoint');
  }

  async play(prompt: Prompt | Announcement): Promise<void> {
    const tone = soundOf(prompt);
    const what = typeof prompt === 'string' ? prompt : prompt.kind;
    if (this.membership) {
      // A channel in a conference runs the conference application; a `playback` would wait
      // behind it, so the conference plays the prompt to this member instead.
      await this.membership.conf.playToMember(this, tone);
      return;
    }
    await withTimeout(this.whileAlive(this.raw.play(tone), `play ${what}`), this.owner.opTimeoutMs, `play ${what}`);
  }

  onDtmf(fn: (digit: string) => void): () => void {
    // drachtio-fsmrf subscribes the channel's DTMF events and emits them as 'dtmf'.
    const listener = (evt: { dtmf?: string }): void => {
      if (typeof evt.dtmf === 'string' && evt.dtmf !== '') fn(evt.dtmf);
    };
    this.raw.on('dtmf', listener);
    return () => this.raw.off('dtmf', listener);
  }

  /**
   * Runs the `conference` application with `flags` and resolves with this channel's member id
   * once mod_conference reports *this channel* added (its add-member event on the channel's
   * own event name). fsmrf's join() takes the first add-member event of any channel, which
   * with channels joining in parallel was, measured, another channel's: the id was wrong and
   * the join had not happened yet.
   */
  async joinConference(name: string, flags: NonNullable<Mrf.JoinOptions['flags']>): Promise<number> {
    // A channel still in a conference that ended under it (a moved browser leg) leaves it first:
    // a second conference application would otherwise wait behind the first.
    const previous = this.inConference;
    if (previous !== undefined) await withTimeout(this.whileAlive(previous.left, `leave ${previous.name}`), this.owner.opTimeoutMs, `leave ${previous.name} before joining ${name}`);
    const conn = this.raw.conn;
    if (!conn) throw new Error(`FreeSWITCH channel ${this.id} is gone`);
    const event = `esl::event::CUSTOM::${this.id}`;
    let listener: ((evt: Mrf.EslEvent) => void) | undefined;
    const added = new Promise<number>((resolve) => {
      listener = (evt: Mrf.EslEvent) => {
        if (evt.getHeader('Event-Subclass') !== CONF_EVENT || evt.getHeader('Action') !== ADD_MEMBER || evt.getHeader('Conference-Name') !== name) return;
        const id = Number(evt.getHeader('Member-ID'));
        if (Number.isInteger(id) && id > 0) resolve(id);
      };
      conn.on(event, listener);
    });
    try {
      // fsmrf's join still runs the application (and keeps its own bookkeeping); its answer is not used.
      const joined = this.raw.join(name, { flags });
      joined.catch(() => undefined);
      const id = await withTimeout(this.whileAlive(added, `join ${name}`), this.owner.opTimeoutMs, `join ${name}`);
      // From now on its del-member event in `name` tells when it is out again (inConference).
      this.watchLeave(conn, event, name);
      return id;
    } finally {
      conn.off(event, listener!);
    }
  }

  /**
   * The FreeSWITCH conference the channel is in, as mod_conference last told (its add-member
   * and del-member events), and a promise settling when it left it. Not {@link membership}:
   * a conference that ended keeps its members until mod_conference has let them go.
   */
  private inConference: { name: string; left: Promise<void> } | undefined;

  private watchLeave(conn: NonNullable<Mrf.Endpoint['conn']>, event: string, name: string): void {
    let listener: ((evt: Mrf.EslEvent) => void) | undefined;
    const left = new Promise<void>((resolve) => {
      listener = (evt: Mrf.EslEvent) => {
        if (evt.getHeader('Event-Subclass') !== CONF_EVENT || evt.getHeader('Action') !== DEL_MEMBER || evt.getHeader('Conference-Name') !== name) return;
        conn.off(event, listener!);
        resolve();
      };
      conn.on(event, listener);
    });
    const entry = { name, left };
    this.inConference = entry;
    void left.then(() => {
      if (this.inConference === entry) this.inConference = undefined;
    });
  }

  /** Waits for mod_conference's end-of-play event for `file` to this member. */
  memberPlayDone(file: string): { done: Promise<void>; cancel: () => void } {
    const conn = this.raw.conn;
    if (!conn) return { done: Promise.reject(new Error(`FreeSWITCH channel ${this.id} is gone`)), cancel: () => undefined };
    let listener: ((evt: Mrf.EslEvent) => void) | undefined;
    const done = new Promise<void>((resolve) => {
      listener = (evt: Mrf.EslEvent) => {
        if (evt.getHeader('Event-Subclass') === CONF_EVENT && evt.getHeader('Action') === MEMBER_PLAY_DONE && evt.getHeader('File') === file) resolve();
      };
      conn.on(`esl::event::CUSTOM::${this.id}`, listener);
    });
    const cancel = (): void => {
      if (listener) conn.off(`esl::event::CUSTOM::${this.id}`, listener);
    };
    return { done: this.whileAlive(done, 'play to member').finally(cancel), cancel };
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.membership?.conf.memberLeft(this);
    this.membership = undefined;
    await hangUp(this.raw, this.gone, this.owner.opTimeoutMs, this.log);
  }
}

/**
 * Ends a FreeSWITCH channel by sending BYE on its SIP dialog and waits until FreeSWITCH
 * reports it gone. Not fsmrf's destroy(): that runs the `hangup` application over the
 * outbound socket, which waits behind a running `conference` application forever.
 */
async function hangUp(raw: Mrf.Endpoint, gone: Promise<void>, timeoutMs: number, log: Logger): Promise<void> {
  const dialog = raw.dialog;
  if (!dialog || !raw.connected) return;
  try {
    await withTimeout(
      Promise.all([dialog.destroy(), gone]).then(() => undefined),
      timeoutMs,
      `hang up ${raw.uuid}`,
    );
  } catch (err) {
    log.warn({ err, endpoint: raw.uuid }, 'FreeSWITCH did not confirm the hangup');
  }
}

/** A member of a conference as this adapter sees it. */
interface Member {
  memberId: number;
  mode: LegMode;
  /** Not a party (a monitoring supervisor): left out of the others' hold-music decision. */
  bystander: boolean;
  /** True while the per-member hold music plays to it. */
  moh: boolean;
}

/** A mod_conference conference as a port {@link Conference}. */
class FsConference implements Conference {
  readonly name: string;
  private readonly members = new Map<FsEndpoint, Member>();
  private destroyed = false;
  /** Serialises membership changes so hold-music decisions see a settled state. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly owner: FsmrfMediaServer,
    name: string,
    /** The conversation's own music for a member alone; undefined: the profile's moh-sound. */
    customMoh: string | undefined,
    private readonly log: Logger,
    /** Called once, on destroy: the name is free again. */
    private readonly released: () => void,
  ) {
    this.name = name;
    this.moh = customMoh ?? DEFAULT_MOH;
  }

  /** What a member whose peers are all on hold hears. */
  private readonly moh: string;

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private endpointOf(ep: Endpoint): FsEndpoint {
    if (!(ep instanceof FsEndpoint)) throw new Error(`endpoint ${ep.id} does not belong to this FreeSWITCH adapter`);
    return ep;
  }

  join(ep: Endpoint, mode: LegMode, o: { bystander?: boolean } = {}): Promise<void> {
    const leg = this.endpointOf(ep);
    return this.serial(async () => {
      if (this.destroyed) throw new Error(`conference ${this.name} is destroyed`);
      if (leg.membership) throw new Error(`endpoint ${leg.id} is already in conference ${leg.membership.conf.name}`);
      const { mute, deaf } = modeFlags(mode);
      // With no member left mod_conference has ended the conference (or never had it): this
      // join creates it afresh.
      // Its music for a member alone is the creating member's conference_moh_sound (the
      // dialplan sets ccs_moh, which is DEFAULT_MOH): set before the join, so the first member
      // never hears other music first (a `conference moh` after the join would be too late).
      if (this.members.size === 0 && leg.mohVar !== this.moh) {
        await withTimeout(leg.whileAlive(leg.raw.set(MOH_VARIABLE, this.moh), 'set music'), this.owner.opTimeoutMs, 'set conference music');
        leg.mohVar = this.moh;
      }
      // Joining with the flags set avoids a moment at mode 1 before the mode is applied. The
      // member id is the one of this channel's own add-member event (see joinConference).
      const memberId = await leg.joinConference(this.name, { mute, deaf });
      this.members.set(leg, { memberId, mode, moh: false, bystander: o.bystander === true });
      leg.membership = { conf: this, memberId };
      await this.refreshMoh();
    });
  }

  setMode(ep: Endpoint, mode: LegMode, o: { bystander?: boolean } = {}): Promise<void> {
    const leg = this.endpointOf(ep);
    return this.serial(async () => {
      const m = this.members.get(leg);
      if (!m) throw new Error(`${leg.id} is not in ${this.name}`);
      const { mute, deaf } = modeFlags(mode);
      // Both sent at once: drachtio-modesl matches api responses to requests in order, and
      // FreeSWITCH answers them in order, so this saves a round trip per mode change.
      await Promise.all([this.owner.apiOk(fsApi.mute(this.name, m.memberId, mute)), this.owner.apiOk(fsApi.deaf(this.name, m.memberId, deaf))]);
      m.mode = mode;
      if (o.bystander !== undefined) m.bystander = o.bystander;
      await this.refreshMoh();
    });
  }

  setHeard(ep: Endpoint, by: readonly Endpoint[], heard: boolean): Promise<void> {
    const leg = this.endpointOf(ep);
    return this.serial(async () => {
      const m = this.members.get(leg);
      if (!m) throw new Error(`${leg.id} is not in ${this.name}`);
      const others = by.map((o) => this.members.get(this.endpointOf(o))?.memberId).filter((id): id is number => id !== undefined && id !== m.memberId);
      if (others.length === 0) return;
      await this.owner.apiOk(fsApi.relate(this.name, m.memberId, others, heard));
    });
  }

  /**
   * Moves member `ep` into `to`: mod_conference kicks it out of this conference (its channel
   * returns to our socket application, still up: `hangup_after_conference=false`) and it joins
   * `to` with `mode`'s flags once mod_conference reported it out (its del-member event). Its
   * member id there is its add-member event's (measured on 1.10: the same id again). Between
   * the two it is in no conference: it hears silence.
   */
  moveTo(ep: Endpoint, to: Conference, mode: LegMode, o: { bystander?: boolean } = {}): Promise<void> {
    const leg = this.endpointOf(ep);
    if (!(to instanceof FsConference)) return Promise.reject(new Error(`conference ${to.name} does not belong to this FreeSWITCH adapter`));
    if (to === this) return this.setMode(ep, mode, o);
    return (async () => {
      await this.serial(async () => {
        const m = this.members.get(leg);
        // Not here any more (this conference ended under it): it only joins the other.
        if (m === undefined || this.destroyed) return;
        this.members.delete(leg);
        leg.membership = undefined;
        await this.owner.apiOk(fsApi.kick(this.name, m.memberId));
        // Its peers here may be left with only held members now.
        await this.refreshMoh();
      });
      await to.join(leg, mode, o);
    })();
  }

  /** Plays `file` to one member and resolves when it has finished. */
  playToMember(leg: FsEndpoint, file: string): Promise<void> {
    return this.serial(async () => {
      const m = this.members.get(leg);
      if (!m) throw new Error(`${leg.id} is not in ${this.name}`);
      // Member plays queue behind each other and the hold music loops forever: stop it first.
      if (m.moh) await this.stopMoh(m);
      const { done, cancel } = leg.memberPlayDone(file);
      try {
        await this.owner.apiOk(fsApi.playToMember(this.name, file, m.memberId));
      } catch (err) {
        cancel();
        throw err;
      }
      await withTimeout(done, this.owner.opTimeoutMs, `play to member ${m.memberId}`);
      await this.refreshMoh();
    });
  }

  /** Called when a member's leg is destroyed or hung up: its peers may now be alone. */
  memberLeft(leg: FsEndpoint): void {
    if (!this.members.delete(leg) || this.destroyed) return;
    void this.serial(() => this.refreshMoh()).catch((err: unknown) => this.log.warn({ err }, 'could not update hold music after a member left'));
  }

  /**
   * DESIGN.md section 5: a member that can hear and whose peers are all on hold hears music.
   * mod_conference plays its own music only to a member alone, so the rest is done here.
   */
  private async refreshMoh(): Promise<void> {
    for (const [leg, m] of this.members) {
      const others = [...this.members].filter(([other, o]) => other !== leg && !o.bystander).map(([, o]) => o);
      const wants = !modeFlags(m.mode).deaf && others.length > 0 && others.every((o) => o.mode === 4);
      if (wants && !m.moh) {
        const body = await this.owner.api(fsApi.playToMember(this.name, this.moh, m.memberId));
        if (body.startsWith('+OK')) m.moh = true;
        else this.log.warn({ member: m.memberId, moh: this.moh, answer: body.trim() }, 'FreeSWITCH could not play hold music');
      } else if (!wants && m.moh) {
        await this.stopMoh(m);
      }
    }
  }

  private async stopMoh(m: Member): Promise<void> {
    await this.owner.apiOk(fsApi.stopMemberFiles(this.name, m.memberId));
    m.moh = false;
  }

  destroy(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    this.destroyed = true;
    this.released();
    const left = this.members.size;
    for (const leg of this.members.keys()) leg.membership = undefined;
    this.members.clear();
    // Nobody in it: mod_conference has ended it already (the usual end, after the legs' BYEs).
    if (left === 0) return Promise.resolve();
    // Members still in it (a browser line kept for its next conversation) go back to our socket
    // application with their channels up (hangup_after_conference=false); that ends it.
    return this.serial(async () => {
      const body = await this.owner.api(fsApi.kickAll(this.name));
      if (!body.startsWith('+OK') && !/not found/i.test(body)) throw new Error(`FreeSWITCH refused "${fsApi.kickAll(this.name)}": ${body.trim()}`);
    });
  }
}

/**
 * Creates the FreeSWITCH media server adapter and starts connecting in the background;
 * `available` is false until the event socket is up and again while it is down.
 *
 * @example
 * const media = createFsmrfMediaServer({ srf, freeswitch: config.freeswitch, logger });
 * // ... createApp(config, { ..., media, probes: { media: () => media.health() } });
 * // on shutdown: await media.stop();
 */
export function createFsmrfMediaServer(opts: FsmrfOptions): FsmrfMediaServer {
  const server = new FsmrfMediaServer(opts);
  server.start();
  return server;
}
