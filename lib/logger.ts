/** The structured logger (pino). Components take a logger and make per-call children. */
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger };

/** Creates the root logger; `destination` lets tests capture lines. */
export function createLogger(level: LevelWithSilent, base: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'ccswitch', ...base }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
