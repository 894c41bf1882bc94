/** Waits on the real event stream (XREAD BLOCK), so tests synchronise on events, not sleeps. */
import { Redis } from 'ioredis';
import { parseEvent, type CcsEvent } from '../../lib/events';

/**
 * Resolves with the first event after `since` that matches `pred`; rejects after
 * `timeoutMs` naming what it waited for.
 */
export async function waitForEvent(url: string, eventsKey: string, pred: (e: CcsEvent) => boolean, since = 0, timeoutMs = 10000): Promise<CcsEvent> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  const end = Date.now() + timeoutMs;
  let last = `${since}-0`;
  try {
    while (Date.now() < end) {
      const res = await r.xread('COUNT', 100, 'BLOCK', Math.max(1, end - Date.now()), 'STREAMS', eventsKey, last);
      if (res === null) break;
      for (const [id, fields] of res[0]![1]) {
        last = id;
        const ev = parseEvent([id, fields]);
        if (pred(ev)) return ev;
      }
    }
  } finally {
    r.disconnect();
  }
  throw new Error(`no matching event on ${eventsKey} within ${timeoutMs} ms`);
}
