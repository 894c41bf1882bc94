/** One answered call leg as the B2BUA handlers hold it. */
import type { SipDialog } from './types';

/** A dialog and whether the far end has already hung up (then it must not get our BYE). */
export class Leg {
  gone = false;
  /** Resolves when the far end hangs up. */
  readonly hungUp: Promise<void>;
  constructor(readonly dialog: SipDialog) {
    this.hungUp = new Promise((resolve) =>
      dialog.on('destroy', () => {
        this.gone = true;
        resolve();
      }),
    );
  }
  /** Sends BYE unless the far end has hung up (or we did already). */
  async release(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await this.dialog.destroy();
  }
}
