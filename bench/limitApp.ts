/**
 * The limit of the vs-callcenter part (issue "performance", item 1): the same two legs and one
 * conference as a ccswitch queue call, on the same FreeSWITCH through the same media adapter
 * (media/fsmrf.ts), with no queueing logic at all: no Redis, no agent state, no reservation,
 * no registrar. Each INVITE is answered into a conference of its own (as ccswitch answers a
 * caller onto its queue's conference), the next agent in a fixed round-robin is called at once
 * with the caller's number as its From user, and its leg joins the conference; the caller's
 * BYE ends both legs and the conference.
 *
 * What ccswitch does on top of this (the task, the selection, the lease, the state changes,
 * the events) is what the ratio of their knees measures.
 */
import type { SipDialog, SipRequest, SipResponse, SrfLike } from '../app/sip/types';
import type { Conference, Endpoint, MediaServer } from '../media/port';

/** The running limit app: its open calls and what went wrong. */
export interface LimitApp {
  /** Calls not yet fully released. */
  readonly active: number;
  /** Calls that failed on our side (not a refusal by the agent), by message. */
  readonly errors: Map<string, number>;
}

/** Answers every INVITE on `srf` into a conference and calls `agents[n % agents.length]`. */
export function attachLimitApp(srf: Pick<SrfLike, 'invite' | 'createUAS' | 'createUAC'>, media: MediaServer, o: { agents: readonly string[]; domain: string }): LimitApp {
  const state = { active: 0, errors: new Map<string, number>() };
  let next = 0;
  let calls = 0;
  const fail = (err: unknown): void => {
    const m = err instanceof Error ? err.message : `status ${(err as { status?: number }).status ?? String(err)}`;
    state.errors.set(m, (state.errors.get(m) ?? 0) + 1);
  };
  srf.invite((req: SipRequest, res: SipResponse) => {
    state.active++;
    const id = ++calls;
    const agent = o.agents[next++ % o.agents.length]!;
    const caller = /sip:([^@;>]+)@/.exec(req.get('From') ?? '')?.[1] ?? 'anonymous';
    let callerEp: Endpoint | undefined;
    let agentEp: Endpoint | undefined;
    let conf: Conference | undefined;
    let callerDialog: SipDialog | undefined;
    let agentDialog: SipDialog | undefined;
    let callerGone = false;
    const run = async (): Promise<void> => {
      callerEp = await media.createEndpoint({ remoteSdp: req.body });
      callerDialog = await srf.createUAS(req, res, { localSdp: callerEp.localSdp });
      const hungUp = new Promise<void>((resolve) => callerDialog!.on('destroy', () => resolve()));
      void hungUp.then(() => (callerGone = true));
      conf = await media.createConference(`limit-${process.pid}-${id}`);
      await conf.join(callerEp, 1);
      agentEp = await media.createEndpoint();
      agentDialog = await srf.createUAC(agent, { localSdp: agentEp.localSdp, headers: { From: `<sip:${caller}@${o.domain}>` } });
      await agentEp.modify(agentDialog.remote.sdp);
      await conf.join(agentEp, 1);
      await hungUp;
    };
    /** Ends whatever is still up: both legs (BYE), both channels and the conference. */
    const release = async (): Promise<void> => {
      const results = await Promise.allSettled([
        callerGone ? undefined : callerDialog?.destroy(),
        agentDialog?.destroy(),
        agentEp?.destroy(),
        callerEp?.destroy(),
        conf?.destroy(),
      ]);
      for (const r of results) if (r.status === 'rejected') fail(r.reason);
    };
    run()
      .catch((err: unknown) => {
        fail(err);
        if (callerDialog === undefined && res.finalResponseSent !== true) res.send(500);
      })
      .then(release)
      .finally(() => state.active--)
      .catch(fail);
  });
  return {
    get active() {
      return state.active;
    },
    errors: state.errors,
  };
}
