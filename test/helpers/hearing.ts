/**
 * What a test phone hears, decided on the RTP it receives (test/helpers/freeswitch.ts
 * listenRtp): a party "hears" a tone when most of the energy of a quarter second of frames in a
 * row is at that frequency, and "does not hear" it when a second in a row carries almost none.
 */
import { toneShare, type RtpListener } from './freeswitch';

/** Frames (20 ms each) in a row that must carry the tone: a quarter second. */
export const RUN = 12;
/** Share of a frame's energy at the tone's frequency for "hears it". */
export const HEARS = 0.6;

/** Resolves once `l` hears `hz` (rejects after 15 s, naming `who`). */
export function hears(l: RtpListener, who: string, hz: number): Promise<void> {
  return l.frames(`${who} hears ${hz} Hz`, (s) => toneShare(s, hz) > HEARS, RUN, 15000);
}

/** Resolves once `l` has gone a second without `hz` (rejects after 15 s). */
export function hearsNot(l: RtpListener, who: string, hz: number): Promise<void> {
  return l.frames(`${who} does not hear ${hz} Hz`, (s) => toneShare(s, hz) < 0.05, 50, 15000);
}

/** The RTP address an SDP names (c= and m=audio): where a phone following re-INVITEs sends. */
export function rtpOf(sdp: string): { address: string; port: number } {
  const address = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
  const port = /^m=audio (\d+)/m.exec(sdp)?.[1];
  if (address === undefined || port === undefined) throw new Error(`no RTP address in SDP:\n${sdp}`);
  return { address, port: Number(port) };
}
