// Runs once before the suites: says loudly which layers are skipped and why, and fails the
// run when a layer that must run cannot (redis always; sip/media/ui when REQUIRE_* is set).
// When the UI layer runs, the browser UI is built once (vite) into a fresh directory that the
// UI suites serve (CCS_UI_DIR), so `npm test` needs no `npm run build` first.
const { spawnSync } = require('node:child_process');
const { accessSync, constants, existsSync, mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { delimiter, join } = require('node:path');

const onPath = (bin) =>
  (process.env.PATH || '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const layers = [
  { name: 'test/redis', bins: ['redis-server'], required: true },
  { name: 'test/sip', bins: ['redis-server', 'drachtio', 'sipp'], required: process.env.REQUIRE_SIP === '1' },
  { name: 'test/media', bins: ['redis-server', 'drachtio', 'sipp', 'freeswitch'], required: process.env.REQUIRE_MEDIA === '1' },
  { name: 'test/ui', bins: ['redis-server', 'chromium'], required: process.env.REQUIRE_UI === '1' },
  { name: 'test/ui softphone', bins: ['redis-server', 'chromium', 'drachtio', 'sipp', 'freeswitch'], required: process.env.REQUIRE_UI === '1' },
];

/** Builds the UI with vite into a temporary directory; throws with vite's output if it fails. */
function buildUi() {
  const root = join(__dirname, '..', '..');
  const out = mkdtempSync(join(tmpdir(), 'ccs-ui-'));
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const r = spawnSync(process.execPath, [vite, 'build', 'ui', '--base', '/ui/', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: root, encoding: 'utf8', timeout: 300000 });
  if (r.status !== 0 || !existsSync(join(out, 'index.html'))) throw new Error(`building the browser UI failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return out;
}

module.exports = async () => {
  const fatal = [];
  for (const layer of layers) {
    const missing = layer.bins.filter((b) => !onPath(b));
    if (missing.length === 0) {
      if (layer.name === 'test/ui' && process.env.CCS_UI_DIR === undefined) process.env.CCS_UI_DIR = buildUi();
      continue;
    }
    const line = `${layer.name}: ${missing.join(', ')} not on PATH`;
    if (layer.required) fatal.push(line);
    else process.stdout.write(`\n*** SKIPPED LAYER ${line}; its suites are skipped ***\n`);
  }
  if (fatal.length > 0) throw new Error(`required test layers cannot run:\n  ${fatal.join('\n  ')}`);
};
