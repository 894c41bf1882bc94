/**
 * The operators' watcher (`npm run events`, bin/events.ts) against a real instance: it
 * connects, subscribes, prints the snapshot and then each event as a readable line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startApp, type RunningApp } from '../helpers/app';
import { startRedis, type RedisServer } from '../helpers/redisServer';

let server: RedisServer;
let a: RunningApp;
let watcher: ChildProcess | undefined;

beforeAll(async () => {
  server = await startRedis();
  a = await startApp({ redisUrl: server.url });
});
afterAll(async () => {
  watcher?.kill('SIGTERM');
  await a.close();
  await server.stop();
});

/** Resolves once the watcher has printed a line matching `re` (all output so far included). */
function printed(out: { text: string; waiters: Set<() => void> }, re: RegExp, timeoutMs = 20000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!re.test(out.text)) return;
      clearTimeout(timer);
      out.waiters.delete(check);
      resolve();
    };
    const timer = setTimeout(() => {
      out.waiters.delete(check);
      reject(new Error(`the watcher printed no ${re} within ${timeoutMs} ms:\n${out.text}`));
    }, timeoutMs);
    out.waiters.add(check);
    check();
  });
}

it('prints the agent snapshot, then "agent 1001 queue 8000: logged_out → ready [op 1]" for a login', async () => {
  const out = { text: '', waiters: new Set<() => void>() };
  watcher = spawn(process.execPath, [join(__dirname, '../../node_modules/tsx/dist/cli.mjs'), join(__dirname, '../../bin/events.ts'), '--url', a.base.replace('http', 'ws'), '--topic', 'agent:1001'], {
    env: { PATH: process.env.PATH ?? '', API_TOKEN: a.token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const feed = (b: Buffer): void => {
    out.text += b.toString();
    for (const w of [...out.waiters]) w();
  };
  watcher.stdout!.on('data', feed);
  watcher.stderr!.on('data', feed);
  await printed(out, /subscribed to agent:1001/);
  expect(out.text).toMatch(/snapshot agent:1001 at #\d+\n {2}8000 logged_out/);
  await a.app.engine.login('default', '1001');
  await printed(out, /#\d+ \d\d:\d\d:\d\d\.\d{3} agent 1001 queue 8000: logged_out → ready \[op 1\]/);
}, 30000);
