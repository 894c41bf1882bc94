/**
 * A media server double for the test/sip layer (DESIGN.md section 10: the media port is
 * faked there with a static SDP). Never used by the product: app/main.ts wires the
 * drachtio-fsmrf adapter.
 */
import type { Endpoint, MediaServer, Prompt } from './port';

/** Static answer SDP of the fake. */
export const FAKE_SDP =
  'v=0\r\no=fake 1 1 IN IP4 127.0.0.1\r\ns=fake-media\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n';

/** Records what was played; `gate` lets a test hold a prompt until it has done something (e.g. sent CANCEL). */
export class FakeMediaServer implements MediaServer {
  available = true;
  readonly played: Prompt[] = [];
  endpoints = 0;
  /** When set, `play()` waits for this promise before resolving. */
  gate: Promise<void> | undefined;

  createEndpoint(): Promise<Endpoint> {
    this.endpoints += 1;
    const endpoint: Endpoint = {
      localSdp: FAKE_SDP,
      play: async (prompt) => {
        this.played.push(prompt);
        await this.gate;
      },
      destroy: () => {
        this.endpoints -= 1;
        return Promise.resolve();
      },
    };
    return Promise.resolve(endpoint);
  }
}
