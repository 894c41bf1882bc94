/**
 * The media port: the little of a media server ccswitch uses. The drachtio-fsmrf adapter
 * (media/fsmrf.ts) implements it against FreeSWITCH; the test/sip layer uses
 * {@link FakeMediaServer}, which answers with a static SDP. Raw FreeSWITCH command strings
 * live only in media/.
 */

/** Prompts played to a caller; each adapter maps them to something it can play. */
export type Prompt = 'confirm' | 'error';

/**
 * Queue announcements (the queue's `announcements` configuration): a configured sound
 * (a media-server file or stream URI, e.g. a welcome message), or the caller's position in
 * the queue, spoken from `template` (`{n}` replaced by the position) when one is configured,
 * else rendered by the adapter without sound files.
 */
export type Announcement = { kind: 'sound'; sound: string } | { kind: 'position'; position: number; template?: string | undefined };

import { modeFlags, type Mode } from '../lib/conversation/model';

/**
 * A leg's listen/speak mode in a conversation (DESIGN.md section 5, seed 002):
 * 1 listen and speak, 2 listen only, 3 speak only, 4 neither (hold).
 */
export type LegMode = Mode;

/** The modes as a list, for validation. */
export const LEG_MODES: readonly LegMode[] = [1, 2, 3, 4];

export { modeFlags };

/** One media leg on the media server. */
export interface Endpoint {
  /** Media-server id of the leg (FreeSWITCH channel uuid), for logs and events. */
  readonly id: string;
  /** SDP the media server offers (offerless endpoint) or answered with. */
  readonly localSdp: string;
  /**
   * Gives the leg the far end's SDP: the answer to our offer when the endpoint was created
   * without one (third-party call control: the agent's phone is called with our offer).
   */
  modify(remoteSdp: string): Promise<void>;
  /** Plays a prompt or announcement to the leg and resolves when it has finished. */
  play(prompt: Prompt | Announcement): Promise<void>;
  /**
   * Settles when the media server lost the leg without being asked to (FreeSWITCH died or hung
   * the channel up): whoever holds the leg must end the call it carries. Never settles for a
   * {@link destroy} of ours.
   */
  readonly lost: Promise<void>;
  /** Calls `fn` with each DTMF digit the far end sends in the media (RFC 4733); returns the unsubscribe. */
  onDtmf(fn: (digit: string) => void): () => void;
  /** Releases the leg on the media server. Safe to call twice. */
  destroy(): Promise<void>;
}

/** A conversation's mixing point (a FreeSWITCH conference). */
export interface Conference {
  /** Conference name on the media server. */
  readonly name: string;
  /**
   * Puts a leg into the conference with a mode. A `bystander` (a supervisor listening in or
   * whispering) is not a party: it does not stop the others' hold music.
   */
  join(ep: Endpoint, mode: LegMode, o?: { bystander?: boolean }): Promise<void>;
  /** Changes a member's mode (mute/deaf), and whether it is a bystander. */
  setMode(ep: Endpoint, mode: LegMode, o?: { bystander?: boolean }): Promise<void>;
  /**
   * Whether member `ep` is heard by members `by` (a whisper: the supervisor is not heard by
   * the caller). `heard: false` stops it, `true` lifts that again. Members not in the
   * conference are skipped.
   */
  setHeard(ep: Endpoint, by: readonly Endpoint[], heard: boolean): Promise<void>;
  /**
   * Moves member `ep` from this conference into `to`, in `mode`, keeping its leg: the media
   * server's channel, and so the far end's media session with it, stays as it is (for a far
   * end that cannot be re-INVITEd to a new leg: a browser's WebRTC session). It is in no
   * conference while it moves and enters `to` in `mode`, so it is never heard (nor hears) in
   * a mode it was not given. A leg that is no longer in this conference (the conference ended
   * under it) joins `to` afresh.
   */
  moveTo(ep: Endpoint, to: Conference, mode: LegMode, o?: { bystander?: boolean }): Promise<void>;
  /** Ends the conference; members' endpoints are left to their owners. Safe to call twice. */
  destroy(): Promise<void>;
}

/** Options of {@link MediaServer.createEndpoint}. */
export interface EndpointOptions {
  /** The far end's offer: the leg answers it. Without it the leg makes an offer. */
  remoteSdp?: string;
  /**
   * With `remoteSdp`: hands the media server's answer to the far end before the leg is
   * waited for, and the leg resolves only after it has resolved. A WebRTC offer (ICE,
   * DTLS-SRTP) needs this: FreeSWITCH's channel is up only once the far end, which has the
   * answer, finished the DTLS handshake.
   */
  sendAnswer?: (localSdp: string) => Promise<void>;
}

/** A media server. */
export interface MediaServer {
  /** False while no media server is reachable (FACs then answer with a null SDP). */
  readonly available: boolean;
  /**
   * Creates a leg. With `remoteSdp` (the caller's offer) the leg answers it; without, the
   * leg makes an offer (`localSdp`) and expects {@link Endpoint.modify} with the answer.
   */
  createEndpoint(opts?: EndpointOptions): Promise<Endpoint>;
  /**
   * Creates a conference. `moh` is what a member alone in it hears (DESIGN.md section 5:
   * a leg whose peers are all on hold hears music).
   */
  createConference(name: string, opts?: { moh?: string }): Promise<Conference>;
}
