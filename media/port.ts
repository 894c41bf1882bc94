/**
 * The media port: the little of a media server ccswitch uses. The drachtio-fsmrf adapter
 * implements it against FreeSWITCH; the test/sip layer uses {@link FakeMediaServer}, which
 * answers with a static SDP. Raw FreeSWITCH command strings live only in media/.
 */

/** Prompts played to a caller; each adapter maps them to something it can play. */
export type Prompt = 'confirm' | 'error';

/** One media leg on the media server. */
export interface Endpoint {
  /** SDP the media server offers/answers for this leg. */
  readonly localSdp: string;
  /** Plays a prompt to the leg and resolves when it has finished. */
  play(prompt: Prompt): Promise<void>;
  /** Releases the leg on the media server. */
  destroy(): Promise<void>;
}

/** A media server. */
export interface MediaServer {
  /** False while no media server is reachable (FACs then answer with a null SDP). */
  readonly available: boolean;
  /** Creates a leg that answers `remoteSdp` (the caller's offer). */
  createEndpoint(opts: { remoteSdp: string }): Promise<Endpoint>;
}
