/**
 * ws exports its frame encoder (lib/sender.js `Sender.frame`) at runtime, but @types/ws does
 * not declare it. app/ws/session.ts uses it to build an event's WebSocket frame once for every
 * client.
 */
import 'ws';

declare module 'ws' {
  /** The frame encoder of ws. */
  export class Sender {
    /** A frame's bytes: [header, payload] (or one buffer when they were merged). */
    static frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[];
  }
}
