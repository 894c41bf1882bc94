/**
 * Queue calls (DESIGN.md sections 3, 5 and 6): the caller is answered onto a conference (the
 * conversation) where, alone, it hears the queue's music on hold; a task is queued in Redis;
 * the instance that holds the call offers it to agents by the queue's strategy, each offer
 * under a leased reservation with a fencing token; the first agent to answer joins the
 * conversation (Queue Call in this queue, Other Call in its others, operation 4); when the
 * call ends the agent goes to Wrap Up (a Redis deadline) or straight back.
 *
 * Races handled here: the caller hangs up while agents ring (their legs are cancelled, they
 * stay Ready); an agent's 200 after our CANCEL (ACK then BYE, in fork.ts); two agents
 * answering a ring-all offer at once (the fencing claim picks one, the other gets BYE); a
 * lease that lapsed before the answer (the claim is refused, the agent's leg gets BYE).
 */
import { randomUUID } from 'node:crypto';
import type { Selector } from '../../lib/acd/selector';
import type { TaskConditions } from '../../lib/acd/strategies';
import type { Reservation, TaskStore } from '../../lib/acd/taskStore';
import type { AgentEngine } from '../../lib/agent/engine';
import type { CallGuard } from '../../lib/calls/guard';
import type { Config } from '../../lib/config/schema';
import type { Logger } from '../../lib/logger';
import { InvalidRequestError, NotInConversationError, UnknownConversationError } from '../../lib/errors';
import { transferToQueue } from '../calls/transferToQueue';
import { BusyReason, OpType } from '../../lib/oplog';
import type { Registrar } from '../../lib/sip/registrar';
import { startOutsideDial, type TrunkUpCheck } from '../calls/routedDial';
import { LegKind } from '../../lib/conversation/model';
import type { Endpoint, MediaServer } from '../../media/port';
import type { Conversation } from '../conversation/conversation';
import type { ConversationHub } from '../conversation/hub';
import { endAgentCall, type AgentLine } from '../conversation/line';
import { startAnnouncer, type Announcer } from './announcer';
import { ForkFailed, forkInvite, type Fork, type ForkAnswer, type ForkOfferAnswer } from './fork';
import type { InviteOutcome } from './invite';
import { cleanUpStep, Leg } from './leg';
import type { SipDialog, SipRequest, SipResponse, SrfLike } from './types';
import { answerBrowserOffer, answerPhoneOffer, isWebRtcContact } from './webrtc';

/** Dependencies of {@link queueCallHandler}. */
export interface QueueCallDeps {
  config: Config;
  engine: AgentEngine;
  registrar: Registrar;
  store: TaskStore;
  selector: Selector;
  media: MediaServer;
  guard: CallGuard;
  hub: ConversationHub;
  srf: Pick<SrfLike, 'createUAS' | 'createUAC'>;
  logger: Logger;
  /** Which trunk addresses answer their OPTIONS pings (outbound failover skips the others). */
  trunkHealth?: TrunkUpCheck | undefined;
}

/** One call to a queue number. */
export interface QueueCallRequest {
  cc: string;
  queue: string;
  caller: string;
  isCanceled: () => boolean;
  log: Logger;
  /** True for a caller from a trunk (an IVR in front of ccswitch): a reject returns it there. */
  fromTrunk: boolean;
  /** From the caller's `enqueue` document (X-CCS-Enqueue): task priority, max wait, target agents. */
  priority?: number | undefined;
  maxWaitSeconds?: number | undefined;
  conditions?: TaskConditions | undefined;
}

/** How long an outside number (overflow) may ring before the caller hears the error prompt. */
const OUTSIDE_RING_MS = 60_000;

/** A caller id fit for a From user part: anything else becomes `anonymous`. */
function safeUser(id: string): string {
  return /^[A-Za-z0-9+*#._-]{1,64}$/.test(id) ? id : 'anonymous';
}

/** Extra lease time beyond the ring time, so a lease never lapses while we still ring. */
const LEASE_MARGIN_MS = 5000;

/**
 * What an agent said about an offer through REST while its phone rang (seed 002): reject it
 * (back to the IVR with data, or to the next agent), or forward it (re-queue with new conditions).
 */
export type OfferVerdict = { kind: 'reject'; agent: string; data?: string | undefined } | { kind: 'forward'; agent: string; conditions?: TaskConditions | undefined; priority?: number | undefined };

/** How one offer ended: an agent on the call, nobody, or a verdict of the agent rung. */
export type OfferResult = { kind: 'connected'; agent: string; leg: Leg; ep: Endpoint } | { kind: 'none'; verdict?: OfferVerdict };

/** A blind transfer (xfer_agent) of a connected queue call: the queue and conditions it is queued with. */
export interface TransferRequest {
  queue: string;
  conditions?: TaskConditions | undefined;
  priority?: number | undefined;
  maxWaitSeconds?: number | undefined;
  /** Answers the command once the caller is queued again and the agent has left. */
  done: (r: { conversation: string; task: string; queue: string }) => void;
  /** Answers the command with the failure that ended the call. */
  fail: (err: unknown) => void;
}

/** A verdict reached the offer: applied, too late (answered), or the agent is not being rung for it. */
export type VerdictOutcome = 'applied' | 'answered' | 'not_offered';

/** Header of the BYE that returns a rejected trunk caller to its IVR (percent-encoded `data`). */
export const REJECT_DATA_HEADER = 'X-CCS-Reject-Data';

/** Builds the handler. */
export function queueCallHandler(deps: QueueCallDeps) {
  const { engine, media, srf, guard, store, selector, config, hub } = deps;
  /** Host part of the From of the calls we place (to agents, to overflow numbers). */
  const domain = config.sip.realm ?? 'ccswitch';

  /**
   * Callers of this instance waiting for their turn, per queue. Only the first waiting task
   * may reserve; the others poll every `timers.pollMs`, and are woken early when a task ahead
   * of them on this instance is served or ends (other instances' callers still poll).
   */
  const waiting = new Map<string, Set<() => void>>();
  const wakersOf = (queue: string): Set<() => void> => {
    let set = waiting.get(queue);
    if (set === undefined) waiting.set(queue, (set = new Set()));
    return set;
  };
  const wake = (queue: string): void => {
    for (const w of [...(waiting.get(queue) ?? [])]) w();
  };

  /** The offers ringing on this instance, by task: where a REST reject or forward lands. */
  const offers = new Map<string, (v: OfferVerdict) => VerdictOutcome>();
  const verdict = (cc: string, v: OfferVerdict, task: unknown): { task: string; agent: string; outcome: VerdictOutcome } => {
    if (typeof task !== 'string') throw new InvalidRequestError('command argument task is missing');
    const control = offers.get(`${cc}|${task}`);
    return { task, agent: v.agent, outcome: control === undefined ? 'not_offered' : control(v) };
  };
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

  /** Queue calls connected to an agent on this instance, by conversation: where a blind transfer lands. */
  const transfers = new Map<string, (t: TransferRequest) => void>();
  hub.handle('xferAgent', (cc, args) => {
    const conversation = str(args.conversation);
    const agent = str(args.agent);
    const queue = str(args.queue);
    if (conversation === undefined || agent === undefined || queue === undefined) throw new InvalidRequestError('xferAgent: malformed command arguments');
    const conv = hub.get(cc, conversation);
    if (conv.legOf(agent) === undefined) throw new NotInConversationError(agent, conversation);
    const control = transfers.get(`${cc}|${conversation}`);
    if (control === undefined) {
      // Not a queue call of this handler (a trunk call to an extension, a call-out…): the task
      // is queued on the conversation and served by the shared task script.
      const target = { queue, conditions: args.conditions as TaskConditions | undefined, priority: typeof args.priority === 'number' ? args.priority : undefined, maxWaitSeconds: typeof args.maxWaitSeconds === 'number' ? args.maxWaitSeconds : undefined };
      return transferToQueue({ config, hub, engine, guard, tasks: store, selector, offer, logger: deps.logger }, conv, agent, target);
    }
    return new Promise((resolve, reject) => {
      control({
        queue,
        conditions: args.conditions as TaskConditions | undefined,
        priority: typeof args.priority === 'number' ? args.priority : undefined,
        maxWaitSeconds: typeof args.maxWaitSeconds === 'number' ? args.maxWaitSeconds : undefined,
        done: resolve,
        fail: reject,
      });
    });
  });
  hub.handle('offer.reject', (cc, args) => Promise.resolve(verdict(cc, { kind: 'reject', agent: String(args.agent), data: str(args.data) }, args.task)));
  hub.handle('offer.forward', (cc, args) =>
    Promise.resolve(
      verdict(cc, { kind: 'forward', agent: String(args.agent), conditions: args.conditions as TaskConditions | undefined, priority: typeof args.priority === 'number' ? args.priority : undefined }, args.task),
    ),
  );

  const handle = async (req: SipRequest, res: SipResponse, call: QueueCallRequest): Promise<InviteOutcome> => {
    const { cc, log } = call;
    let queue = call.queue;
    const ccConfig = engine.callCenter(cc);
    if (!media.available) {
      res.send(503, 'Media Server Unavailable', { headers: { 'Retry-After': '10' } });
      return 'refused';
    }
    let taskId = randomUUID();
    const tlog = log.child({ callId: req.callId });
    const endpoints: Endpoint[] = [];
    let conv: Conversation | undefined;
    let caller: Leg | undefined;
    let agentLeg: Leg | undefined;
    /** The outside party of an overflow to a number. */
    let farLeg: Leg | undefined;
    let agent: string | undefined;
    /** The answering agent's extension call (shared with the conversations it may go to). */
    let agentLine: AgentLine | undefined;
    /** The caller hung up while the agent's answer was being connected. */
    let abandonedAtAnswer = false;
    let enqueued = false;
    let guarded = false;
    let announcer: Announcer | undefined;
    /** Set once announcements must not start (or start again, until a transfer re-queues). */
    let announcerStopped = false;
    /** The caller's join to its conversation; settles before any step that needs it. */
    let callerJoined: Promise<void> = Promise.resolve();
    let joinFailed: { err: unknown } | undefined;
    /** Stops the announcements, waiting for the caller's join (which starts them) first. */
    const stopAnnouncer = async (): Promise<void> => {
      announcerStopped = true;
      await callerJoined;
      await announcer?.stop();
    };
    /** Queues `taskId` in `queue`, guarded first: if this process dies, another closes the task. */
    /** The conditions of a blind transfer (xfer_agent): they replace the caller's own. */
    let transferred: TransferRequest | undefined;
    /** When the caller first started waiting: a transferred caller's wait goes on from there. */
    let waitingSince: number | undefined;
    const enqueue = async (): Promise<void> => {
      await guard.track(cc, req.callId, [], { id: taskId, queue });
      guarded = true;
      // The enqueue document applies to the queue dialed; an overflow queue keeps the priority
      // but uses its own max wait and its own agents. A transfer's document replaces it.
      const first = queue === call.queue && transferred === undefined;
      const maxWaitSeconds = (first ? call.maxWaitSeconds : transferred?.maxWaitSeconds) ?? ccConfig.queues[queue]!.maxWaitSeconds;
      const r = await store.enqueue(cc, {
        id: taskId, queue, priority: (transferred?.priority ?? call.priority) ?? 0, callId: req.callId, caller: call.caller, owner: guard.incarnation,
        maxWaitMs: maxWaitSeconds * 1000, conditions: first ? call.conditions : transferred?.conditions,
        waitingSince: transferred === undefined ? undefined : waitingSince,
      });
      waitingSince ??= r.enqueuedAt;
      enqueued = true;
    };
    try {
      const epCaller = await media.createEndpoint({ remoteSdp: req.body });
      endpoints.push(epCaller);
      if (call.isCanceled()) return 'canceled';
      try {
        caller = new Leg(await srf.createUAS(req, res, { localSdp: epCaller.localSdp }));
      } catch (err) {
        if (call.isCanceled()) return 'canceled';
        throw err;
      }
      // The conversation (named after the first task) with the caller alone in it, hearing the
      // queue's music, and the task queued on it.
      conv = await hub.open({ cc, id: taskId, moh: ccConfig.queues[queue]!.moh, task: taskId, queue, taskQueued: true });
      // The caller's join runs while the task is queued and offered: under load FreeSWITCH
      // takes tens of milliseconds to set up a conference, and an agent's offer need not wait
      // for it (the conversation adds the agent's leg only after the caller's). Its failure
      // ends the call at the next step that waits for it.
      const convNow = conv;
      callerJoined = convNow.add({ kind: LegKind.Caller, ep: epCaller, sip: caller, mode: 1 }).then(() => {
        // Announcements play to the caller as a conference member, so only once it is one.
        if (!announcerStopped) announcer = startAnnouncer({ ep: epCaller, announcements: () => ccConfig.queues[queue]!.announcements, position: () => store.position(cc, taskId, queue), log: tlog });
      });
      callerJoined.catch((err: unknown) => (joinFailed = { err }));
      const keys = store.keys(cc);
      await enqueue();
      tlog.info({ caller: call.caller }, 'caller queued');

      for (;;) {
        // A caller left in silence is no queue call: its failed join ends the call.
        if (joinFailed !== undefined) throw joinFailed.err;
        if (caller.gone) {
          await store.end(cc, taskId, queue, 'abandoned');
          tlog.info('caller abandoned');
          return 'answered';
        }
        const task = await store.get(cc, taskId);
        if (task === undefined || task.state === 'ended') {
          tlog.warn('task closed by another instance');
          return 'answered';
        }
        if (task.maxWaitReached) {
          const overflow = ccConfig.queues[queue]!.overflow;
          await store.end(cc, taskId, queue, overflow !== undefined ? 'overflow' : 'timeout');
          wake(queue);
          if (overflow?.number !== undefined) {
            await stopAnnouncer();
            tlog.info({ to: overflow.number }, 'max wait reached: overflow to an outside number');
            const far = await callOut(cc, overflow.number, call.caller, caller, endpoints, tlog);
            if (far === undefined) {
              if (!caller.gone) await epCaller.play('error');
              return 'answered';
            }
            farLeg = far.leg;
            await conv.setTask(taskId, queue, false);
            await conv.add({ kind: LegKind.External, ep: far.ep, sip: farLeg, mode: 1 });
            await conv.ended;
            return 'answered';
          }
          if (overflow?.queue !== undefined) {
            // Same call, same conversation: a new task in the overflow queue.
            tlog.info({ to: overflow.queue }, 'max wait reached: overflow to another queue');
            queue = overflow.queue;
            taskId = randomUUID();
            await enqueue();
            await conv.setTask(taskId, queue, true);
            continue;
          }
          tlog.info('max wait reached: announcement, then hang up');
          await stopAnnouncer();
          await epCaller.play('error');
          return 'answered';
        }
        const plan = await selector.plan(ccConfig, keys, queue, task.conditions);
        if (plan.agents.length > 0) {
          const ringMs = ccConfig.queues[queue]!.ringSeconds * 1000;
          const got = await store.reserve(cc, task.id, queue, plan.agents, plan.mode === 'parallel' ? plan.agents.length : 1, ringMs + LEASE_MARGIN_MS);
          if (Array.isArray(got)) {
            wake(queue); // this task left the head of the queue: the next one may reserve now
            for (const r of got) selector.offered(ccConfig, keys, queue, r.agent);
            const result = await offer(cc, task.id, queue, req.callId, got, ringMs, caller, tlog.child({ task: task.id, queue }));
            if (result.kind === 'none' && result.verdict?.kind === 'forward') {
              // Re-queued with the new conditions: its age kept, its priority unless a new one.
              const v = result.verdict;
              await store.retarget(cc, task.id, queue, { conditions: v.conditions, priority: v.priority, agent: v.agent });
              tlog.info({ agent: v.agent, conditions: v.conditions }, 'offer forwarded: task re-queued');
              continue;
            }
            if (result.kind === 'none' && result.verdict?.kind === 'reject' && call.fromTrunk) {
              // Back to the IVR that sent the caller: the task ends `rejected` with the data, and
              // the caller's leg is released with a BYE that carries it.
              const v = result.verdict;
              await store.end(cc, task.id, queue, 'rejected', undefined, v.data);
              enqueued = false;
              await stopAnnouncer();
              const headers: Record<string, string> = { Reason: `SIP;cause=603;text="Rejected by agent ${v.agent}"` };
              if (v.data !== undefined) headers[REJECT_DATA_HEADER] = encodeURIComponent(v.data);
              await caller.release(headers);
              tlog.info({ agent: v.agent }, 'offer rejected: caller returned to the IVR');
              return 'answered';
            }
            if (result.kind === 'connected') {
              agent = result.agent;
              agentLeg = result.leg;
              endpoints.push(result.ep);
              await stopAnnouncer();
              let leg;
              let line;
              try {
                await conv.setTask(task.id, queue, false);
                // The agent's extension call becomes a line: call-out and consultation can take it
                // into other conversations while this one holds the agent on hold.
                line = hub.line(cc, agent, agentLeg);
                agentLine = line;
                leg = await conv.add({ kind: LegKind.Agent, agent, ep: result.ep, sip: line.sip, line, mode: 1 });
              } catch (err) {
                // The caller's BYE crossed the agent's answer: its hang-up ended the conversation.
                // Not a failure of ours; the agent's leg and state are released below.
                if (!(err instanceof UnknownConversationError) || !conv.isEnded) throw err;
                tlog.info({ agent }, 'the caller hung up as the agent answered');
                abandonedAtAnswer = true;
                return 'answered';
              }
              agentLeg = undefined; // the conversation's to release now (BYE only from the line's last conversation)
              line.callFor(conv.id, req.callId);
              tlog.info({ agent }, 'queue call connected');
              const key = `${cc}|${conv.id}`;
              const next = await new Promise<TransferRequest | 'left'>((resolve) => {
                transfers.set(key, resolve);
                void leg.hasLeft.then(() => resolve('left'));
              });
              transfers.delete(key);
              const served = agent;
              // The agent's handling of this task is over (its handle time counted): the caller
              // stays. By itself (a hang-up, a transfer out) or by a blind transfer.
              await store.end(cc, task.id, queue, 'completed', served);
              if (next === 'left') {
                await endAgentCall(engine, cc, served, req.callId, line, conv.id);
                agent = undefined;
                enqueued = false;
                if (!conv.isEnded) await conv.ended;
                return 'answered';
              }
              // Blind transfer (xfer_agent, op 45): queued first, so the caller hears music
              // and never a hang-up; then the agent leaves and goes through its call end.
              try {
                transferred = next;
                queue = next.queue;
                taskId = randomUUID();
                await enqueue();
                await conv.setTask(taskId, queue, true);
                await hub.logOp(cc, conv.id, served, OpType.InternalTransfer, task.queue);
                await conv.removeAgent(served);
                await endAgentCall(engine, cc, served, req.callId, line, conv.id);
                agent = undefined;
              } catch (err) {
                next.fail(err);
                throw err;
              }
              tlog.info({ from: served, queue }, 'transferred: the caller is queued again');
              next.done({ conversation: conv.id, task: taskId, queue });
              announcerStopped = false;
              announcer = startAnnouncer({ ep: epCaller, announcements: () => ccConfig.queues[queue]!.announcements, position: () => store.position(cc, taskId, queue), log: tlog });
              continue;
            }
            await store.requeue(cc, task.id, queue);
            continue;
          }
        }
        await waitOrHangup(config.timers.pollMs, caller, wakersOf(queue));
      }
    } finally {
      const quietly = (what: string, step: () => Promise<unknown>): Promise<void> => cleanUpStep(tlog, what, step);
      await quietly('announcements', stopAnnouncer);
      if (conv) await quietly('conversation end', () => conv!.end('call over'));
      // BYEs to legs outside the conversation go out at once; their answers are awaited only
      // after the bookkeeping below (a gone far end takes 32 s to time out).
      const byes: Promise<void>[] = [];
      if (caller) byes.push(quietly('BYE to the caller', () => caller!.release()));
      if (agentLeg) byes.push(quietly('BYE to the agent', () => agentLeg!.release()));
      if (farLeg) byes.push(quietly('BYE to the overflow number', () => farLeg!.release()));
      for (const ep of endpoints) await quietly('endpoint release', () => ep.destroy());
      const tid = taskId; // the task of the queue the call ended in (overflow replaces it)
      if (agent !== undefined) {
        await quietly('task end', () => (abandonedAtAnswer ? store.end(cc, tid, queue, 'abandoned') : store.end(cc, tid, queue, 'completed', agent)));
        await quietly(`state of ${agent}`, () => endAgentCall(engine, cc, agent!, req.callId, agentLine, conv?.id ?? ''));
      } else if (enqueued) {
        await quietly('task end', () => store.end(cc, tid, queue, 'abandoned'));
      }
      wake(queue);
      if (guarded) await quietly('call guard release', () => guard.untrack(cc, req.callId));
      await Promise.all(byes);
    }
  };

  return Object.assign(handle, { offer });

  /**
   * Calls an outside number for the caller (overflow to a number): through the call center's
   * outbound trunk, with the caller's number as From, for up to {@link OUTSIDE_RING_MS}. The
   * leg and its media endpoint (added to `endpoints` for release) when answered; undefined
   * when it failed or the caller hung up first.
   */
  async function callOut(cc: string, number: string, callerId: string, caller: Leg, endpoints: Endpoint[], log: Logger): Promise<{ leg: Leg; ep: Endpoint } | undefined> {
    const dial = startOutsideDial(deps, cc, { to: number, from: safeUser(callerId), ringMs: OUTSIDE_RING_MS }, log);
    void caller.hungUp.then(() => dial.cancel());
    const r = await dial.result;
    if (!r.ok) {
      log.info({ number, status: r.status }, 'overflow number did not answer');
      return undefined;
    }
    endpoints.push(r.ep);
    if (caller.gone) {
      await r.leg.release();
      return undefined;
    }
    return { leg: r.leg, ep: r.ep };
  }

  /**
   * Rings the reserved agents; the first to answer (and to win the fencing claim) gets the call.
   * `internal`: a call from an agent (call_agent): the callee goes Other Call with operation 41,
   * not Queue Call, and its phone shows `from`.
   */
  async function offer(
    cc: string, taskId: string, queue: string, callId: string, reservations: Reservation[], ringMs: number, caller: Leg, log: Logger,
    o: { internal?: { from: string } } = {},
  ): Promise<OfferResult> {
    const branches: { r: Reservation; ep?: Endpoint | undefined; fork?: Fork<ForkAnswer | ForkOfferAnswer>; status?: number; released?: boolean; verdict?: OfferVerdict }[] = reservations.map((r) => ({ r }));
    /** The first verdict of an agent rung (reject / forward through REST); its branch is cancelled. */
    let verdict: OfferVerdict | undefined;
    const key = `${cc}|${taskId}`;
    offers.set(key, (v) => {
      const b = branches.find((x) => x.r.agent === v.agent);
      if (b === undefined || b.released === true || b.status !== undefined) return 'not_offered';
      if (won.result.kind === 'connected') return won.result.agent === v.agent ? 'answered' : 'not_offered';
      if (b.verdict !== undefined) return 'applied';
      b.verdict = v;
      verdict ??= v;
      b.fork?.cancel();
      return 'applied';
    });
    /** A losing answer: free the agent first (lease), then hang up its leg. */
    const dropAnswer = async (b: (typeof branches)[number], leg: Leg): Promise<void> => {
      b.released = true;
      await store.release(cc, b.r);
      await leg.release();
    };
    const won: { result: OfferResult } = { result: { kind: 'none' } };
    const timer = setTimeout(() => branches.forEach((b) => b.fork?.cancel()), ringMs);
    void caller.hungUp.then(() => branches.forEach((b) => b.fork?.cancel()));
    /** The first branch failure (not a SIP refusal: an error of ours); thrown once every branch is cleaned up. */
    let failure: { err: unknown } | undefined;
    try {
      const settled = await Promise.allSettled(
        branches.map(async (b) => {
          const contacts = (await deps.registrar.bindings(cc, b.r.agent)).map((x) => x.contact);
          // Browsers (WebRTC) are sent no offer: they offer in their 200 OK. So are phones with
          // sip.lateOfferToAgents (the default); else they get FreeSWITCH's offer, made only if
          // some device needs it.
          const browsers = new Set(contacts.filter(isWebRtcContact));
          const late = config.sip.lateOfferToAgents;
          b.ep = !late && browsers.size < contacts.length ? await media.createEndpoint() : undefined;
          b.fork = forkInvite(srf, contacts, { localSdp: b.ep?.localSdp ?? '', offerless: (uri: string) => late || browsers.has(uri), headers: { From: `<sip:${o.internal?.from ?? queue}@${domain}>`, 'X-CCS-Task': taskId }, logger: log });
          if (caller.gone || b.verdict !== undefined) b.fork.cancel();
          let answered;
          try {
            answered = await b.fork.answered;
          } catch (err) {
            b.status = err instanceof ForkFailed ? err.status : 500;
            return;
          }
          let dialog: SipDialog;
          /** The far end's answer to FreeSWITCH's offer, still to be given to the leg (not for a browser: its leg answered it). */
          let farAnswer: string | undefined;
          if ('offer' in answered) {
            await b.ep?.destroy();
            b.ep = undefined;
            const browser = browsers.has(answered.uri);
            try {
              ({ dialog, ep: b.ep } = await (browser ? answerBrowserOffer(media, answered.offer) : answerPhoneOffer(media, answered.offer)));
            } catch (err) {
              log.warn({ agent: b.r.agent, uri: answered.uri, err }, `the ${browser ? 'browser' : 'phone'} answered but its media could not be set up`);
              b.status = 488;
              return;
            }
          } else {
            dialog = answered.dialog;
            farAnswer = dialog.remote.sdp;
          }
          const ep = b.ep;
          if (ep === undefined) throw new Error('no media leg for the answered offer');
          const leg = new Leg(dialog, { webrtc: browsers.has(answered.uri) });
          if (won.result.kind === 'connected' || caller.gone || b.verdict !== undefined) {
            await dropAnswer(b, leg);
            return;
          }
          // The fencing claim decides: only one answer can win the task, and only while the
          // agent's lease is still the one we were given.
          const claim = await store.claimAnswer(cc, taskId, queue, b.r);
          if (!claim.ok) {
            log.info({ agent: b.r.agent, why: claim.why }, 'answer refused; releasing the agent leg');
            await dropAnswer(b, leg);
            return;
          }
          won.result = { kind: 'connected', agent: b.r.agent, leg, ep };
          branches.forEach((o) => o !== b && o.fork?.cancel());
          try {
            // Guard before the state change: a crash after it cannot leave the agent on the call.
            await guard.track(cc, callId, [b.r.agent], { id: taskId, queue });
            if (farAnswer !== undefined) await ep.modify(farAnswer);
            await engine.callStarted(cc, b.r.agent, o.internal === undefined ? { callId, acdQueue: queue } : { callId, op: OpType.InternalCall });
          } catch (err) {
            // Not connected after all: hang up the agent's leg and free it, then let the caller's
            // handler end the call (nothing of this offer may outlive it).
            won.result = { kind: 'none' };
            await dropAnswer(b, leg);
            throw err;
          }
          // The agent is on the call (not Ready any more): the lease kept since the claim can go.
          await store.release(cc, b.r);
        }),
      );
      for (const r of settled) if (r.status === 'rejected' && failure === undefined) failure = { err: r.reason };
    } finally {
      clearTimeout(timer);
      offers.delete(key);
    }
    if (failure !== undefined) branches.forEach((b) => b.fork?.cancel());
    // Everyone but the winner: lease released, endpoint freed, and the agent's verdict counted.
    for (const b of branches) {
      if (won.result.kind === 'connected' && won.result.agent === b.r.agent) continue;
      if (b.released !== true) await store.release(cc, b.r);
      await b.ep?.destroy();
      if (b.verdict?.kind === 'forward') continue; // forwarding is no fault of the agent's
      if (b.verdict?.kind === 'reject') {
        // As a reject on the phone: the agent said "not me", so it is not offered the next caller at once.
        log.info({ agent: b.r.agent }, 'agent rejected the offer through REST: not ready (7)');
        await engine.notReady(cc, b.r.agent, { reason: BusyReason.RejectedCall });
        continue;
      }
      if (b.status === undefined || caller.gone || won.result.kind === 'connected') continue;
      if (b.status === 486 || b.status === 603) {
        log.info({ agent: b.r.agent, status: b.status }, 'agent rejected the call: not ready (7)');
        await engine.notReady(cc, b.r.agent, { reason: BusyReason.RejectedCall });
      } else {
        const n = await store.noAnswer(cc, b.r.agent, queue);
        log.info({ agent: b.r.agent, status: b.status, consecutive: n }, 'agent did not answer');
        if (n >= engine.callCenter(cc).queues[queue]!.noAnswerLimit) await engine.notReady(cc, b.r.agent, { reason: BusyReason.NoAnswer });
      }
    }
    if (failure !== undefined) throw failure.err;
    if (won.result.kind === 'none' && verdict !== undefined) return { kind: 'none', verdict };
    return won.result;
  }
}

/**
 * Waits `ms`, or less: until the caller hangs up or `wakers` is called (a caller ahead in the
 * same queue was served on this instance, so this one may be first now).
 */
function waitOrHangup(ms: number, caller: Leg, wakers: Set<() => void>): Promise<void> {
  return new Promise((resolve) => {
    const wake = (): void => {
      clearTimeout(t);
      wakers.delete(wake);
      resolve();
    };
    const t = setTimeout(wake, ms);
    wakers.add(wake);
    void caller.hungUp.then(wake);
  });
}
