/**
 * The INVITE pipeline (DESIGN.md section 4): drain check → authenticate → classify the dial
 * string → handler. Every path ends in a final response or an answered-and-released call:
 * a FAC never hangs and never fails silently.
 */
import { DialPlan, type Destination } from '../../fac/dialString';
import { FAC_HANDLERS } from '../../fac/handlers';
import { failureOf, outcomeOf, reasonHeader, reasonPhrase, statusOf, type FacResult } from '../../fac/outcome';
import { promptFor } from '../../fac/prompts';
import type { AgentState } from '../../lib/agent/stateMachine';
import { EnqueueXmlError, parseEnqueueXml, type EnqueueSpec } from '../../lib/acd/enqueueXml';
import type { TaskConditions } from '../../lib/acd/strategies';
import type { AgentEngine } from '../../lib/agent/engine';
import type { CallCenterConfig, Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { nullSdpAnswer } from '../../media/nullSdp';
import type { MediaServer } from '../../media/port';
import type { AgentCallRequest } from './agentCall';
import { monitorModeOf } from '../../lib/conversation/model';
import type { MonitorByPhoneRequest, MonitorRefusal } from '../calls/monitor';
import { InboundRouter, type InboundDecision } from '../../lib/routing/inbound';
import { normaliseNumber } from '../../lib/routing/numbers';

/** A number target's call: the trunk caller is answered and the number called for it. */
export interface ForwardRequest {
  cc: string;
  number: string;
  /** The caller's number, presented to the number called. */
  caller: string;
  isCanceled: () => boolean;
  log: Logger;
}

/** A call sent elsewhere by business hours, as the `queue.caller` event tells it. */
export interface OutOfHoursEvent {
  queue?: string | undefined;
  caller: string;
  number?: string | undefined;
  schedule: string;
  local: string;
  holiday?: string | undefined;
  /** What the call got instead: `queue:8001`, `agent:1003`, `announcement`, `number:+4930…`. */
  action: string;
}

/** User part of the URI in a To/From header value. */
function userOfHeader(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /(?:^|[<\s])(?:sips?|tel):([^@;>\s]+)/i.exec(header)?.[1];
}
import type { QueueCallRequest } from './queueCall';
import type { SipAuthenticator } from './auth';
import type { TrunkTable } from '../../lib/sip/trunks';
import type { SipDialog, SipRequest, SipResponse, SrfLike } from './types';

/** Dependencies of the INVITE handler. */
export interface InviteDeps {
  config: Config;
  auth: SipAuthenticator;
  /** Trunks recognised by source address (not digest-challenged). */
  trunks: TrunkTable;
  engine: AgentEngine;
  media: MediaServer;
  srf: Pick<SrfLike, 'createUAS'>;
  logger: Logger;
  draining: () => boolean;
  /** Handles an agent dialing another agent's extension. */
  agentCall: (req: SipRequest, res: SipResponse, call: AgentCallRequest) => Promise<InviteOutcome>;
  /** Handles a call to a queue number (ACD). */
  queueCall: (req: SipRequest, res: SipResponse, call: QueueCallRequest) => Promise<InviteOutcome>;
  /** Calls an outside number for a trunk caller (a number target of the inbound routing). */
  forward?: (req: SipRequest, res: SipResponse, f: ForwardRequest) => Promise<InviteOutcome>;
  /** Writes a business-hours decision as a `queue.caller` event (reason `out_of_hours`). */
  outOfHours?: (cc: string, e: OutOfHoursEvent) => Promise<void>;
  /** The clock business hours are judged by (tests pass their own). */
  now?: () => number;
  /** Handles a supervisor's `*63<extension>[*<mode>]` (app/calls/monitor.ts). */
  monitor?: (req: SipRequest, res: SipResponse, m: MonitorByPhoneRequest) => Promise<MonitorRefusal | 'answered' | 'canceled'>;
  /** Called with every FAC outcome, for metrics. */
  onFac?: (action: string, status: number) => void;
  /** Called once per INVITE when the handler is done with it (metrics, tests). */
  onSettled?: (callId: string, outcome: InviteOutcome) => void;
}

/**
 * How an INVITE ended: challenged for credentials (401/407), refused with a final response, answered (and released), or
 * cancelled by the caller before (`canceled`) or after (`applied_then_canceled`) the
 * feature code's transition was applied (which is atomic: never half).
 */
/** `dropped`: left unanswered on purpose (app/sip/drachtioQuirks.ts). */
export type InviteOutcome = 'challenged' | 'refused' | 'answered' | 'canceled' | 'applied_then_canceled' | 'failed' | 'dropped';

/** How long to wait for the ACK of our 200 OK before sending BYE anyway (64*T1, RFC 3261). */
const ACK_WAIT_MS = 32000;

function waitAck(dialog: SipDialog): Promise<'ack' | 'destroy' | 'timeout'> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), ACK_WAIT_MS);
    dialog.on('ack', () => {
      clearTimeout(t);
      resolve('ack');
    });
    dialog.on('destroy', () => {
      clearTimeout(t);
      resolve('destroy');
    });
  });
}

/** Builds the handler. */
export function inviteHandler(deps: InviteDeps) {
  const plans = new Map<string, DialPlan>();
  const planOf = (cc: string): DialPlan => {
    let p = plans.get(cc);
    if (p === undefined) {
      p = new DialPlan(deps.config.callcenters[cc]!, deps.config.fac);
      plans.set(cc, p);
    }
    return p;
  };

  const routers = new Map<string, InboundRouter>();
  const routerOf = (cc: string): InboundRouter => {
    let r = routers.get(cc);
    if (r === undefined) routers.set(cc, (r = new InboundRouter(deps.config.callcenters[cc]!)));
    return r;
  };
  const now = deps.now ?? Date.now;

  /**
   * Answers (the outcome's prompt through the media server, or a null SDP), then releases the
   * call with a BYE whose Reason header carries the outcome (issue 14).
   */
  const answerAndRelease = async (req: SipRequest, res: SipResponse, result: FacResult, sound: string, log: Logger): Promise<void> => {
    const bye = { headers: { Reason: reasonHeader(result) } };
    if (deps.media.available) {
      const ep = await deps.media.createEndpoint({ remoteSdp: req.body });
      try {
        const dialog = await deps.srf.createUAS(req, res, { localSdp: ep.localSdp });
        let hungUp = false;
        dialog.on('destroy', () => {
          hungUp = true;
        });
        // RFC 3261 15: no BYE before the ACK, however short the prompt (a phone may drop a
        // BYE that overtakes its own 200 OK processing, and then never hangs up).
        const [, got] = await Promise.all([ep.play({ kind: 'sound', sound }), waitAck(dialog)]);
        if (!hungUp && got !== 'destroy') await dialog.destroy(bye);
      } finally {
        await ep.destroy();
      }
      return;
    }
    const dialog = await deps.srf.createUAS(req, res, { localSdp: nullSdpAnswer(req.body) });
    // RFC 3261 15: the callee may not send BYE before it has the ACK.
    const got = await waitAck(dialog);
    if (got !== 'destroy') await dialog.destroy(bye);
    log.debug({ got }, 'FAC call released');
  };

  const runFac = async (req: SipRequest, res: SipResponse, cc: string, agent: string, dest: Extract<Destination, { kind: 'fac' }>, isCanceled: () => boolean, log: Logger): Promise<InviteOutcome> => {
    if (isCanceled()) return 'canceled';
    const prompts = deps.config.fac.prompts;
    let result: FacResult;
    let states: AgentState[] = [];
    try {
      if (dest.action === 'status') {
        // Read back, no state change and no operation-log entry.
        const views = await deps.engine.states(cc, agent);
        states = views.map((v) => v.state);
        result = statusOf(views);
      } else {
        result = outcomeOf(dest.action, await FAC_HANDLERS[dest.action]({ engine: deps.engine, cc, agent, queue: dest.queue, reason: dest.reason }));
      }
      log.info({ fac: dest.action, queue: dest.queue, reason: dest.reason, outcome: result.outcome, text: result.text }, 'feature code applied');
    } catch (err) {
      result = failureOf(err);
      if (result.status >= 500) log.error({ err, fac: dest.action }, 'feature code failed');
      else log.info({ fac: dest.action, status: result.status, outcome: result.outcome, text: result.text, error: err instanceof Error ? err.message : String(err) }, 'feature code refused');
      deps.onFac?.(dest.action, result.status);
      if (isCanceled()) return 'canceled';
      if (deps.media.available && result.status < 500) {
        await answerAndRelease(req, res, result, promptFor(result, prompts), log);
        return 'answered';
      }
      res.send(result.status, reasonPhrase(result));
      return 'refused';
    }
    deps.onFac?.(dest.action, 200);
    // The transition is one atomic script: a CANCEL that arrived meanwhile finds it either
    // fully applied or not at all. drachtio has already answered the CANCEL with 487.
    if (isCanceled()) {
      log.info({ fac: dest.action }, 'feature code applied; the caller cancelled before the answer');
      return 'applied_then_canceled';
    }
    await answerAndRelease(req, res, result, promptFor(result, prompts, states), log);
    return 'answered';
  };

  return async (req: SipRequest, res: SipResponse): Promise<void> => {
    let canceled = false;
    req.on('cancel', () => {
      canceled = true;
    });
    const isCanceled = (): boolean => canceled;
    const base = deps.logger.child({ callId: req.callId, source: `${req.source_address}:${req.source_port}` });
    let outcome: InviteOutcome = 'refused';
    try {
      if (deps.draining()) {
        res.send(503, 'Service Unavailable', { headers: { 'Retry-After': '10' } });
        return;
      }
      // Trunks by source address; everyone else proves to be an agent (digest).
      const trunk = deps.trunks.match(req.source_address);
      let cc: string;
      let agent: string | undefined;
      let role: 'agent' | 'supervisor' | 'trunk' = 'trunk';
      if (trunk !== undefined) {
        cc = trunk.cc;
      } else {
        const auth = await deps.auth.authenticate(req, 'invite');
        if (isCanceled()) {
          outcome = 'canceled';
          return;
        }
        if (!auth.ok) {
          res.send(auth.status, auth.reason, auth.headers ? { headers: auth.headers } : undefined);
          if (auth.status === 401 || auth.status === 407) outcome = 'challenged';
          return;
        }
        cc = auth.cc;
        agent = auth.agent;
        role = auth.role;
      }
      const log = trunk !== undefined ? base.child({ trunk: trunk.trunk }) : base.child({ agent });
      /** Who the called party sees: the agent's extension, or the trunk's calling number as received (when it is a plausible one). */
      const callerIdOf = (): string =>
        agent !== undefined ? deps.engine.agent(cc, agent).extension : (/^[A-Za-z0-9+*#._-]{1,64}$/.exec(req.callingNumber ?? '')?.[0] ?? 'anonymous');
      // A trunk may carry the called number in the To rather than the Request-URI.
      const trunkConfig = trunk === undefined ? undefined : deps.config.sip.trunks[trunk.trunk];
      const dialed = trunkConfig?.inboundNumberFrom === 'to' ? (userOfHeader(req.get('To')) ?? '') : req.calledNumber;
      let dest: Destination;
      try {
        dest = planOf(cc).classify(dialed);
      } catch (err) {
        // A malformed feature code: told like any FAC outcome (prompt with media, else 484 with its text).
        const f = failureOf(err);
        log.info({ dial: req.calledNumber, status: f.status, outcome: f.outcome }, 'dial string refused');
        if (agent !== undefined && deps.media.available && f.status < 500) {
          await answerAndRelease(req, res, f, promptFor(f, deps.config.fac.prompts), log);
          outcome = 'answered';
          return;
        }
        res.send(f.status, reasonPhrase(f));
        return;
      }
      // Supervisors' phones dial monitoring codes; monitoring codes need a supervisor (DESIGN.md 12).
      if ((role === 'supervisor') !== (dest.kind === 'monitor')) {
        const why = role === 'supervisor' ? 'Supervisors Dial Monitoring Codes Only' : 'Monitoring Needs A Supervisor';
        log.info({ dial: req.calledNumber, role }, why.toLowerCase());
        res.send(403, why);
        return;
      }
      switch (dest.kind) {
        case 'monitor': {
          const mode = monitorModeOf(dest.mode ?? 1)!;
          const mlog = log.child({ supervisor: agent, monitor: mode });
          if (deps.monitor === undefined || !deps.media.available) {
            res.send(503, 'Media Server Unavailable');
            return;
          }
          const r = await deps.monitor(req, res, { cc, supervisor: agent!, extension: dest.extension, mode, isCanceled, log: mlog });
          if (typeof r === 'string') {
            outcome = r;
            return;
          }
          mlog.info({ dial: req.calledNumber, status: r.status, why: r.text }, 'monitoring refused');
          if (isCanceled()) {
            outcome = 'canceled';
            return;
          }
          // Told like a refused feature code: the prompt, then BYE with the reason.
          const told: FacResult = { outcome: 'not_on_call', queues: 0, text: r.text, status: r.status };
          await answerAndRelease(req, res, told, promptFor(told, deps.config.fac.prompts), mlog);
          outcome = 'answered';
          return;
        }
        case 'fac':
          if (agent === undefined) {
            // A feature code changes the state of the agent who dials it; a trunk is nobody.
            log.info({ dial: req.calledNumber }, 'feature code from a trunk refused');
            res.send(403, 'Feature Codes Need An Agent');
            return;
          }
          outcome = await runFac(req, res, cc, agent, dest, isCanceled, log);
          return;
        case 'agent':
          outcome = await deps.agentCall(req, res, { cc, caller: agent, callerId: callerIdOf(), callee: dest.agent, isCanceled, log });
          return;
        case 'unknown': {
          // A trunk's number goes through the number map (exact, then longest prefix).
          const number = trunkConfig === undefined ? undefined : normaliseNumber(dialed, trunkConfig.numberFormat);
          const decision = number === undefined ? undefined : routerOf(cc).byNumber(number, now());
          if (decision === undefined) {
            log.info({ dial: dialed, number }, 'unknown number');
            res.send(404, 'Not Found');
            return;
          }
          outcome = await routed(decision, number);
          return;
        }
        case 'queue':
          outcome = await routed(routerOf(cc).withHours({ kind: 'queue', queue: dest.queue }, now()), undefined);
          return;
      }

      /** Acts on an inbound decision: the target, after telling a business-hours one. */
      async function routed(d: InboundDecision, number: string | undefined): Promise<InviteOutcome> {
        const t = d.target;
        const action = t.kind === 'queue' ? `queue:${t.queue}` : t.kind === 'agent' ? `agent:${t.agent}` : t.kind === 'number' ? `number:${t.number}` : 'announcement';
        if (d.entry !== undefined || d.closed !== undefined) log.info({ dial: dialed, number, entry: d.entry, action, closed: d.closed }, d.closed === undefined ? 'inbound number routed' : 'closed: business hours send the call elsewhere');
        if (d.closed !== undefined) await deps.outOfHours?.(cc, { ...d.closed, caller: callerIdOf(), number, action });
        switch (t.kind) {
          case 'queue': {
            const enqueue = enqueueOf(req, trunk !== undefined, t.queue, deps.engine.callCenter(cc));
            if ('refuse' in enqueue) {
              log.info({ dial: dialed, why: enqueue.why }, 'X-CCS-Enqueue refused');
              res.send(enqueue.refuse, enqueue.reason, { headers: { Warning: `399 ccswitch "${enqueue.why.replace(/["\\\r\n]/g, ' ')}"` } });
              return 'refused';
            }
            // The number map's priority, unless the IVR's document set one.
            const priority = enqueue.priority ?? t.priority;
            return deps.queueCall(req, res, { cc, queue: t.queue, caller: callerIdOf(), fromTrunk: trunk !== undefined, isCanceled, log, ...enqueue, ...(priority === undefined ? {} : { priority }) });
          }
          case 'agent':
            return deps.agentCall(req, res, { cc, caller: agent, callerId: callerIdOf(), callee: t.agent, isCanceled, log });
          case 'announcement': {
            if (!deps.media.available) {
              res.send(480, 'Temporarily Unavailable');
              return 'refused';
            }
            const text = d.closed === undefined ? 'announcement' : `closed (${d.closed.schedule})`;
            await answerAndRelease(req, res, { outcome: 'failed', queues: 0, text, status: 480 }, t.sound, log);
            return 'answered';
          }
          case 'number':
            if (deps.forward === undefined || !deps.media.available) {
              res.send(503, 'Service Unavailable');
              return 'refused';
            }
            return deps.forward(req, res, { cc, number: t.number, caller: callerIdOf(), isCanceled, log });
        }
      }
    } catch (err) {
      outcome = 'failed';
      base.error({ err }, 'INVITE failed');
      if (!canceled && res.finalResponseSent !== true) res.send(500, 'Server Internal Error');
    } finally {
      deps.onSettled?.(req.callId, outcome);
    }
  };
}

/** SIP header carrying a seed-002 `enqueue` document (percent-encoded) on a trunk's queue call. */
export const ENQUEUE_HEADER = 'X-CCS-Enqueue';

/**
 * The task options an IVR in front of ccswitch asked for with {@link ENQUEUE_HEADER}: priority,
 * max wait and target-agent conditions (DESIGN.md section 8). Only trunks may send it (an
 * agent's phone choosing its own targets makes no sense); the document must name the dialed
 * queue and only agents of this call center.
 */
export function enqueueOf(
  req: SipRequest,
  fromTrunk: boolean,
  queue: string,
  cc: CallCenterConfig,
): { priority?: number; maxWaitSeconds?: number; conditions?: TaskConditions } | { refuse: number; reason: string; why: string } {
  const raw = req.get(ENQUEUE_HEADER);
  if (raw === undefined || raw === '') return {};
  if (!fromTrunk) return { refuse: 403, reason: 'Enqueue Needs A Trunk', why: `${ENQUEUE_HEADER} is accepted from trunks only` };
  let spec: EnqueueSpec;
  try {
    spec = parseEnqueueXml(decodeURIComponent(raw));
  } catch (err) {
    const why = err instanceof EnqueueXmlError || err instanceof URIError ? err.message : String(err);
    return { refuse: 400, reason: 'Bad Enqueue', why };
  }
  if (spec.queue !== queue) return { refuse: 400, reason: 'Bad Enqueue', why: `the document names queue ${spec.queue}, the call is to ${queue}` };
  const unknown = (spec.conditions.agents ?? []).find((a) => !Object.hasOwn(cc.agents, a));
  if (unknown !== undefined) return { refuse: 400, reason: 'Bad Enqueue', why: `unknown agent ${unknown}` };
  return {
    priority: spec.priority,
    ...(spec.timeoutSeconds === undefined ? {} : { maxWaitSeconds: spec.timeoutSeconds }),
    ...(spec.conditions.agents === undefined && spec.conditions.skills === undefined ? {} : { conditions: spec.conditions }),
  };
}
