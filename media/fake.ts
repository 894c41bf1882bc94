/**
 * A media server double for the test/sip layer (DESIGN.md section 10: the media port is
 * faked there with a static SDP). Never used by the product: app/main.ts wires the
 * drachtio-fsmrf adapter. It keeps a record of what it was asked to do, so tests can assert
 * on conversations (who is in which conference with which mode) without FreeSWITCH.
 */
import type { Announcement, Conference, Endpoint, EndpointOptions, LegMode, MediaServer, Prompt } from './port';

/** Static SDP of the fake (offer and answer alike). */
export const FAKE_SDP =
  'v=0\r\no=fake 1 1 IN IP4 127.0.0.1\r\ns=fake-media\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n';

/** A fake leg. */
export interface FakeEndpoint extends Endpoint {
  remoteSdp: string | undefined;
  destroyed: boolean;
  /** Makes the media server lose the leg (as a FreeSWITCH that died). */
  lose(): void;
}

/** A fake conference: members by endpoint id with their mode. */
export interface FakeConference extends Conference {
  members: Map<string, LegMode>;
  /** `speaker>listener` pairs where the speaker is not heard by the listener (whisper). */
  unheard: Set<string>;
  moh: string | undefined;
  destroyed: boolean;
}

/** Records what was played; `gate` lets a test hold a prompt until it has done something (e.g. sent CANCEL). */
export class FakeMediaServer implements MediaServer {
  available = true;
  readonly played: (Prompt | Announcement)[] = [];
  /** Every play with the endpoint it went to, in order. */
  readonly playedTo: { endpoint: string; prompt: Prompt | Announcement }[] = [];
  private playWaiters: { pred: (endpoint: string, prompt: Prompt | Announcement) => boolean; resolve: (endpoint: string) => void }[] = [];
  /** Every {@link Conference.moveTo}, in order: which endpoint went from which conference to which. */
  readonly moves: { endpoint: string; from: string; to: string }[] = [];
  /** Endpoints not yet destroyed. */
  endpoints = 0;
  readonly conferences = new Map<string, FakeConference>();
  /** When set, `play()` waits for this promise before resolving. */
  gate: Promise<void> | undefined;
  private nextId = 1;

  private joinWaiters: { pred: (conf: FakeConference) => boolean; resolve: (conf: FakeConference) => void }[] = [];

  /** Resolves with the conference at the next join (from now on) after which `pred` holds. */
  nextJoin(pred: (conf: FakeConference) => boolean): Promise<FakeConference> {
    return new Promise((resolve) => this.joinWaiters.push({ pred, resolve }));
  }

  /** Resolves with the endpoint id of the next play (from now on) that matches `pred`. */
  nextPlay(pred: (endpoint: string, prompt: Prompt | Announcement) => boolean): Promise<string> {
    return new Promise((resolve) => this.playWaiters.push({ pred, resolve }));
  }

  async createEndpoint(opts: EndpointOptions = {}): Promise<Endpoint> {
    this.endpoints += 1;
    let lose!: () => void;
    const lost = new Promise<void>((resolve) => (lose = resolve));
    const endpoint: FakeEndpoint = {
      lost,
      lose: () => {
        if (!endpoint.destroyed) lose();
      },
      id: `fake-${this.nextId++}`,
      localSdp: FAKE_SDP,
      remoteSdp: opts.remoteSdp,
      destroyed: false,
      modify: (sdp) => {
        endpoint.remoteSdp = sdp;
        return Promise.resolve();
      },
      // The SIP layer has no RTP: DTMF reaches it as SIP INFO only.
      onDtmf: () => () => undefined,
      play: async (prompt) => {
        this.played.push(prompt);
        this.playedTo.push({ endpoint: endpoint.id, prompt });
        this.playWaiters = this.playWaiters.filter((w) => !(w.pred(endpoint.id, prompt) && (w.resolve(endpoint.id), true)));
        await this.gate;
      },
      destroy: () => {
        if (!endpoint.destroyed) {
          endpoint.destroyed = true;
          this.endpoints -= 1;
          for (const c of this.conferences.values()) c.members.delete(endpoint.id);
        }
        return Promise.resolve();
      },
    };
    // A WebRTC far end gets the answer before the leg is up (as FreeSWITCH needs for DTLS).
    if (opts.sendAnswer !== undefined) await opts.sendAnswer(FAKE_SDP);
    return endpoint;
  }

  createConference(name: string, opts: { moh?: string } = {}): Promise<Conference> {
    if (this.conferences.has(name)) return Promise.reject(new Error(`conference ${name} exists`));
    const conf: FakeConference = {
      name,
      members: new Map(),
      unheard: new Set(),
      moh: opts.moh,
      destroyed: false,
      join: (ep, mode) => {
        conf.members.set(ep.id, mode);
        this.joinWaiters = this.joinWaiters.filter((w) => !(w.pred(conf) && (w.resolve(conf), true)));
        return Promise.resolve();
      },
      setMode: (ep, mode) => {
        if (!conf.members.has(ep.id)) return Promise.reject(new Error(`${ep.id} is not in ${name}`));
        conf.members.set(ep.id, mode);
        return Promise.resolve();
      },
      setHeard: (ep, by, heard) => {
        for (const l of by) {
          if (!conf.members.has(l.id) || !conf.members.has(ep.id)) continue;
          if (heard) conf.unheard.delete(`${ep.id}>${l.id}`);
          else conf.unheard.add(`${ep.id}>${l.id}`);
        }
        return Promise.resolve();
      },
      moveTo: (ep, to, mode) => {
        conf.members.delete(ep.id);
        this.moves.push({ endpoint: ep.id, from: name, to: to.name });
        return to.join(ep, mode);
      },
      destroy: () => {
        conf.destroyed = true;
        this.conferences.delete(name);
        return Promise.resolve();
      },
    };
    this.conferences.set(name, conf);
    return Promise.resolve(conf);
  }
}
