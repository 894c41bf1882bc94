/** A bare UDP SIP client for tests that must control every header (e.g. replaying an Authorization). */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';

/** A UDP socket bound on loopback that sends requests and waits for the final response. */
export class UdpSip {
  private constructor(
    private readonly sock: Socket,
    readonly port: number,
  ) {}

  static async open(): Promise<UdpSip> {
    const sock = createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    return new UdpSip(sock, sock.address().port);
  }

  /** Sends `msg` to 127.0.0.1:`port` and resolves with the first final (>= 200) response. */
  async request(port: number, msg: string, timeoutMs = 5000): Promise<{ status: number; headers: string; raw: string }> {
    const final = new Promise<{ status: number; headers: string; raw: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.sock.off('message', onMsg);
        reject(new Error('no final response'));
      }, timeoutMs);
      const onMsg = (b: Buffer): void => {
        const raw = b.toString();
        const m = /^SIP\/2\.0 (\d{3})/.exec(raw);
        if (m === null || Number(m[1]) < 200) return;
        clearTimeout(timer);
        this.sock.off('message', onMsg);
        resolve({ status: Number(m[1]), headers: raw.split('\r\n\r\n')[0]!, raw });
      };
      this.sock.on('message', onMsg);
    });
    this.sock.send(msg, port, '127.0.0.1');
    return final;
  }

  close(): void {
    this.sock.close();
  }
}

/** A REGISTER request for `user` from this socket. */
export function registerRequest(o: { user: string; localPort: number; serverPort: number; callId: string; cseq: number; branch: string; authorization?: string }): string {
  const lines = [
    `REGISTER sip:127.0.0.1:${o.serverPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${o.localPort};branch=z9hG4bK${o.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${o.user}@127.0.0.1>;tag=t${o.callId}`,
    `To: <sip:${o.user}@127.0.0.1>`,
    `Call-ID: ${o.callId}`,
    `CSeq: ${o.cseq} REGISTER`,
    `Contact: <sip:${o.user}@127.0.0.1:${o.localPort}>`,
    'Expires: 300',
    ...(o.authorization === undefined ? [] : [`Authorization: ${o.authorization}`]),
    'Content-Length: 0',
  ];
  return lines.join('\r\n') + '\r\n\r\n';
}
