/**
 * A sipp trunk caller for the media layer (scenarios/media-queue-caller.xml): calls a queue
 * from 127.0.0.2 with an SDP naming the test's RTP port, and hangs up when the test says so.
 */
import { randomUUID } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { RtpListener } from './freeswitch';
import { freePort } from './redisServer';
import { runSipp, type SippResult } from './sipp';

/** A sipp trunk caller (media-queue-caller.xml) the test hangs up. */
export interface SippCaller {
  result: Promise<SippResult>;
  /** Makes the caller send BYE (the command its `<recvCmd/>` waits for). */
  hangUp(): Promise<void>;
  /** Aborts the call if sipp still runs (sipp then sends BYE or CANCEL itself) and waits for sipp to end. */
  abort(): Promise<void>;
}

/**
 * Starts a trunk caller (from 127.0.0.2) to queue 8000 whose SDP names `rtp`. Commands
 * reach it over sipp's 3PCC twin socket: a "Call-ID:" header naming the call, ended by
 * ESC, as sipp frames twin commands. That socket stays open until sipp ends: sipp quits
 * when its twin goes away.
 */
export async function trunkCaller(sipPort: number, rtp: RtpListener, o: { queue?: string; caller?: string; scenario?: string } = {}): Promise<SippCaller> {
  const callId = `media-queue-${randomUUID()}`;
  const controlPort = await freePort();
  let running = true;
  const result = runSipp({
    scenario: o.scenario ?? 'media-queue-caller.xml',
    target: `127.0.0.1:${sipPort}`,
    service: o.queue ?? '8000',
    user: o.caller ?? '5550100',
    localIp: '127.0.0.2',
    // -3pcc: where the scenario's <recvCmd/> listens; -cid_str: a Call-ID the test can address.
    // A scenario without <recvCmd/> (released by ccswitch) must not run in 3PCC mode: sipp refuses it.
    extra: [...(o.scenario === undefined ? ['-3pcc', `127.0.0.1:${controlPort}`] : []), '-cid_str', callId, '-key', 'rtp_ip', rtp.ip, '-key', 'rtp_port', String(rtp.port), '-recv_timeout', '90000', '-timeout', '120s'],
  }).finally(() => {
    running = false;
    control?.destroy();
  });
  let control: Socket | undefined;
  const send = async (headers: string): Promise<void> => {
    if (!control) {
      const sock = createConnection({ host: '127.0.0.1', port: controlPort });
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      sock.on('error', () => undefined); // sipp closes it when it exits
      control = sock;
    }
    control.write(`Call-ID: ${callId}\r\n${headers}\r\n\x1b`);
  };
  return {
    result,
    hangUp: () => send(''),
    async abort() {
      if (!running) return;
      await send('internal-cmd: abort_call\r\n').catch(() => undefined);
      await Promise.race([result, new Promise((resolve) => setTimeout(resolve, 15000).unref())]);
    },
  };
}
