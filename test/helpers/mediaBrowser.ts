/**
 * Chromium for the softphone test (test/ui/softphone.test.ts): as test/helpers/browser.ts,
 * plus a fake microphone and camera that need no permission prompt, whose audio is a WAV file
 * the test writes (a steady tone it can recognise on RTP), and WebRTC allowed to use
 * loopback ICE candidates without hiding them behind mDNS names (FreeSWITCH cannot resolve
 * those), since drachtio, FreeSWITCH and the browser all run on 127.0.0.1 here.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startBrowser } from './browser';

/** A running browser with a fake audio source. */
export interface MediaBrowser {
  context: BrowserContext;
  page(): Promise<Page>;
  /** Errors the pages logged and uncaught exceptions. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** A mono 16-bit PCM WAV of `seconds` of a sine at `hz` (a whole number of cycles, so it loops without a click). */
export function toneWav(hz: number, seconds = 2, rate = 48000): Buffer {
  const n = rate * seconds;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  const head = Buffer.alloc(44);
  head.write('RIFF', 0);
  head.writeUInt32LE(36 + data.length, 4);
  head.write('WAVE', 8);
  head.write('fmt ', 12);
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20); // PCM
  head.writeUInt16LE(1, 22); // mono
  head.writeUInt32LE(rate, 24);
  head.writeUInt32LE(rate * 2, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36);
  head.writeUInt32LE(data.length, 40);
  return Buffer.concat([head, data]);
}

/**
 * Starts Chromium with a fresh profile. With `toneHz` its fake microphone plays that tone
 * (looped); with `microphone: false` it has no fake devices at all (getUserMedia fails).
 */
export async function startMediaBrowser(o: { toneHz?: number; microphone?: boolean } = {}): Promise<MediaBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'ccs-chromium-media-'));
  const args = ['--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns', '--autoplay-policy=no-user-gesture-required'];
  if (o.microphone !== false) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream');
    if (o.toneHz !== undefined) {
      const wav = join(dir, `tone-${o.toneHz}.wav`);
      writeFileSync(wav, toneWav(o.toneHz));
      args.push(`--use-file-for-fake-audio-capture=${wav}`);
    }
  } else args.push('--use-fake-ui-for-media-stream');
  return startBrowser({ width: 1500, height: 1000, args, cleanup: dir });
}

/**
 * Runs in the page (a string: this project's Node code is type-checked without the DOM):
 * analyses the softphone's remote audio (the `<audio data-testid="softphone-audio">`
 * element's stream) with Web Audio and resolves true once `hz` holds most of its energy
 * (Goertzel share > 0.6, as test/helpers/hearing.ts) in five looks in a row, 50 ms apart;
 * false if not within 10 s.
 */
const HEARS_IN_PAGE = `async (hz) => {
  const el = document.querySelector('[data-testid="softphone-audio"]');
  if (!el || !(el.srcObject instanceof MediaStream)) return false;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaStreamSource(el.srcObject).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const share = () => {
    analyser.getFloatTimeDomainData(buf);
    const coeff = 2 * Math.cos((2 * Math.PI * hz) / ctx.sampleRate);
    let s1 = 0, s2 = 0, energy = 0;
    for (const x of buf) { const s0 = x + coeff * s1 - s2; s2 = s1; s1 = s0; energy += x * x; }
    return energy === 0 ? 0 : (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (buf.length * energy);
  };
  const deadline = Date.now() + 10000;
  let run = 0;
  while (Date.now() < deadline && run < 5) {
    await new Promise((r) => setTimeout(r, 50));
    run = share() > 0.6 ? run + 1 : 0;
  }
  await ctx.close();
  return run >= 5;
}`;

/** True once the page's softphone hears `hz` from its far end (see {@link HEARS_IN_PAGE}). */
export async function browserHears(page: Page, hz: number): Promise<boolean> {
  return (await page.evaluate(`(${HEARS_IN_PAGE})(${Number(hz)})`)) === true;
}
