/**
 * Hand-written types for the parts of drachtio-fsmrf 4.1.2 that ccswitch uses (the package
 * ships none). Read from node_modules/drachtio-fsmrf/lib; everything else is left out on
 * purpose, so a use of an untyped part fails to compile and gets typed here first.
 * Only media/fsmrf.ts imports this module (DESIGN.md section 2).
 */
declare module 'drachtio-fsmrf' {
  import type { EventEmitter } from 'node:events';

  namespace Mrf {
    /** A FreeSWITCH event (drachtio-modesl's ESLevent). */
    interface EslEvent {
      getHeader(name: string): string | undefined;
      getBody(): string;
    }

    /**
     * A drachtio-modesl connection: the inbound one of a MediaServer, or the outbound one
     * FreeSWITCH opens per channel (`socket ... async full`). Events are named
     * `esl::event::<EVENT-NAME>::<uuid>` (`CUSTOM` for custom subclasses) and `esl::end`.
     */
    interface EslConnection extends EventEmitter {
      connected(): boolean;
      /** `api <command> <args>`; the callback gets the api/response event. */
      api(command: string, args: string, cb: (res: EslEvent) => void): void;
      api(command: string, cb: (res: EslEvent) => void): void;
      disconnect(): void;
    }

    /** Options of {@link Mrf.connect}. */
    interface ConnectOptions {
      /** Event-socket host of FreeSWITCH. */
      address: string;
      /** Event-socket port (default 8021). */
      port?: number;
      /** Event-socket password (default ClueCon). */
      secret?: string;
      /** Where the outbound-socket server listens (default: first non-internal IPv4). */
      listenAddress?: string;
      /** Its port (default 0: any). */
      listenPort?: number;
      /** Address FreeSWITCH is told to connect to (X-esl-outbound), if not listenAddress. */
      advertisedAddress?: string;
      advertisedPort?: number;
      /** SIP profile to send INVITEs to (default drachtio_mrf). */
      profile?: string;
    }

    /** Options of {@link MediaServer.createEndpoint}. */
    interface EndpointOptions {
      /** The far end's offer; without it the endpoint is created offerless (3pcc). */
      remoteSdp?: string;
      codecs?: string | string[];
      headers?: Record<string, string>;
    }

    /** Options of {@link Endpoint.join}; flags become `+flags{a|b}` in snake-dash case. */
    interface JoinOptions {
      profile?: string;
      pin?: string;
      flags?: {
        mute?: boolean;
        deaf?: boolean;
        ghost?: boolean;
        endconf?: boolean;
        nomoh?: boolean;
        moderator?: boolean;
        joinOnly?: boolean;
        vmute?: boolean;
      };
    }

    /** Options of {@link MediaServer.createConference}. */
    interface ConferenceOptions extends JoinOptions {
      maxMembers?: number;
    }

    /** The SIP dialog between drachtio and FreeSWITCH behind an endpoint. */
    interface FsDialog extends EventEmitter {
      destroy(): Promise<unknown>;
    }

    /** A FreeSWITCH channel controlled through its outbound event socket. */
    interface Endpoint extends EventEmitter {
      /** FreeSWITCH channel uuid. */
      readonly uuid: string;
      readonly local: { sdp: string; mediaIp?: string; mediaPort?: string };
      readonly remote: { sdp: string; mediaIp?: string; mediaPort?: string };
      /** Conference membership set by join(). */
      readonly conf: { name?: string; memberId?: number; uuid?: string };
      /** Null once FreeSWITCH closed the outbound socket. */
      readonly conn: EslConnection | null;
      readonly dialog: FsDialog | null;
      readonly connected: boolean;
      /** Runs a dialplan application; resolves with its CHANNEL_EXECUTE_COMPLETE event. */
      execute(app: string, arg?: string): Promise<EslEvent>;
      /** `playback` of one file or tone stream; resolves when it has finished. */
      play(file: string): Promise<{ playbackSeconds?: string; playbackMilliseconds?: string }>;
      /** Runs the `set` application: channel variable `param` = `value`. */
      set(param: string, value: string): Promise<unknown>;
      /** Runs the `conference` application; resolves when the member-add event arrives. */
      join(conf: string, opts?: JoinOptions): Promise<{ memberId: number; confUuid: string }>;
      /** Sends a re-INVITE with `sdp` and refreshes local/remote. */
      modify(sdp: string): Promise<unknown>;
      /** Hangs up the channel; resolves when FreeSWITCH's BYE arrived. */
      destroy(): Promise<void>;
      /** 'destroy': the channel went away (hangup on FreeSWITCH or socket closed). */
      on(event: 'destroy', fn: (info?: { reason?: string }) => void): this;
      once(event: 'destroy', fn: (info?: { reason?: string }) => void): this;
      /** 'ready': emitted once, just after construction (lib/endpoint.js _emitReady). */
      once(event: 'ready', fn: () => void): this;
      off(event: 'destroy', fn: (info?: { reason?: string }) => void): this;
      /** 'dtmf': a digit from the far end (RFC 4733 or in-band, as FreeSWITCH detects it). */
      on(event: 'dtmf', fn: (evt: { dtmf?: string; duration?: string; source?: string }) => void): this;
      off(event: 'dtmf', fn: (evt: { dtmf?: string; duration?: string; source?: string }) => void): this;
    }

    /** A conference with its control leg (an offerless endpoint joined with endconf). */
    interface Conference extends EventEmitter {
      readonly name: string;
      readonly uuid: string;
      readonly endpoint: Endpoint;
      /** Destroys the control leg, which ends the conference (its flag is endconf). */
      destroy(): Promise<void>;
    }

    /** A connected FreeSWITCH. */
    interface MediaServer extends EventEmitter {
      readonly address: string;
      readonly conn: EslConnection;
      /** The outbound-socket server's port (set once listening). */
      readonly listenPort: number;
      connected(): boolean;
      /** Runs an api command on the inbound connection; resolves with the response body. */
      api(command: string): Promise<string>;
      createEndpoint(opts?: EndpointOptions): Promise<Endpoint>;
      createConference(name: string, opts?: ConferenceOptions): Promise<Conference>;
      /** Closes the inbound connection and the outbound-socket server (no reconnect). */
      disconnect(): void;
      /** 'end': the inbound event socket closed. */
      on(event: 'end', fn: () => void): this;
      on(event: 'error', fn: (err: Error) => void): this;
      once(event: 'end', fn: () => void): this;
    }
  }

  /** The media resource framework: connects to FreeSWITCHes for one drachtio-srf app. */
  class Mrf extends EventEmitter {
    /** `srf` is a drachtio-srf instance (typed loosely: media/ does not depend on app/). */
    constructor(srf: object, opts?: { customEvents?: string[] });
    connect(opts: Mrf.ConnectOptions): Promise<Mrf.MediaServer>;
  }

  export = Mrf;
}

/**
 * fsmrf's Endpoint class, constructed directly by media/fsmrfAnswerFirst.ts for a leg whose
 * offer needs a DTLS handshake (fsmrf's own createEndpoint refuses such an offer).
 */
declare module 'drachtio-fsmrf/lib/endpoint' {
  import type Mrf from 'drachtio-fsmrf';

  const Endpoint: new (conn: Mrf.EslConnection, dialog: Mrf.FsDialog, ms: Mrf.MediaServer, opts: { customEvents?: string[]; is3pcc?: boolean }) => Mrf.Endpoint;
  export = Endpoint;
}
