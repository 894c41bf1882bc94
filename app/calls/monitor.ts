/**
 * Supervisor monitoring (DESIGN.md section 12, seed 004 ops 10 / 20 / 43): the supervisor's
 * leg joins the monitored agent's active conversation as kind `supervisor` in one of four
 * modes — listen (hears both, heard by nobody), whisper (heard by the agents only), barge
 * (heard by everyone), intercept (takes the call: the agent's leg leaves and goes through its
 * call end). DTMF 1-4 from the supervisor's phone (SIP INFO or RFC 4733 in the media)
 * switches between them. The leg is released when the monitored agent's leg leaves, unless
 * the supervisor intercepted (then it is a party, and the ending rule decides).
 *
 * Two ways in, one script: `*63<extension>[*<mode>]` dialed from the supervisor's phone
 * ({@link monitorByPhone}, run by the instance that got the INVITE, which must own the
 * conversation), and REST `POST supervisor/{sup}/monitor` (command `monitor`, run by the
 * conversation's owner, which rings the supervisor's registered phones).
 */
import type { CallCenterConfig, Config } from '../../lib/config/schema';
import { LegKind, LegState, MONITOR_MODES, monitorModeOf, type ConversationRecord, type LegRecord, type MonitorMode } from '../../lib/conversation/model';
import type { ConversationStore } from '../../lib/conversation/store';
import { InvalidRequestError, NotMonitoringError, NotOnCallError, SupervisorUnreachableError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import { OpType } from '../../lib/oplog';
import type { Registrar } from '../../lib/sip/registrar';
import type { Endpoint, MediaServer } from '../../media/port';
import type { Conversation, ConversationLeg } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import { cleanUpStep, Leg } from '../sip/leg';
import type { SipRequest, SipResponse, SrfLike } from '../sip/types';
import { startDial } from './dial';

/** The operation-log entry of each mode (seed 004): listen and whisper 20, barge 10, intercept 43. */
const OP_OF: Readonly<Record<MonitorMode, number>> = {
  listen: OpType.ListenInsertWhisper,
  whisper: OpType.ListenInsertWhisper,
  barge: OpType.ThreeParty,
  intercept: OpType.Intercept,
};

/** How long the supervisor's phones ring for a REST monitor. */
const RING_MS = 30_000;

/** What monitoring needs. */
export interface MonitorDeps {
  config: Config;
  srf: Pick<SrfLike, 'createUAC' | 'createUAS'>;
  media: MediaServer;
  hub: ConversationHub;
  store: ConversationStore;
  registrar: Registrar;
  logger: Logger;
}

/**
 * The conversation an agent is active in (its leg not on hold), else its newest live one;
 * undefined when it is in none (409 `not_on_call`).
 */
export async function activeConversationOf(store: ConversationStore, cc: string, agent: string): Promise<ConversationRecord | undefined> {
  const mine = (await store.ofAgent(cc, agent)).filter((c) => c.legs.some((l) => l.kind === LegKind.Agent && l.agent === agent && l.state === LegState.Up));
  return mine.find((c) => c.legs.some((l) => l.agent === agent && l.state === LegState.Up && l.mode !== 4)) ?? mine[mine.length - 1];
}

/** The supervisor's live leg in a conversation record, if it monitors there. */
export function supervisorLegOf(c: ConversationRecord, supervisor: string): LegRecord | undefined {
  return c.legs.find((l) => l.kind === LegKind.Supervisor && l.supervisor === supervisor && l.state !== LegState.Gone);
}

/** The live conversation a supervisor monitors in, if any (for monitor/stop on any instance). */
export async function monitoredBy(store: ConversationStore, cc: string, supervisor: string): Promise<ConversationRecord | undefined> {
  return (await store.list(cc, { limit: 100_000 })).find((c) => supervisorLegOf(c, supervisor) !== undefined);
}

/** Whether supervisor `sup` oversees one of agent `agent`'s queues. */
export function oversees(cc: CallCenterConfig, sup: string, agent: string): boolean {
  const s = cc.supervisors[sup];
  const a = cc.agents[agent];
  return s !== undefined && a !== undefined && s.queues.some((q) => Object.hasOwn(a.queues, q));
}

/** The DTMF digit an INFO carries (`application/dtmf-relay` `Signal=3`, or `application/dtmf` `3`). */
export function dtmfOfInfo(contentType: string, body: string): string | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type === 'application/dtmf-relay') return /^\s*Signal\s*=\s*([0-9*#A-D])\s*$/im.exec(body)?.[1];
  if (type === 'application/dtmf') return /^\s*([0-9*#A-D])\s*$/.exec(body)?.[1];
  return undefined;
}

/** Registers the `monitor` and `monitor.stop` commands (REST). */
export function registerMonitor(d: MonitorDeps): void {
  const { hub, registrar } = d;

  hub.handle('monitor', async (cc, args) => {
    const { conversation, agent, supervisor, mode } = args;
    if (typeof conversation !== 'string' || typeof agent !== 'string' || typeof supervisor !== 'string' || typeof mode !== 'string') throw new InvalidRequestError('monitor: malformed command arguments');
    const monitor = monitorModeNamed(mode);
    const conv = hub.get(cc, conversation);
    if (conv.legOf(agent) === undefined) throw new NotOnCallError(agent);
    const log = d.logger.child({ conversation, agent, supervisor, op: 'monitor' });
    const already = conv.supervisorLeg(supervisor);
    if (already !== undefined) {
      await switchMode(d, conv, already, agent, monitor, log);
      return { conversation, agent, supervisor, mode: monitor, state: 'monitoring' };
    }
    const contacts = (await registrar.bindings(cc, supervisor)).map((b) => b.contact);
    if (contacts.length === 0) throw new SupervisorUnreachableError(supervisor);
    const shows = d.config.callcenters[cc]!.agents[agent]!.extension;
    const dial = startDial(d, { uris: contacts, from: `<sip:${shows}@${d.config.sip.realm ?? 'ccswitch'}>`, headers: { 'X-CCS-Conversation': conv.id }, ringMs: RING_MS, log });
    void conv.ended.then(() => dial.cancel());
    void (async () => {
      const r = await dial.result;
      if (!r.ok) return void log.info({ status: r.status }, 'the supervisor did not answer');
      await supervise(d, conv, { sip: r.leg, ep: r.ep, supervisor, agent, monitor, log });
    })().catch((err: unknown) => log.error({ err }, 'monitoring failed'));
    return { conversation, agent, supervisor, mode: monitor, state: 'ringing_supervisor' };
  });

  hub.handle('monitor.stop', async (cc, args) => {
    const { conversation, supervisor } = args;
    if (typeof conversation !== 'string' || typeof supervisor !== 'string') throw new InvalidRequestError('monitor.stop: malformed command arguments');
    const conv = hub.get(cc, conversation);
    const leg = conv.supervisorLeg(supervisor);
    if (leg === undefined) throw new NotMonitoringError(supervisor);
    await conv.remove(leg.id);
    return { conversation, supervisor, stopped: true };
  });
}

/** The supervisor's answered leg joins and is watched until it leaves; resolves then. */
async function supervise(
  d: Pick<MonitorDeps, 'hub' | 'config'>,
  conv: Conversation,
  o: { sip: Leg; ep: Endpoint; supervisor: string; agent: string; monitor: MonitorMode; log: Logger },
): Promise<void> {
  const { log } = o;
  let leg: ConversationLeg;
  try {
    leg = await conv.add({ kind: LegKind.Supervisor, supervisor: o.supervisor, monitor: o.monitor, ep: o.ep, sip: o.sip, mode: 1 });
  } catch (err) {
    // Not in the conversation (it ended, or the media refused): the call is ours to release.
    await cleanUpStep(log, 'BYE to the supervisor', () => o.sip.release());
    await cleanUpStep(log, 'endpoint release', () => o.ep.destroy());
    throw err;
  }
  log.info({ monitor: o.monitor }, 'supervisor joined');
  await logMonitor(d, conv, o.agent, o.supervisor, o.monitor, log);
  // Digits switch the mode, one change at a time, in the order pressed.
  let chain: Promise<void> = Promise.resolve();
  const onDigit = (digit: string): void => {
    const next = monitorModeOf(digit);
    if (next === undefined || leg.left) return;
    chain = chain.then(() => switchMode(d, conv, leg, o.agent, next, log)).catch((err: unknown) => log.warn({ err, digit }, 'monitoring mode change failed'));
  };
  const offDtmf = o.ep.onDtmf(onDigit);
  o.sip.dialog.on('info', (req: SipRequest, res: SipResponse) => {
    const digit = dtmfOfInfo(req.get('Content-Type') ?? '', req.body ?? '');
    res.send(digit === undefined ? 415 : 200);
    if (digit !== undefined) onDigit(digit);
  });
  if (o.monitor === 'intercept') await intercept(conv, o.agent, log);
  else {
    // The monitored agent's call is over here: the supervisor has nothing left to monitor.
    const agentLeg = conv.legOf(o.agent);
    void (agentLeg === undefined ? Promise.resolve() : agentLeg.hasLeft).then(async () => {
      if (!leg.left && leg.monitor !== 'intercept') await cleanUpStep(log, 'supervisor release', () => conv.remove(leg.id));
    });
  }
  await leg.hasLeft;
  offDtmf();
  log.info('supervisor left');
}

/** Changes the mode of a supervisor's leg; intercept also removes the agent's leg. */
async function switchMode(d: Pick<MonitorDeps, 'hub' | 'config'>, conv: Conversation, leg: ConversationLeg, agent: string, monitor: MonitorMode, log: Logger): Promise<void> {
  if (leg.monitor === monitor) return;
  if (leg.monitor === 'intercept') throw new InvalidRequestError('the supervisor took the call over; it is not monitoring any more');
  await conv.setMonitor(leg.id, monitor);
  await logMonitor(d, conv, agent, leg.supervisor ?? '', monitor, log);
  if (monitor === 'intercept') await intercept(conv, agent, log);
}

/** Intercept: the agent's leg leaves (its call script ends its call: Wrap Up…); the supervisor stays with the caller. */
async function intercept(conv: Conversation, agent: string, log: Logger): Promise<void> {
  if (conv.legOf(agent) === undefined) return;
  await conv.removeAgent(agent);
  log.info({ agent }, 'call intercepted: the agent left');
}

/** The operation-log entry of a monitoring mode: the monitored agent's entry, the supervisor as its object. */
async function logMonitor(d: Pick<MonitorDeps, 'hub' | 'config'>, conv: Conversation, agent: string, supervisor: string, monitor: MonitorMode, log: Logger): Promise<void> {
  const ext = d.config.callcenters[conv.cc]?.supervisors[supervisor]?.extension;
  await cleanUpStep(log, 'operation log', () => d.hub.logOp(conv.cc, conv.id, agent, OP_OF[monitor], conv.queue, { object: ext === undefined ? -1 : Number(ext), reason: monitor === 'listen' || monitor === 'whisper' ? 0 : -1, by: supervisor }));
}

/** What `*63<extension>[*<mode>]` asks for. */
export interface MonitorByPhoneRequest {
  cc: string;
  supervisor: string;
  /** The agent's extension as dialed. */
  extension: string;
  mode: MonitorMode;
  isCanceled: () => boolean;
  log: Logger;
}

/** How a monitoring call was refused: the SIP status and the text of the prompt's Reason. */
export interface MonitorRefusal {
  status: number;
  text: string;
}

/**
 * `*63<extension>[*<mode>]` from a supervisor's phone: the INVITE is answered into the agent's
 * active conversation. Resolves when the supervisor's leg has left; or with a refusal, which
 * the INVITE handler tells as an announcement then a release (or a final response).
 */
export async function monitorByPhone(d: MonitorDeps, req: SipRequest, res: SipResponse, m: MonitorByPhoneRequest): Promise<MonitorRefusal | 'answered' | 'canceled'> {
  const cc = d.config.callcenters[m.cc]!;
  const agent = Object.values(cc.agents).find((a) => a.extension === m.extension)?.id;
  if (agent === undefined) return { status: 404, text: `no agent with extension ${m.extension}` };
  if (!oversees(cc, m.supervisor, agent)) return { status: 403, text: `agent ${m.extension} is not in your queues` };
  const rec = await activeConversationOf(d.store, m.cc, agent);
  if (rec === undefined) return { status: 409, text: `agent ${m.extension} is not on a call` };
  if (rec.owner !== d.hub.owner) {
    // The conversation's dialogs and conference are another instance's (DESIGN.md 5.1); its
    // supervisor leg would be too. The REST monitor reaches that instance.
    return { status: 409, text: `agent ${m.extension} is on a call held by another instance; monitor by REST` };
  }
  const conv = d.hub.get(m.cc, rec.id);
  if (m.isCanceled()) return 'canceled';
  const ep = await d.media.createEndpoint({ remoteSdp: req.body });
  let sip: Leg;
  try {
    sip = new Leg(await d.srf.createUAS(req, res, { localSdp: ep.localSdp }));
  } catch (err) {
    await cleanUpStep(m.log, 'endpoint release', () => ep.destroy());
    if (m.isCanceled()) return 'canceled';
    throw err;
  }
  await supervise(d, conv, { sip, ep, supervisor: m.supervisor, agent, monitor: m.mode, log: m.log.child({ conversation: conv.id, agent }) });
  return 'answered';
}

/** The monitoring mode a REST body names, checked. */
export function monitorModeNamed(mode: string): MonitorMode {
  if (!(MONITOR_MODES as readonly string[]).includes(mode)) throw new InvalidRequestError(`mode must be listen, whisper, barge or intercept, not ${JSON.stringify(mode)}`);
  return mode as MonitorMode;
}
