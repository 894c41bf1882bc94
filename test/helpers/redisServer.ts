/**
 * Spawns a real redis-server on a free loopback port for one test suite (DESIGN.md 10).
 * Readiness is awaited by connecting, never by sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running redis-server. */
export interface RedisServer {
  port: number;
  url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops and starts it again on the same port: an empty dataset, or with `aof` what its append-only file kept. */
  restart(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  await once(srv, 'close');
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** Resolves when redis-server logs that it accepts connections; rejects if it exits first. */
function waitReady(proc: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`redis-server not ready after ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        proc.stdout?.resume();
        resolve();
      }
    };
    proc.stdout?.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${log}`));
    });
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not start (is it installed? apt-get install redis-server): ${err.message}`));
    });
  });
}

/**
 * Starts redis-server; fails loudly if it is not installed (CI installs it). With `aof`, it
 * persists every write to an append-only file (fsync always) in a fresh directory, as
 * docker-compose runs it, so a restart keeps the data.
 */
export async function startRedis(o: { aof?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess;
  const persistence = o.aof === true ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', mkdtempSync(join(tmpdir(), 'ccs-redis-'))] : ['--appendonly', 'no'];
  const launch = async (): Promise<void> => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--protected-mode', 'yes'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await waitReady(proc, 10000);
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
  };
}
