/**
 * An agent's extension call (seed 002 "分机呼叫"): one SIP dialog with the agent's phone that
 * may be in several conversations at once — active (mode 1..3) in at most one, on hold (4) in
 * the others. Its media is anchored in one conversation at a time: a media endpoint joined to
 * that conversation's conference. Making another conversation active moves the anchor: a new
 * endpoint is created there, the phone is re-INVITEd to it (the B2BUA re-anchors the media,
 * the phone keeps its one call), and the endpoint in the previous conversation is released,
 * so the agent drops out of that conference while its leg stays recorded on hold.
 *
 * A browser's line (the agent console's softphone: WebRTC, app/sip/webrtc.ts) cannot be
 * re-INVITEd with the media server's plain offer, so it keeps its one media endpoint for the
 * whole call and the endpoint moves between the conversations' conferences instead
 * ({@link AgentLine.moveIn}); the phone sees nothing of it.
 *
 * A conversation the line leaves sends BYE only when it was the line's last one; otherwise
 * the phone's call goes on in the others.
 */
import { MediaFailedError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Conference, Endpoint, LegMode, MediaServer } from '../../media/port';
import type { Leg } from '../sip/leg';

/** What the conversation holding the anchor does when the anchor moves away: release its endpoint (a browser's line's: forget it). */
export type Detach = () => Promise<void>;

/** One agent extension call, shared by the conversations it is in. */
export class AgentLine {
  private readonly convs = new Set<string>();
  /** The call id each conversation's script keeps the agent busy with (agent states, call guard). */
  private readonly calls = new Map<string, string>();
  private anchor: { conv: string; detach: Detach } | undefined;
  /** A browser's line: its one endpoint and the conference it was last put in. */
  private kept: { ep: Endpoint; conference: Conference } | undefined;

  constructor(
    readonly cc: string,
    readonly agent: string,
    /** The dialog with the agent's phone. */
    readonly sip: Leg,
    private readonly media: MediaServer,
    private readonly log: Logger,
  ) {}

  /** True once the phone hung up or the line was released. */
  get gone(): boolean {
    return this.sip.gone;
  }

  /** The conversations the line is in, oldest first. */
  get conversations(): string[] {
    return [...this.convs];
  }

  /**
   * True for a browser's line: its endpoint is kept and moved between conferences
   * ({@link moveIn}), never re-INVITEd ({@link anchorIn}).
   */
  get keepsMedia(): boolean {
    return this.sip.webrtc;
  }

  /** A browser's line: its one endpoint (once it was anchored), which the line's last conversation releases. */
  get keptEndpoint(): Endpoint | undefined {
    return this.kept?.ep;
  }

  /** The conversation whose conference has the line's media, if any. */
  get anchoredIn(): string | undefined {
    return this.anchor?.conv;
  }

  /** The line is now in conversation `id` (its media there or not). */
  enter(id: string): void {
    this.convs.add(id);
  }

  /** Records the call id under which conversation `id`'s script made the agent busy. */
  callFor(id: string, callId: string): void {
    this.calls.set(id, callId);
  }

  /**
   * The call id of another conversation the line is still in, if any: when the call of `id`
   * is over for the agent, that one keeps it busy (Other Call), not Wrap Up or Ready.
   */
  otherCall(id: string): string | undefined {
    for (const [conv, callId] of this.calls) if (conv !== id && this.convs.has(conv)) return callId;
    return undefined;
  }

  /**
   * The line's media is in conversation `id` (an endpoint of its own made for this dialog),
   * in `media.conference`. A browser's line keeps that endpoint from now on.
   */
  anchored(id: string, detach: Detach, media?: { ep: Endpoint; conference: Conference }): void {
    this.anchor = { conv: id, detach };
    if (this.keepsMedia && media !== undefined) this.kept = { ...media };
  }

  /**
   * The line left conversation `id`. Returns true when it was the last one: the caller then
   * releases the dialog (BYE). The anchor, if it was there, is forgotten.
   */
  leave(id: string): boolean {
    this.convs.delete(id);
    this.calls.delete(id);
    if (this.anchor?.conv === id) this.anchor = undefined;
    return this.convs.size === 0;
  }

  /**
   * Moves the line's media into conversation `id`: a new offerless endpoint, a re-INVITE of
   * the phone with its offer, the phone's answer given to the endpoint; then the previous
   * anchor releases its endpoint. Resolves with the new endpoint (to be joined by the caller).
   * On failure nothing moved: the new endpoint is released and the old anchor kept.
   */
  async anchorIn(id: string, detach: Detach): Promise<Endpoint> {
    if (this.gone) throw new MediaFailedError(`re-anchoring agent ${this.agent}'s line: the phone hung up`);
    const ep = await this.media.createEndpoint();
    try {
      const answer = await this.sip.dialog.modify(ep.localSdp);
      await ep.modify(answer);
    } catch (err) {
      await ep.destroy().catch((e: unknown) => this.log.warn({ err: e }, 'endpoint release failed after a refused re-INVITE'));
      throw new MediaFailedError(`the re-INVITE moving agent ${this.agent}'s line to conversation ${id}`, err);
    }
    const prev = this.anchor;
    this.anchor = { conv: id, detach };
    if (prev !== undefined && prev.conv !== id) {
      await prev.detach().catch((err: unknown) => this.log.warn({ err, from: prev.conv }, 'the previous anchor did not release its endpoint'));
    }
    this.log.info({ agent: this.agent, from: prev?.conv, to: id }, 'agent line re-anchored');
    return ep;
  }

  /**
   * A browser's line ({@link keepsMedia}): moves its endpoint from the conference it is in
   * into `conference` (conversation `id`) in `mode`, without a re-INVITE; then the previous
   * anchor forgets the endpoint (its `detach` must not release it). Resolves with the
   * endpoint, joined there. On failure the old anchor is kept; the endpoint may then be in no
   * conference (out of the old one, refused by the new), and the next move only joins it.
   */
  async moveIn(id: string, conference: Conference, mode: LegMode, detach: Detach): Promise<Endpoint> {
    if (this.gone) throw new MediaFailedError(`moving agent ${this.agent}'s line: the phone hung up`);
    const kept = this.kept;
    if (kept === undefined) throw new MediaFailedError(`moving agent ${this.agent}'s line to conversation ${id}: the browser's media leg is not known`);
    try {
      await kept.conference.moveTo(kept.ep, conference, mode);
    } catch (err) {
      throw new MediaFailedError(`the move of agent ${this.agent}'s browser line to conversation ${id}`, err);
    }
    kept.conference = conference;
    const prev = this.anchor;
    this.anchor = { conv: id, detach };
    if (prev !== undefined && prev.conv !== id) {
      await prev.detach().catch((err: unknown) => this.log.warn({ err, from: prev.conv }, 'the previous anchor did not let go of the moved endpoint'));
    }
    this.log.info({ agent: this.agent, from: prev?.conv, to: id, endpoint: kept.ep.id }, 'browser line moved');
    return kept.ep;
  }
}

/** What {@link endAgentCall} needs of the agent engine. */
interface CallStates {
  callEnded(cc: string, agent: string, o: { callId: string }): Promise<unknown>;
  callStarted(cc: string, agent: string, o: { callId: string }): Promise<unknown>;
}

/**
 * The agent's call `callId` (conversation `conv`) is over: its normal call end (Wrap Up,
 * Ready…), unless its line is still in another conversation, which then keeps it on Other Call
 * (a wrap-up it interrupts goes on afterwards), or the same call goes on there.
 */
export async function endAgentCall(engine: CallStates, cc: string, agent: string, callId: string, line: AgentLine | undefined, conv: string): Promise<void> {
  const other = line === undefined || line.gone ? undefined : line.otherCall(conv);
  // The same call goes on in another conversation (a consulted party handed over): nothing ends.
  if (other === callId) return;
  await engine.callEnded(cc, agent, { callId });
  if (other !== undefined) await engine.callStarted(cc, agent, { callId: other });
}
