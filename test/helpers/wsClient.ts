/** A WebSocket client of the event stream for tests: frames in order, waits on them, close codes. */
import WebSocket from 'ws';

/** A frame the server sent (JSON). */
export type Frame = { op: string; [k: string]: unknown };

/** A connected client. */
export interface EventClient {
  ws: WebSocket;
  /** Every frame received so far, in order. */
  readonly frames: readonly Frame[];
  /** Resolves with the first frame from index `from` on (default: the next unseen one) that matches. */
  next(what: string, pred?: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  send(frame: unknown): void;
  /** Resolves with the close code and reason once the socket is closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/** Connects to `url` (ws://...), with an Authorization header when `token` is given. */
export async function connectEvents(url: string, o: { token?: string } = {}): Promise<EventClient> {
  const ws = new WebSocket(url, o.token === undefined ? {} : { headers: { authorization: `Bearer ${o.token}` } });
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  let read = 0;
  ws.on('message', (data: Buffer) => {
    frames.push(JSON.parse(data.toString()) as Frame);
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    next(what, pred = () => true, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (; read < frames.length; read++) {
            const f = frames[read]!;
            if (pred(f)) {
              read += 1;
              clearTimeout(timer);
              waiters.delete(check);
              resolve(f);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no frame "${what}" within ${timeoutMs} ms; last frames: ${JSON.stringify(frames.slice(-5)).slice(0, 1500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    send(frame) {
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    },
    closed,
    async close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
      await closed;
    },
  };
}
