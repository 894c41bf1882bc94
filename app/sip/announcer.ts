/**
 * What a waiting queue caller hears besides the music (the queue's `announcements`): the
 * welcome sound once, then every `periodSeconds` its place in the queue. It runs beside the
 * offer loop, on the caller's own media leg, until the caller is connected or gone.
 *
 * The period is a local timer, not a Redis deadline: it drives media on a call this process
 * holds, and ends with that call; nothing is left to resume if the process dies.
 */
import type { CallCenterConfig } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import type { Endpoint } from '../../media/port';

/** A running announcer. */
export interface Announcer {
  /** Stops announcing; resolves once an announcement in progress has finished. */
  stop(): Promise<void>;
}

type Announcements = NonNullable<CallCenterConfig['queues'][string]['announcements']>;

/**
 * Starts announcing to `ep`. `position` reads the caller's current place (1 = next), or
 * null when it is not waiting any more (offered, answered, ended), when nothing is said.
 * `announcements` is read again every period, so an overflow to another queue is followed.
 */
export function startAnnouncer(o: { ep: Endpoint; announcements: () => Announcements | undefined; position: () => Promise<number | null>; log: Logger }): Announcer {
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  const run = async (): Promise<void> => {
    const first = o.announcements();
    if (first?.welcome !== undefined) await o.ep.play({ kind: 'sound', sound: first.welcome });
    for (;;) {
      const a = o.announcements();
      if (stopped || a === undefined || !a.position) return;
      await pause(a.periodSeconds * 1000);
      if (stopped) return;
      const position = await o.position();
      if (position !== null && !stopped) await o.ep.play({ kind: 'position', position, template: a.positionSound });
    }
  };
  const done = run().catch((err: unknown) => {
    // The caller hung up mid-prompt, or the media server failed: the call itself goes on
    // (or is being torn down by its owner), only the announcements end.
    if (!stopped) o.log.warn({ err }, 'queue announcements stopped');
  });
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await done;
    },
  };
}
