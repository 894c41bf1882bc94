/**
 * Test layers of DESIGN.md section 10 and what each needs on PATH. The SIP, media and UI
 * layers run only where their binaries exist, unless REQUIRE_SIP / REQUIRE_MEDIA /
 * REQUIRE_UI make their absence a failure.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** True if `bin` is an executable on PATH. */
export function onPath(bin: string, path = process.env.PATH ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Layer name → binaries it needs and the env var that makes absence fatal. */
export const LAYERS = {
  redis: { bins: ['redis-server'], require: 'always' },
  sip: { bins: ['redis-server', 'drachtio', 'sipp'], require: 'REQUIRE_SIP' },
  media: { bins: ['redis-server', 'drachtio', 'sipp', 'freeswitch'], require: 'REQUIRE_MEDIA' },
  /** The browser UI in real headless Chromium (Debian's `chromium`, driven by playwright-core). */
  ui: { bins: ['redis-server', 'chromium'], require: 'REQUIRE_UI' },
  /** The agent console's SIP.js softphone in Chromium against real drachtio-server, FreeSWITCH and a sipp caller. */
  softphone: { bins: ['redis-server', 'chromium', 'drachtio', 'sipp', 'freeswitch'], require: 'REQUIRE_UI' },
} as const;

export type Layer = keyof typeof LAYERS;

/** Binaries of `layer` that are missing. */
export function missingFor(layer: Layer): string[] {
  return LAYERS[layer].bins.filter((b) => !onPath(b));
}

/** `describe` that runs the suite only when the layer's binaries are present. */
export function describeLayer(layer: Layer, name: string, fn: () => void): void {
  const missing = missingFor(layer);
  if (missing.length === 0) describe(name, fn);
  else describe.skip(`${name} [skipped: ${missing.join(', ')} not on PATH]`, fn);
}
