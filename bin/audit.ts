/**
 * `npm run audit -- --cc default [--repair] [--json]`: the invariant audit of a call center,
 * read straight from Redis (no running instance needed). It lists every broken invariant with
 * its key and a plain explanation; `--repair` gives each the ending the normal path would have
 * given it (with events and log entries, see lib/audit/repair.ts) and audits again.
 *
 * Configuration as `npm start`: `CCSWITCH_CONFIG` (default config/default.yaml) and the same
 * environment overrides (REDIS_URL...). Exit status: 0 when the (final) audit is empty, 1 when
 * findings remain, 2 on bad usage or an unreadable configuration.
 */
import { readFileSync } from 'node:fs';
import { TaskStore } from '../lib/acd/taskStore';
import { AgentEngine } from '../lib/agent/engine';
import { audit, type AuditFinding } from '../lib/audit/audit';
import { repair } from '../lib/audit/repair';
import { loadConfig, type EnvOverrides } from '../lib/config/load';
import { ConversationStore } from '../lib/conversation/store';
import { ConfigError } from '../lib/errors';
import { createLogger } from '../lib/logger';
import { createRedis } from '../lib/store/redis';

interface Options {
  cc: string;
  repair: boolean;
  json: boolean;
}

function usage(why: string): never {
  process.stderr.write(`${why}\nusage: npm run audit -- [--cc default] [--repair] [--json]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = { cc: 'default', repair: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--cc') o.cc = argv[++i] ?? usage('--cc needs a value');
    else if (a === '--repair') o.repair = true;
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') usage('Audits (and with --repair mends) a call center\'s state in Redis.');
    else usage(`unknown option ${a}`);
  }
  return o;
}

const line = (f: AuditFinding): string => `  ${f.kind.padEnd(26)} ${f.key}\n  ${' '.repeat(26)} ${f.explanation}\n`;

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const env = process.env as EnvOverrides & { CCSWITCH_CONFIG?: string };
  const path = env.CCSWITCH_CONFIG ?? 'config/default.yaml';
  let config;
  try {
    config = loadConfig({ text: readFileSync(path, 'utf8'), source: path, env });
  } catch (err) {
    process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `cannot read ${path}: ${String(err)}\n`);
    return 2;
  }
  const cc = config.callcenters[o.cc];
  if (cc === undefined) usage(`no call center ${o.cc} in ${path} (there are: ${Object.keys(config.callcenters).join(', ')})`);
  // Repairs log at warn on stderr, so stdout stays the report.
  const logger = createLogger(o.json ? 'silent' : 'warn', { component: 'audit' }, process.stderr);
  // A Redis that cannot be reached fails the run after a few seconds instead of retrying forever.
  const redis = createRedis(config.redis.url, { maxRetriesPerRequest: 1, retryStrategy: (times) => (times > 3 ? null : 200 * times) });
  redis.on('error', () => undefined);
  try {
    const engine = new AgentEngine({ redis, config });
    const keys = engine.keys(cc.id);
    const found = await audit(redis, keys, cc);
    const repaired = o.repair ? await repair({ redis, engine, tasks: new TaskStore({ redis, config }), conversations: new ConversationStore({ redis, config }), logger }, cc, keys, found) : undefined;
    const remaining = o.repair ? await audit(redis, keys, cc) : found;
    if (o.json) {
      process.stdout.write(`${JSON.stringify(o.repair ? { repaired, findings: remaining } : { findings: found })}\n`);
    } else {
      process.stdout.write(found.length === 0 ? `call center ${cc.id}: no broken invariants\n` : `call center ${cc.id}: ${found.length} broken invariant(s)\n${found.map(line).join('')}`);
      for (const r of repaired ?? []) process.stdout.write(`  ${r.applied ? 'repaired' : 'unchanged'}: ${r.action}\n`);
      if (o.repair && found.length > 0) process.stdout.write(remaining.length === 0 ? 'after repair: no broken invariants\n' : `after repair: ${remaining.length} left\n${remaining.map(line).join('')}`);
    }
    return remaining.length === 0 ? 0 : 1;
  } finally {
    redis.disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`audit failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
