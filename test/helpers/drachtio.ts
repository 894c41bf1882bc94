/**
 * Spawns a real drachtio-server for one suite on free loopback ports, with the project's
 * config (config/drachtio/drachtio.conf.xml); command-line flags override its ports.
 * Readiness is drachtio's own "Starting sofia event loop" line, not a sleep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort } from './redisServer';

/** A running drachtio-server. */
export interface DrachtioServer {
  adminPort: number;
  sipPort: number;
  wsPort: number;
  secret: string;
  log(): string;
  stop(): Promise<void>;
}

/** Starts drachtio-server and resolves once it accepts applications and SIP. */
export async function startDrachtio(): Promise<DrachtioServer> {
  const [adminPort, sipPort, wsPort] = [await freePort(), await freePort(), await freePort()];
  const secret = 'test-secret';
  const conf = join(__dirname, '../../config/drachtio/drachtio.conf.xml');
  const proc: ChildProcess = spawn(
    'drachtio',
    ['-f', conf, '--address', '127.0.0.1', '--port', String(adminPort), '--secret', secret, '--contact', `sip:127.0.0.1:${sipPort};transport=udp,tcp`, '--contact', `sip:127.0.0.1:${wsPort};transport=ws`, '--loglevel', 'info', '--sofia-loglevel', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
  );
  let out = '';
  // drachtio logs synchronously to stderr: keep draining both pipes or it blocks.
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drachtio not ready:\n${out}`)), 15000);
    proc.stderr!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Starting sofia event loop')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`drachtio exited with ${code}:\n${out}`));
    });
  });
  return {
    adminPort,
    sipPort,
    wsPort,
    secret,
    log: () => out,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    },
  };
}
