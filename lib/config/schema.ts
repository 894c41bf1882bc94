/**
 * Configuration schema (DESIGN.md section 9). TypeBox gives both the JSON Schema that
 * validates the YAML file and the static types the rest of the code uses.
 */
import { Type, type Static } from '@sinclair/typebox';

/** Identifiers used inside Redis key names and stream fields: no separators, no spaces. */
const Id = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' });
/** A dialable number (queue numbers, extensions). */
const Digits = Type.String({ pattern: '^[0-9]{2,16}$' });

/** A trunk's far end: `host[:port][;transport=udp|tcp|tls]`. */
const TrunkTarget = Type.String({ maxLength: 300, pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(;transport=(udp|tcp|tls))?$' });

/** A sound: a FreeSWITCH file or stream URI without spaces. */
const Sound = Type.String({ minLength: 1, maxLength: 512, pattern: '^\\S+$' });

/** An outside number as dialed: digits with an optional leading +, * and #. */
const OutsideNumber = Type.String({ pattern: '^\\+?[0-9*#]{1,32}$' });

/**
 * Where an inbound number or a closed schedule sends a call: a queue (with the task's
 * priority), an agent's extension, an announcement (played, then released) or an outside
 * number (through the outbound routes). Exactly one of queue, agent, announcement, number.
 */
export const CallTargetSchema = Type.Object(
  {
    queue: Type.Optional(Digits),
    priority: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    agent: Type.Optional(Id),
    announcement: Type.Optional(Sound),
    number: Type.Optional(OutsideNumber),
  },
  { additionalProperties: false },
);

/** Days of a weekly schedule. */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/**
 * Business hours (issue "trunk routing"): per weekday a list of `HH:MM-HH:MM` ranges in the
 * schedule's IANA time zone, holidays as `YYYY-MM-DD` (closed all day), and what a call gets
 * while closed.
 */
export const ScheduleSchema = Type.Object(
  {
    timezone: Type.String({ minLength: 1, maxLength: 64 }),
    weekly: Type.Object(Object.fromEntries(WEEKDAYS.map((d) => [d, Type.Optional(Type.Array(Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$' }), { maxItems: 16 }))])), { additionalProperties: false }),
    holidays: Type.Array(Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' }), { default: [], maxItems: 1000 }),
    closed: CallTargetSchema,
  },
  { additionalProperties: false },
);

/** One outbound route: numbers starting with `prefix` go to `trunk`, `strip` digits removed first and `prepend` added. */
export const RouteSchema = Type.Object(
  {
    prefix: Type.String({ pattern: '^\\+?[0-9*#]{0,20}$' }),
    trunk: Id,
    strip: Type.Integer({ minimum: 0, maximum: 20, default: 0 }),
    prepend: Type.String({ pattern: '^\\+?[0-9*#]{0,20}$', default: '' }),
  },
  { additionalProperties: false },
);

/** ACD strategies (issue 4 implements them; the names are fixed now). */
export const STRATEGIES = [
  'ring_all',
  'longest_idle',
  'round_robin',
  'top_down',
  'fewest_calls',
  'least_talk_time',
  'random',
  'skills',
] as const;

export const QueueSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    strategy: Type.Union(STRATEGIES.map((s) => Type.Literal(s)), { default: 'longest_idle' }),
    autoReady: Type.Boolean({ default: false }),
    wrapUpSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 0 }),
    ringSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 600, default: 20 }),
    /** Consecutive unanswered offers after which an agent is set Not Ready (reason 2, no answer). */
    noAnswerLimit: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
    maxWaitSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 600 }),
    /**
     * Service-level threshold: a caller answered within this many seconds of joining the
     * queue counts as served in time (the `serviceLevel` of the queue's statistics).
     */
    slaSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 20 }),
    /** A schedule name (`callcenters.<cc>.schedules`): outside its hours callers get its `closed` target. */
    hours: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })),
    overflow: Type.Optional(
      Type.Object({ queue: Type.Optional(Digits), number: Type.Optional(Type.String({ pattern: '^\\+?[0-9*#]{1,32}$' })) }, { additionalProperties: false }),
    ),
    /**
     * What a caller alone in the conversation hears. The default is a tone stream because a
     * stock FreeSWITCH without sound files has no `local_stream://moh`.
     */
    moh: Type.String({ minLength: 1, maxLength: 512, default: 'tone_stream://%(300,100,523);%(300,100,659);%(300,100,784);%(600,1500,659);loops=-1' }),
    /**
     * What a waiting caller hears besides the music: `welcome` once on arrival, and every
     * `periodSeconds` (when `position` is on) its place in the queue, from `positionSound`
     * (`{n}` = the position, e.g. `file_string://ivr/ivr-you_are_number.wav!digits/{n}.wav`)
     * or, without one, as beeps. Sounds are FreeSWITCH file or stream URIs (no spaces).
     */
    announcements: Type.Optional(
      Type.Object(
        {
          welcome: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: '^\\S+$' })),
          position: Type.Boolean({ default: false }),
          periodSeconds: Type.Number({ minimum: 1, maximum: 3600, default: 30 }),
          positionSound: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: '^\\S*\\{n\\}\\S*$' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const Skills = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.Integer({ minimum: 0, maximum: 100 }));
const Membership = Type.Object({ skills: Type.Optional(Skills) }, { additionalProperties: false });

export const AgentSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 128 })),
    extension: Digits,
    password: Type.String({ minLength: 4, maxLength: 128 }),
    /** A list of queue numbers, or a map of queue number to membership options (skills). */
    queues: Type.Union([Type.Array(Digits, { maxItems: 256 }), Type.Record(Digits, Membership)]),
  },
  { additionalProperties: false },
);

/** A supervisor (DESIGN.md section 12): a SIP user like an agent, with the queues it oversees. */
export const SupervisorSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 128 })),
    extension: Digits,
    password: Type.String({ minLength: 4, maxLength: 128 }),
    queues: Type.Array(Digits, { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
);

export const CallCenterSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 128 })),
    // additionalProperties: false, so a key that fails the pattern is an error, not ignored.
    queues: Type.Record(Digits, QueueSchema, { additionalProperties: false }),
    agents: Type.Record(Id, AgentSchema, { additionalProperties: false }),
    supervisors: Type.Record(Id, SupervisorSchema, { default: {}, additionalProperties: false }),
    /**
     * The site's own Not Ready reasons (seed 004, operation 3: 200-250 are "customized by the
     * service side"), code → label, offered to agents beside the table's reasons.
     */
    busyReasons: Type.Record(Type.String({ pattern: '^(2[0-4][0-9]|250)$' }), Type.String({ minLength: 1, maxLength: 64 }), { default: {}, additionalProperties: false }),
    /**
     * Inbound numbers from trunks: an exact number (`+14155550100`) or a prefix ending in `*`
     * (`+1415555*`; `*` alone catches every number, `+*` every international one); an exact
     * number wins, else the longest prefix. `hours` names a schedule checked before the target.
     */
    numbers: Type.Record(
      Type.String({ pattern: '^(\\+?[0-9]{1,20}\\*?|\\+?\\*)$' }),
      Type.Object({ ...CallTargetSchema.properties, hours: Type.Optional(Id) }, { additionalProperties: false }),
      { default: {}, additionalProperties: false },
    ),
    /** Business-hours schedules by name (queues and numbers name them in `hours`). */
    schedules: Type.Record(Id, ScheduleSchema, { default: {}, additionalProperties: false }),
    /**
     * Outbound routing: the routes whose prefix matches a number, in order, each trunk's up
     * addresses in order; a 5xx, 408 or no answer within `failoverSeconds` moves on, any other
     * final response does not. Without routes: every trunk of the call center with `outbound`.
     */
    outbound: Type.Object(
      {
        routes: Type.Array(RouteSchema, { default: [], maxItems: 256 }),
        failoverSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 300, default: 8 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

const FacCode = Type.String({ pattern: '^[*#][0-9]{1,4}$' });



const TokenString = Type.String({ minLength: 16, maxLength: 256, pattern: '^\\S+$' });

/** The roles a token can have (DESIGN.md section 12). */
export const ROLES = ['admin', 'supervisor', 'agent'] as const;
/** A token's role. */
export type Role = (typeof ROLES)[number];

/** A token with a role: `supervisor` with its queues (or a configured supervisor), `agent` with one agent id. */
export const ApiTokenSchema = Type.Object(
  {
    token: TokenString,
    /** Shown in logs instead of the token (default `token-<n>`, its place in the list). */
    name: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.@-]{1,64}$' })),
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    /** The call center a supervisor or agent token belongs to (default: the only one). */
    callcenter: Type.Optional(Id),
    /** supervisor: the queues it may act on (default: those of its `supervisor`). */
    queues: Type.Optional(Type.Array(Digits, { minItems: 1, maxItems: 256 })),
    /** supervisor: the configured supervisor it acts as (monitoring, the forced changes' log object). */
    supervisor: Type.Optional(Id),
    /** agent: the one agent it may act as. */
    agent: Type.Optional(Id),
  },
  { additionalProperties: false },
);

/**
 * What a feature code can tell the agent (fac/outcome.ts computes them); `fac.prompts` keys
 * must be one of these.
 */
export const FAC_OUTCOMES = ['logged_in_ready', 'logged_in_not_ready', 'ready', 'not_ready', 'logged_out', 'status', 'not_member', 'unknown_queue', 'not_allowed', 'malformed', 'not_authenticated', 'failed', 'not_on_call'] as const;

/** One FAC outcome. */
export type FacOutcome = (typeof FAC_OUTCOMES)[number];

export const FileConfigSchema = Type.Object(
  {
    instanceId: Type.Optional(Id),
    redis: Type.Object(
      {
        url: Type.String({ default: 'redis://127.0.0.1:6379' }),
        keyPrefix: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,32}$', default: 'ccs' }),
        /**
         * A command without a reply by then fails (REST 503, SIP 503) and its connection is
         * replaced; a state change reaching Redis later than this after it was sent is refused.
         */
        commandTimeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 2000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    http: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
        bodyLimitBytes: Type.Integer({ minimum: 256, maximum: 10 * 1024 * 1024, default: 64 * 1024 }),
        /** Wrong bearer tokens one source address may send in `seconds` before it gets 429 for the rest of the window. */
        authFailureLimit: Type.Object({ count: Type.Integer({ minimum: 1, maximum: 100000, default: 16 }), seconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 2 }) }, { additionalProperties: false, default: {} }),
      },
      { additionalProperties: false, default: {} },
    ),
    drachtio: Type.Object({ host: Type.String({ default: '127.0.0.1' }), port: Type.Integer({ minimum: 1, maximum: 65535, default: 9022 }), secret: Type.String({ default: 'cymru' }) }, { additionalProperties: false, default: {} }),
    freeswitch: Type.Object({ host: Type.String({ default: '127.0.0.1' }), port: Type.Integer({ minimum: 1, maximum: 65535, default: 8021 }), secret: Type.String({ default: 'ClueCon' }) }, { additionalProperties: false, default: {} }),
    log: Type.Object({ level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }) }, { additionalProperties: false, default: {} }),
    timers: Type.Object(
      {
        /** How often each instance looks for due deadlines. */
        pollMs: Type.Integer({ minimum: 10, maximum: 10000, default: 250 }),
        /** How long a claimed deadline stays with its claimer before another instance may take it. */
        claimLeaseMs: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
        /**
         * How long an instance may go silent before another instance ends its calls for the
         * agents (crash safety: nobody stays on Other/Queue Call forever). It beats every third.
         */
        callGuardMs: Type.Integer({ minimum: 300, maximum: 600000, default: 30000 }),
        /** How often a queue.stats event is published per queue (only when its figures changed). */
        queueStatsMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 5000 }),
        /**
         * How long a REST call handed to the instance owning a conversation waits for that
         * instance to take it before answering 503 owner_unreachable (nothing applied).
         */
        commandTimeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 3000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    streams: Type.Object(
      {
        eventsMaxLen: Type.Integer({ minimum: 100, default: 100000 }),
        oplogMaxLen: Type.Integer({ minimum: 100, default: 1000000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The WebSocket event stream (DESIGN.md section 7). */
    events: Type.Object(
      {
        /** Bytes a client may leave unread before it is closed (4008 slow_consumer) so it can resume. */
        maxBufferedBytes: Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 1024 * 1024 }),
        /** Topics one socket may be subscribed to at once. */
        maxSubscriptions: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }),
        /** Largest client frame (bytes); larger ones get an error frame. */
        maxFrameBytes: Type.Integer({ minimum: 256, maximum: 1024 * 1024, default: 4096 }),
        /** How long a client without an Authorization header has to send its auth frame. */
        authTimeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
        /** Ping interval; a client that has not answered the previous ping is dropped. */
        pingMs: Type.Integer({ minimum: 100, maximum: 600000, default: 30000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    fac: Type.Object(
      {
        ready: FacCode,
        notReady: FacCode,
        login: FacCode,
        logout: FacCode,
        /** Reads the agent's state per queue back as audio; changes nothing. */
        status: Type.Optional(FacCode),
        /**
         * Supervisors only: `<code><extension>[*<mode 1-4>]` monitors the agent with that
         * extension (1 listen, 2 whisper, 3 barge, 4 intercept; default 1).
         */
        monitor: Type.String({ pattern: '^[*#][0-9]{1,4}$', default: '*63' }),
        /**
         * Sound per FAC outcome (a FreeSWITCH file, `say:` phrase or `tone_stream://` URI),
         * replacing the shipped tone pattern of that outcome (fac/prompts.ts).
         */
        prompts: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z_]{1,32}$' }), Type.String({ minLength: 1, maxLength: 1024, pattern: '^\\S+$' }))),
      },
      { additionalProperties: false, default: { ready: '*36', notReady: '*37', login: '*38', logout: '*39', status: '*35', monitor: '*63' } },
    ),
    sip: Type.Object(
      {
        /** Digest realm; default: the call center id. */
        realm: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^"\\\\]+$' })),
        /** Registration lifetimes in seconds (RFC 3261 10.3: Min-Expires, and the registrar's own cap). */
        minExpires: Type.Integer({ minimum: 1, maximum: 86400, default: 60 }),
        maxExpires: Type.Integer({ minimum: 1, maximum: 86400, default: 3600 }),
        defaultExpires: Type.Integer({ minimum: 1, maximum: 86400, default: 3600 }),
        /** Contacts one agent may have registered at once. */
        maxContacts: Type.Integer({ minimum: 1, maximum: 100, default: 5 }),
        /** How long a digest nonce stays valid before a client is asked again with stale=true. */
        nonceTtlSeconds: Type.Integer({ minimum: 10, maximum: 3600, default: 300 }),
        /**
         * Dialog keepalive: a call leg up this long gets an in-dialog OPTIONS, then again at
         * this period; 481, 408 or no answer within min(10 s, half the period) ends it as hung
         * up (a lost BYE must not hold an agent for ever). 0 turns it off.
         */
        dialogKeepaliveSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
        /**
         * Queue-call offers to agents' phones carry no SDP: the phone offers in its 200 OK and
         * FreeSWITCH answers in the ACK (RFC 3261 late offer, as browsers are always called).
         * One SIP transaction with FreeSWITCH per agent leg instead of two (an INVITE for its
         * offer, a re-INVITE with the phone's answer), and the phone rings without waiting
         * for FreeSWITCH. false: FreeSWITCH's offer in the INVITE, for a phone that cannot
         * offer in a 200 OK.
         */
        lateOfferToAgents: Type.Boolean({ default: true }),
        /**
         * The agent console's browser softphone (SIP.js): `wsUrl` is where browsers reach
         * drachtio-server's SIP WebSocket transport (`ws://host:port` or `wss://host:port`,
         * a `<contact>...;transport=ws|wss</contact>` of drachtio). It is told to signed-in
         * pages by GET me and allowed in the UI's Content-Security-Policy; the agent types
         * its SIP password in the page. Without it the softphone is off.
         */
        softphone: Type.Optional(Type.Object({ wsUrl: Type.String({ pattern: '^wss?://[A-Za-z0-9.\\[\\]:-]{1,261}(/[A-Za-z0-9._~/-]{0,200})?$' }) }, { additionalProperties: false })),
        /**
         * Digest failures (wrong password, unknown user) one source address may cause in
         * `seconds` before its requests get 403 for the rest of the window (Kamailio pike's
         * anchor: about 16 in 2 s).
         */
        authFailureLimit: Type.Object({ count: Type.Integer({ minimum: 1, maximum: 100000, default: 16 }), seconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 2 }) }, { additionalProperties: false, default: {} }),
        /**
         * SIP trunks (carriers, PBXs) by name: INVITEs from these source addresses (IPs or
         * CIDR blocks) are not digest-challenged and belong to `callcenter`. They may dial
         * queues and agent extensions, never feature codes (those need an agent's identity).
         */
        trunks: Type.Record(
          Id,
          Type.Object(
            {
              addresses: Type.Array(Type.String({ minLength: 2, maxLength: 64 }), { minItems: 1, maxItems: 256 }),
              callcenter: Id,
              /**
               * Where calls to outside numbers of this call center go: one address or several
               * (tried in order, DESIGN.md issue "trunk routing"), each
               * `host[:port][;transport=udp|tcp|tls]`, the number becoming the user part of
               * the request URI.
               */
              outbound: Type.Optional(Type.Union([TrunkTarget, Type.Array(TrunkTarget, { minItems: 1, maxItems: 16 })])),
              /** Where an inbound call's number is read: the Request-URI's user part or the To's. */
              inboundNumberFrom: Type.Union([Type.Literal('ruri'), Type.Literal('to')], { default: 'ruri' }),
              /**
               * How this trunk's numbers become E.164 (`+<country><number>`): `00…` is
               * international, `<nationalPrefix>…` national (needs `countryCode`); a number
               * already with `+` is kept. Without these, numbers are matched as received.
               */
              numberFormat: Type.Optional(
                Type.Object(
                  {
                    countryCode: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$' })),
                    nationalPrefix: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
                    internationalPrefix: Type.String({ pattern: '^[0-9]{1,4}$', default: '00' }),
                  },
                  { additionalProperties: false },
                ),
              ),
              /** Send P-Asserted-Identity with the calling number on calls out (RFC 3325 trunks). */
              pai: Type.Boolean({ default: false }),
              /** OPTIONS ping interval per outbound address (0: no pings, always up). */
              pingSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 30 }),
              /** Pings in a row without an answer after which an address is skipped until it answers again. */
              downAfter: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
              /** Registration of the platform to the carrier (kept by one instance at a time). */
              register: Type.Optional(
                Type.Object(
                  {
                    user: Type.String({ pattern: '^[A-Za-z0-9_.!~*\'()&=+$,;?/-]{1,64}$' }),
                    password: Type.String({ minLength: 1, maxLength: 128 }),
                    /** The carrier's registrar: `host[:port][;transport=…]`. */
                    registrar: TrunkTarget,
                    /** The domain of the AOR (`sip:<user>@<domain>`); default the registrar's host. */
                    domain: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9.-]{1,253}$' })),
                    expires: Type.Integer({ minimum: 30, maximum: 86400, default: 3600 }),
                  },
                  { additionalProperties: false },
                ),
              ),
              callerIds: Type.Array(Type.String({ pattern: '^\\+?[0-9]{1,20}$' }), { default: [], maxItems: 100 }),
            },
            { additionalProperties: false },
          ),
          { default: {}, additionalProperties: false },
        ),
        /** On SIGTERM: how long calls in progress may go on before the instance stops anyway. */
        drainSeconds: Type.Number({ minimum: 0, maximum: 3600, default: 20 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * REST and WebSocket bearer tokens (DESIGN.md section 12). A plain string is an `admin`
     * token; an object gives the role and its scope.
     */
    apiTokens: Type.Array(Type.Union([TokenString, ApiTokenSchema]), { default: [], maxItems: 1000 }),
    callcenters: Type.Record(Id, CallCenterSchema, { minProperties: 1, additionalProperties: false }),
  },
  { additionalProperties: false },
);

/** The configuration file as validated, defaults applied. */
export type FileConfig = Static<typeof FileConfigSchema>;
export type QueueConfig = Static<typeof QueueSchema>;
export type Strategy = (typeof STRATEGIES)[number];

/** An agent's membership of one queue after normalisation. */
export interface MembershipConfig {
  skills: Record<string, number>;
}

/** An agent after normalisation: queues always a map. */
export interface AgentConfig {
  id: string;
  name?: string | undefined;
  extension: string;
  password: string;
  queues: Record<string, MembershipConfig>;
}

/** A supervisor after normalisation. */
export interface SupervisorConfig {
  id: string;
  name?: string | undefined;
  extension: string;
  password: string;
  queues: string[];
}

/** Where a number or a closed schedule sends a call. */
export type CallTarget = Static<typeof CallTargetSchema>;
/** A business-hours schedule. */
export type ScheduleConfig = Static<typeof ScheduleSchema>;
/** An outbound route. */
export type RouteConfig = Static<typeof RouteSchema>;

/** A call center after normalisation. */
export interface CallCenterConfig {
  id: string;
  name?: string | undefined;
  queues: Record<string, QueueConfig & { id: string }>;
  agents: Record<string, AgentConfig>;
  supervisors: Record<string, SupervisorConfig>;
  /** Site-defined Not Ready reasons (200-250) by code, with their labels. */
  busyReasons: Record<string, string>;
  numbers: Record<string, CallTarget & { hours?: string | undefined }>;
  schedules: Record<string, ScheduleConfig>;
  outbound: { routes: RouteConfig[]; failoverSeconds: number };
}

/** A trunk as configured (`sip.trunks.<name>`), defaults applied. */
export type TrunkFileConfig = FileConfig['sip']['trunks'][string];

/** A bearer token after normalisation: its role and what it may act on. */
export interface ApiTokenConfig {
  token: string;
  /** What logs call it (never the token itself). */
  name: string;
  role: Role;
  /** supervisor / agent: its call center. */
  callcenter?: string;
  /** supervisor: the queues it may act on. */
  queues?: string[];
  /** supervisor: the configured supervisor it acts as, if any. */
  supervisor?: string;
  /** agent: the agent it acts as. */
  agent?: string;
}

/** The configuration the application runs with (file + env overrides, normalised). */
export interface Config extends Omit<FileConfig, 'callcenters' | 'apiTokens'> {
  instanceId: string;
  callcenters: Record<string, CallCenterConfig>;
  apiTokens: ApiTokenConfig[];
}
