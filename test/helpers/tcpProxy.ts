/**
 * A TCP proxy in front of a server, controlled by the test, to inject network faults between
 * ccswitch and Redis (issue "faults", item 4):
 * - `cut()`: every connection is reset and new ones are refused (the port is closed), as when
 *   Redis or its host goes away; `restore()` listens again on the same port;
 * - `blackhole()`: connections stay up but nothing passes either way, as in a network
 *   partition; what was sent is held, and `heal()` delivers it late — what TCP retransmission
 *   does when a partition ends — even for connections the client closed meanwhile.
 */
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './redisServer';

/** A running proxy. */
export interface TcpProxy {
  port: number;
  url: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
  blackhole(): void;
  heal(): void;
  /** Writes `bytes` to every client as if the server had sent them (a garbled stream). */
  inject(bytes: Buffer): void;
  /** Connections accepted so far (reconnections count). */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes held while black-holed, per direction. */
  toUpstream: Buffer[];
  toClient: Buffer[];
  clientEnded: boolean;
}

/** Starts a proxy on a free loopback port to `targetPort`; the URL keeps `scheme`. */
export async function startTcpProxy(targetPort: number, scheme = 'redis'): Promise<TcpProxy> {
  const port = await freePort();
  const pairs = new Set<Pair>();
  let holding = false;
  let server: Server | undefined;

  let accepted = 0;
  const onConnection = (client: Socket): void => {
    accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const p: Pair = { client, upstream, toUpstream: [], toClient: [], clientEnded: false };
    pairs.add(p);
    client.on('data', (d: Buffer) => (holding ? p.toUpstream.push(d) : upstream.write(d)));
    upstream.on('data', (d: Buffer) => (holding ? p.toClient.push(d) : client.write(d)));
    // A client closing while black-holed: its held bytes still reach the server on heal().
    client.on('close', () => {
      p.clientEnded = true;
      if (!holding) {
        upstream.destroy();
        pairs.delete(p);
      }
    });
    upstream.on('close', () => {
      client.destroy();
      pairs.delete(p);
    });
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  };

  const listen = async (): Promise<void> => {
    server = createServer(onConnection);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };
  const stopListening = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    s.close();
    await once(s, 'close');
  };
  await listen();

  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    async cut() {
      const closing = stopListening();
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await closing;
    },
    restore: listen,
    blackhole() {
      holding = true;
    },
    heal() {
      holding = false;
      for (const p of [...pairs]) {
        for (const d of p.toUpstream.splice(0)) p.upstream.write(d);
        if (p.clientEnded) {
          // Delivered; the server's reply goes nowhere, as for a client that gave up.
          p.upstream.end();
          continue;
        }
        for (const d of p.toClient.splice(0)) p.client.write(d);
      }
    },
    inject(bytes) {
      for (const p of pairs) if (!p.clientEnded) p.client.write(bytes);
    },
    get accepted() {
      return accepted;
    },
    async close() {
      await stopListening();
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
    },
  };
}
