/**
 * `npm run events -- --cc default --topic queue:8000`: watches the event stream of a running
 * ccswitch and prints it readably, for operators. Reconnects by itself and resumes with
 * `since` where it left off (a slow-consumer close included), so nothing is missed silently.
 *
 * Options: --url (default ws://127.0.0.1:8080, or CCSWITCH_URL), --cc (default `default`),
 * --topic (repeatable; default `callcenter`), --since <seq>, --json (raw frames), --token
 * (default: API_TOKEN, else the first of API_TOKENS).
 */
import WebSocket from 'ws';

interface Options {
  url: string;
  cc: string;
  topics: string[];
  since: number | undefined;
  json: boolean;
  token: string;
}

function usage(why: string): never {
  process.stderr.write(`${why}\nusage: npm run events -- [--url ws://host:8080] [--cc default] [--topic queue:8000 ...] [--since N] [--json] [--token T]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    url: process.env.CCSWITCH_URL ?? 'ws://127.0.0.1:8080',
    cc: 'default',
    topics: [],
    since: undefined,
    json: false,
    token: process.env.API_TOKEN ?? (process.env.API_TOKENS ?? '').split(',')[0]?.trim() ?? '',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--url') o.url = value();
    else if (a === '--cc') o.cc = value();
    else if (a === '--topic') o.topics.push(value());
    else if (a === '--since') o.since = Number(value());
    else if (a === '--json') o.json = true;
    else if (a === '--token') o.token = value();
    else if (a === '--help' || a === '-h') usage('Watches the ccswitch event stream.');
    else usage(`unknown option ${a}`);
  }
  if (o.token === '') usage('no token: pass --token or set API_TOKEN');
  if (o.since !== undefined && !Number.isInteger(o.since)) usage('--since takes a sequence number');
  if (o.topics.length === 0) o.topics.push('callcenter');
  return o;
}

const time = (ts: unknown): string => (typeof ts === 'number' ? new Date(ts).toISOString().slice(11, 23) : '--:--:--.---');

/** One event as a line a person can read. */
export function describeEvent(e: Record<string, unknown>): string {
  const head = `#${String(e.seq)} ${time(e.ts)}`;
  /** A field as text (events carry strings and numbers; anything else is shown as JSON). */
  const s = (k: string): string => {
    const v = e[k];
    if (v === undefined || v === null) return '';
    return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  };
  switch (e.type) {
    case 'agent.state':
      return `${head} agent ${s('agent')} queue ${s('queue')}: ${s('prev')} → ${s('state')}${e.reason === null || e.reason === undefined ? '' : ` (reason ${s('reason')})`} [op ${s('op')}]`;
    case 'queue.caller':
      return `${head} queue ${s('queue')} caller ${s('caller')} ${s('reason')}${e.position ? ` (position ${s('position')})` : ''}${e.agent ? ` agent ${s('agent')}` : ''}${Array.isArray(e.agents) ? ` agents ${e.agents.join(',')}` : ''}${e.waitedMs !== undefined ? ` waited ${(Number(e.waitedMs) / 1000).toFixed(1)} s` : ''}${e.data !== undefined ? ` data ${JSON.stringify(e.data)}` : ''} task ${s('task')}`;
    case 'queue.stats':
      return `${head} queue ${s('queue')} stats: waiting ${s('waiting')}, answered ${s('answered')}, abandoned ${s('abandoned')}, longest wait ${(Number(e.longestWaitMs ?? 0) / 1000).toFixed(1)} s`;
    case 'conversation':
      return `${head} conversation ${s('id')} ${s('action')}${e.kind ? ` ${s('kind')}` : ''}${e.agent ? ` ${s('agent')}` : ''}${e.mode !== undefined ? ` mode ${s('mode')}` : ''}`;
    default:
      return `${head} ${s('type')} ${JSON.stringify(e)}`;
  }
}

/** A snapshot as a few lines. */
function describeSnapshot(f: Record<string, unknown>): string {
  const d = (f.data ?? {}) as Record<string, unknown>;
  const lines = [`snapshot ${String(f.topic)} at #${String(f.seq)}${f.reason === 'gap' ? ' (the stream had moved on: state refreshed)' : ''}`];
  const members = (d.members ?? []) as { agent: string; state: string }[];
  const callers = (d.callers ?? []) as { caller: string; position: number; waitedMs: number }[];
  if (Array.isArray(d.members)) lines.push(`  members: ${members.map((m) => `${m.agent} ${m.state}`).join(', ') || 'none'}`);
  if (Array.isArray(d.callers)) lines.push(`  waiting: ${callers.map((c) => `${c.position}. ${c.caller} (${(c.waitedMs / 1000).toFixed(0)} s)`).join(', ') || 'nobody'}`);
  if (Array.isArray(d.queues) && d.agent !== undefined) lines.push(`  ${(d.queues as { queue: string; state: string }[]).map((q) => `${q.queue} ${q.state}`).join(', ')}`);
  return lines.join('\n');
}

function watch(o: Options): void {
  let since = o.since;
  let attempt = 0;
  const connect = (): void => {
    const url = `${o.url.replace(/\/$/, '')}/callcenter/${encodeURIComponent(o.cc)}/events`;
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${o.token}` } });
    ws.on('open', () => {
      attempt = 0;
      ws.send(JSON.stringify({ op: 'subscribe', topics: o.topics, ...(since === undefined ? {} : { since }) }));
    });
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Record<string, unknown>;
      if (f.op === 'event') since = Number((f.event as { seq: number }).seq);
      if (f.op === 'snapshot') since = Number(f.seq);
      if (o.json) {
        process.stdout.write(`${data.toString()}\n`);
        return;
      }
      if (f.op === 'event') process.stdout.write(`${describeEvent(f.event as Record<string, unknown>)}\n`);
      else if (f.op === 'snapshot') process.stdout.write(`${describeSnapshot(f)}\n`);
      else if (f.op === 'hello') process.stdout.write(`connected to ${String(f.instance)} (call center ${String(f.cc)}, stream at #${String(f.seq)})\n`);
      else if (f.op === 'subscribed') process.stdout.write(`subscribed to ${(f.topics as string[]).join(', ')}\n`);
      else if (f.op === 'error') process.stdout.write(`error ${String(f.error)}: ${String(f.message)}\n`);
    });
    ws.on('close', (code, reason) => {
      if (code === 4001) {
        process.stderr.write('the token was refused (4001)\n');
        process.exit(1);
      }
      const delay = Math.min(10000, 250 * 2 ** attempt++);
      process.stderr.write(`disconnected (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''}); reconnecting in ${delay} ms${since === undefined ? '' : ` from #${since}`}\n`);
      setTimeout(connect, delay);
    });
    ws.on('error', (err) => process.stderr.write(`${err.message}\n`));
  };
  connect();
}

if (require.main === module) watch(parseArgs(process.argv.slice(2).filter((a) => a !== '--')));
