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
  /** Set by the request entry point in sipApp.ts from the Call-ID header (drachtio-srf has no such property). */
  callId: string;
  calledNumber: string;
  callingNumber?: string;
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

/** A SIP dialog (an answered call leg). */
export interface SipDialog {
  on(event: 'destroy' | 'ack', fn: () => void): void;
  /** An in-dialog INFO (DTMF as `application/dtmf-relay`); the listener must answer it. */
  on(event: 'info', fn: (req: SipRequest, res: SipResponse) => void): void;
  /** Sends BYE (with extra headers, if any). */
  destroy(opts?: { headers?: Record<string, string> }): Promise<unknown>;
  /** Sends an in-dialog request (OPTIONS for the keepalive); resolves with the final response. */
  request?(opts: { method: string; headers?: Record<string, string> }): Promise<{ status: number }>;
  /** Sends a re-INVITE with `sdp` as the offer; resolves with the far end's answer. */
  modify(sdp: string): Promise<string>;
  /** The far end's SDP (for a UAC dialog: the answer to our offer). */
  readonly remote: { sdp: string };
  readonly sip: { callId: string };
}

/** An INVITE we sent (drachtio-srf's uac Request), kept to CANCEL it while it rings. */
export interface SipUacRequest {
  cancel(opts?: { headers?: Record<string, string> }): void;
}

/** A provisional response to an INVITE we sent. */
export interface SipProvisional {
  status: number;
}

/** drachtio-srf's SipError: the final status of a failed INVITE we sent. */
export interface SipErrorLike {
  status: number;
  reason?: string;
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
  createUAC(
    uri: string,
    opts: { localSdp: string; headers?: Record<string, string> },
    progress?: { cbRequest?: (err: Error | null, req: SipUacRequest) => void; cbProvisional?: (res: SipProvisional) => void },
  ): Promise<SipDialog>;
  /** An INVITE without an offer (`noAck`): the far end offers in its 200 OK and we answer in the ACK. */
  createUAC(
    uri: string,
    opts: { noAck: true; headers?: Record<string, string> },
    progress?: { cbRequest?: (err: Error | null, req: SipUacRequest) => void; cbProvisional?: (res: SipProvisional) => void },
  ): Promise<SipOfferIn2xx>;
}

/**
 * The 200 OK to an INVITE we sent without an offer (drachtio-srf `noAck`): the far end's
 * offer, waiting for our answer in the ACK.
 */
export interface SipOfferIn2xx {
  /** The far end's offer. */
  readonly sdp: string;
  /** Sends the ACK with our answer; resolves with the dialog. */
  ack(localSdp: string): Promise<SipDialog>;
  /** Abandons it: ACK (echoing the offer) then BYE. */
  destroy(): Promise<unknown>;
}
