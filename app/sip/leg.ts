/** One answered call leg as the B2BUA handlers hold it, and their clean-up step runner. */
import type { Logger } from '../../lib/logger';
import type { SipDialog } from './types';

/** A dialog and whether the far end has already hung up (then it must not get our BYE). */
export class Leg {
  gone = false;
  /** Resolves when the far end hangs up. */
  readonly hungUp: Promise<void>;
  /**
   * True for a browser's call (the agent console's softphone, app/sip/webrtc.ts): its media is
   * a WebRTC session with one media-server leg, which a re-INVITE with the media server's plain
   * offer cannot move, so the leg is kept for the whole call.
   */
  readonly webrtc: boolean;
  constructor(
    readonly dialog: SipDialog,
    o: { webrtc?: boolean } = {},
  ) {
    this.webrtc = o.webrtc === true;
    this.hungUp = new Promise((resolve) =>
      dialog.on('destroy', () => {
        this.gone = true;
        resolve();
      }),
    );
  }
  /** Sends BYE (with `headers`, if any) unless the far end has hung up (or we did already). */
  async release(headers?: Record<string, string>): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await this.dialog.destroy(headers === undefined ? undefined : { headers });
  }
}

/**
 * Runs one clean-up step of a call, logging (not throwing) its failure, so one failed step
 * does not leave the remaining ones (and the agents' states) behind.
 */
export async function cleanUpStep(log: Logger, what: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (err) {
    log.warn({ err }, `${what} failed during clean-up`);
  }
}
