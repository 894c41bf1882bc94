/**
 * The parts of drachtio-srf ccswitch uses, typed here because the package's own typings
 * are wrong in places (connect() is not a Promise, register() and the 'close' /
 * 'reconnecting' events are missing, source_port is a number).
 */

/** An incoming SIP request. */
export interface SipRequest {
  method: string;
  uri: string;
  body: string;
  callId: string;
  calledNumber: string;
  source_address: string;
  source_port: number | string;
  protocol: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
  getParsedHeader(name: string): unknown;
  on(event: 'cancel', fn: () => void): void;
}

/** The response side of a server transaction. */
export interface SipResponse {
  send(status: number, reason?: string, opts?: { headers?: Record<string, string>; body?: string }): void;
  readonly finalResponseSent?: boolean;
}

/** A SIP dialog (the answered FAC call). */
export interface SipDialog {
  on(event: 'destroy' | 'ack', fn: () => void): void;
  destroy(): Promise<unknown>;
}

/** The drachtio-srf application object, as used. */
export interface SrfLike {
  connect(opts: {
    host: string;
    port: number;
    secret: string;
    reconnect?: { retryMaxDelay?: number };
    enablePing?: boolean;
    pingInterval?: number;
  }): unknown;
  disconnect(): void;
  on(event: 'connect', fn: (err: Error | null, hostport: string) => void): unknown;
  on(event: 'error' | 'close' | 'reconnecting', fn: (arg?: unknown) => void): unknown;
  register(fn: (req: SipRequest, res: SipResponse) => void): void;
  invite(fn: (req: SipRequest, res: SipResponse) => void): void;
  createUAS(req: SipRequest, res: SipResponse, opts: { localSdp: string; headers?: Record<string, string> }): Promise<SipDialog>;
}
