/**
 * Raw SIP over TCP for tests that must control every byte (the fuzz test, issue "faults" item
 * 7): a client connection from a chosen loopback address that writes whatever it is given and
 * cuts what it reads into SIP messages by Content-Length (RFC 3261 18.3), plus the small
 * message parser both the TCP and the UDP side use for responses.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

/** A SIP message read off the wire, headers by lowercased full name (compact forms expanded). */
export interface WireMessage {
  /** The start line (`SIP/2.0 200 OK`, `BYE sip:… SIP/2.0`). */
  start: string;
  /** Status code of a response; undefined for a request. */
  status?: number;
  /** Method of a request, or the CSeq method of a response. */
  method: string;
  headers: Map<string, string[]>;
  body: string;
  raw: string;
}

const COMPACT: Readonly<Record<string, string>> = { i: 'call-id', v: 'via', f: 'from', t: 'to', l: 'content-length', m: 'contact', c: 'content-type', k: 'supported', s: 'subject', e: 'content-encoding' };

/** Parses one whole SIP message (the text up to the end of its body). */
export function parseWire(raw: string): WireMessage | undefined {
  const sep = raw.indexOf('\r\n\r\n');
  const head = sep < 0 ? raw : raw.slice(0, sep);
  const body = sep < 0 ? '' : raw.slice(sep + 4);
  const lines = head.split('\r\n');
  const start = lines.shift() ?? '';
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const full = COMPACT[name] ?? name;
    headers.set(full, [...(headers.get(full) ?? []), line.slice(colon + 1).trim()]);
  }
  const cseqMethod = /^\d+\s+(\S+)/.exec(headers.get('cseq')?.[0] ?? '')?.[1] ?? '';
  const status = /^SIP\/2\.0 (\d{3})/.exec(start);
  if (status !== null) return { start, status: Number(status[1]), method: cseqMethod, headers, body, raw };
  const req = /^([A-Za-z]+) \S+ SIP\/2\.0$/.exec(start);
  if (req === null) return undefined;
  return { start, method: req[1]!, headers, body, raw };
}

/**
 * Cuts a byte stream into SIP messages: each is its header block plus Content-Length bytes of
 * body (0 when the header is missing, as RFC 3261 18.3 says for streams). CRLF keep-alives
 * between messages are skipped.
 */
export class SipStreamReader {
  private buf = Buffer.alloc(0);

  /** Feeds bytes; returns the messages completed by them. */
  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      let skip = 0;
      while (skip + 1 < this.buf.length && this.buf[skip] === 0x0d && this.buf[skip + 1] === 0x0a) skip += 2;
      if (skip > 0) this.buf = this.buf.subarray(skip);
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return out;
      const head = this.buf.subarray(0, end).toString('latin1');
      const len = Number(/^(?:content-length|l)[ \t]*:[ \t]*(\d+)/im.exec(head)?.[1] ?? '0');
      const total = end + 4 + len;
      if (this.buf.length < total) return out;
      out.push(this.buf.subarray(0, total).toString('utf8'));
      this.buf = this.buf.subarray(total);
    }
  }
}

/** A TCP connection to a SIP server that hands every message it receives to `onMessage`. */
export class TcpSip {
  private closed = false;
  private readonly closedP: Promise<void>;

  private constructor(
    private readonly sock: Socket,
    readonly localAddress: string,
    readonly localPort: number,
    onMessage: (m: string) => void,
  ) {
    const reader = new SipStreamReader();
    sock.on('data', (b: Buffer) => {
      for (const m of reader.push(b)) onMessage(m);
    });
    // A reset by the server (it closes connections that send broken framing) is expected here.
    sock.on('error', () => undefined);
    this.closedP = new Promise((resolve) =>
      sock.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  /** Connects from `localAddress` (any 127.0.0.0/8 address works on Linux) to 127.0.0.1:`port`. */
  static async open(port: number, localAddress: string, onMessage: (m: string) => void): Promise<TcpSip> {
    const sock = connect({ host: '127.0.0.1', port, localAddress });
    sock.setNoDelay(true);
    await once(sock, 'connect');
    return new TcpSip(sock, localAddress, sock.localPort ?? 0, onMessage);
  }

  /** Whether the connection is gone (either side closed it). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes raw bytes; false if the connection is already gone. */
  write(bytes: Buffer | string): boolean {
    if (this.closed || this.sock.destroyed) return false;
    this.sock.write(bytes);
    return true;
  }

  /** Resolves when the connection has closed. */
  whenClosed(): Promise<void> {
    return this.closedP;
  }

  /** Closes the connection (FIN, then destroy if the server does not finish within 1 s). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.sock.end();
    const t = setTimeout(() => this.sock.destroy(), 1000);
    await this.closedP;
    clearTimeout(t);
  }
}
