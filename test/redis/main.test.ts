import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type RedisServer } from '../helpers/redisServer';

const root = join(__dirname, '../..');
let server: RedisServer;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => server.stop());

/** Runs app/main.ts as its own process; resolves lines as they come. */
function runMain(env: Record<string, string>): { proc: ChildProcess; output: () => string; waitFor: (re: RegExp) => Promise<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'app/main.ts'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners: (() => void)[] = [];
  const onData = (b: Buffer): void => {
    out += b.toString();
    for (const l of listeners) l();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  return {
    proc,
    output: () => out,
    waitFor: (re) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(out);
          if (m) resolve(m[0]);
        };
        listeners.push(check);
        proc.once('exit', (code) => reject(new Error(`exited ${code} before ${re}:\n${out}`)));
        check();
      }),
  };
}

describe('process entry (npm start)', () => {
  it('starts with only Redis, serves REST, reports SIP/media down, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const token = 'main-test-token-0123456789';
    const run = runMain({ REDIS_URL: server.url, HTTP_PORT: String(port), API_TOKENS: token, LOG_LEVEL: 'info' });
    await run.waitFor(/ccswitch listening/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    const body = (await health.json()) as { status: string; components: Record<string, { up: boolean }> };
    expect(health.status).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.components.redis!.up).toBe(true);
    expect(body.components.drachtio!.up).toBe(false);
    const login = await fetch(`http://127.0.0.1:${port}/callcenter/default/agent/1001/login`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(login.status).toBe(200);
    const exited = once(run.proc, 'exit');
    run.proc.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(run.output()).toMatch(/ccswitch stopped/);
  });

  it('refuses a bad configuration file with a message naming the key, exit code 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccs-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'callcenters:\n  x:\n    queues:\n      "8000": { name: Q, wrapUpSeconds: -3 }\n    agents: {}\n');
    const run = runMain({ CCSWITCH_CONFIG: file, REDIS_URL: server.url });
    const [code] = await once(run.proc, 'exit');
    expect(code).toBe(1);
    expect(run.output()).toMatch(/callcenters\.x\.queues\.8000\.wrapUpSeconds: must be >= 0/);
  });

  it('with Redis unreachable at start it logs "ccswitch failed to start" at fatal and exits 1 within seconds, instead of idling unserved', async () => {
    const closed = await freePort();
    const run = runMain({ REDIS_URL: `redis://127.0.0.1:${closed}`, HTTP_PORT: String(await freePort()), LOG_LEVEL: 'info' });
    const started = Date.now();
    const [code] = await once(run.proc, 'exit');
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20000);
    expect(run.output()).toMatch(/"level":60.*ccswitch failed to start/);
  }, 30000);
});
