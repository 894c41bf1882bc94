// Runs once before the suites: says loudly which layers are skipped and why, and fails the
// run when a layer that must run cannot (redis always; sip/media when REQUIRE_* is set).
const { accessSync, constants } = require('node:fs');
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
];

module.exports = async () => {
  const fatal = [];
  for (const layer of layers) {
    const missing = layer.bins.filter((b) => !onPath(b));
    if (missing.length === 0) continue;
    const line = `${layer.name}: ${missing.join(', ')} not on PATH`;
    if (layer.required) fatal.push(line);
    else process.stdout.write(`\n*** SKIPPED LAYER ${line}; its suites are skipped ***\n`);
  }
  if (fatal.length > 0) throw new Error(`required test layers cannot run:\n  ${fatal.join('\n  ')}`);
};
