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
  /** The process id (for SIGKILL by a fault test). */
  readonly pid: number;
  stop(): Promise<void>;
  /** SIGKILL, then a new drachtio-server on the same ports (a crash and its restart). */
  restart(): Promise<void>;
}

/** Why one launch failed, and whether fresh ports may cure it. */
class LaunchError extends Error {
  constructor(
    message: string,
    readonly portClash: boolean,
  ) {
    super(message);
  }
}

/**
 * Starts drachtio-server and resolves once it accepts applications and SIP.
 * A free port found by {@link freePort} is only free when probed: by the time drachtio binds
 * it, another suite (or an outgoing socket given that ephemeral port) may hold it, and drachtio
 * then exits with "Error adding additional transport". Such a launch is retried on new ports.
 */
export async function startDrachtio(): Promise<DrachtioServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchDrachtio();
    } catch (err) {
      if (!(err instanceof LaunchError && err.portClash) || attempt >= 4) throw err;
    }
  }
}

interface Ports {
  adminPort: number;
  sipPort: number;
  wsPort: number;
}

async function launchDrachtio(given?: Ports): Promise<DrachtioServer> {
  const ports: Ports = given ?? { adminPort: await freePort(), sipPort: await freePort(), wsPort: await freePort() };
  const secret = 'test-secret';
  let proc = await spawnDrachtio(ports, secret);
  const kill = async (): Promise<void> => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const exited = once(proc.child, 'exit');
    proc.child.kill('SIGKILL');
    await exited;
  };
  return {
    ...ports,
    secret,
    log: () => proc.out(),
    get pid() {
      return proc.child.pid ?? 0;
    },
    stop: kill,
    restart: async () => {
      await kill();
      const before = proc.out();
      proc = await spawnDrachtio(ports, secret);
      const after = proc.out;
      proc.out = () => `${before}\n--- restarted ---\n${after()}`;
    },
  };
}

/** Spawns drachtio-server on `ports` and resolves once it accepts applications and SIP. */
async function spawnDrachtio(ports: Ports, secret: string): Promise<{ child: ChildProcess; out: () => string }> {
  const { adminPort, sipPort, wsPort } = ports;
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
    const timer = setTimeout(() => reject(new LaunchError(`drachtio not ready:\n${out}`, false)), 15000);
    proc.stderr!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Starting sofia event loop')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      const clash = /Error adding additional transport|address already in use|bind/i.test(out);
      reject(new LaunchError(`drachtio exited with ${code}:\n${out}`, clash));
    });
  });
  return { child: proc, out: () => out };
}
