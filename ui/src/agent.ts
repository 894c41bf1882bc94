/**
 * The agent console (`/ui/agent`): the agent's state per queue with log in / out, Ready and
 * Not Ready with a reason, the offer ringing now (reject with data, forward), its
 * conversations (hold / resume with a mode, transfer to an agent or out, consult), and a
 * dialer. Every button calls the documented REST operation and shows the server's refusal.
 * The softphone panel (ui/src/softphone.ts) registers the browser as the agent's phone, so
 * the ringing offer can be answered in the page.
 */
import { actionButton, Outcome } from './actions';
import type { Reason } from './api';
import { ServerClock } from './clock';
import { h, replace, since } from './dom';
import type { PageContext } from './page';
import { QueueBoard } from './queueBoard';
import { shell } from './shell';
import { Softphone } from './softphone';
import { reasonText, stateBadge } from './states';
import { EventStream } from './stream';
import type { AgentSnapshot, QueueSnapshot, WireAgentConversation, WireConversation, WireEvent, WireQueueState } from './wire';
import { isAgentState, isConversation, isQueueCaller } from './wire';

/** `GET agent`, as far as the console uses it. */
interface AgentView {
  id: string;
  name: string | null;
  extension: string;
  queues: WireQueueState[];
  reservation: { task: string; queue: string; expiresInMs: number } | null;
}

/** The offer ringing on the agent. */
interface Offer {
  task: string;
  queue: string;
  caller: string;
  /** When the caller started waiting (server ms), if known. */
  since: number | null;
}

const MODES: Record<number, string> = { 1: 'talking (listen + speak)', 2: 'listen only', 3: 'speak only', 4: 'on hold' };

/** An `<enqueue>` / `<queue>` document naming a queue and, optionally, one agent. */
export function enqueueXml(root: 'enqueue' | 'queue', queue: string, agent: string): string {
  const esc = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return agent === '' ? `<${root} queue="${esc(queue)}"/>` : `<${root} queue="${esc(queue)}"><agent id="${esc(agent)}"/></${root}>`;
}

/** Which agent the console is for: the token's, or (admin) the one in `?agent=`, with the others to pick from. */
async function chooseAgent(ctx: PageContext): Promise<{ id: string | undefined; others: string[] }> {
  if (ctx.me.agent !== null) return { id: ctx.me.agent, others: [] };
  const wanted = new URLSearchParams(location.search).get('agent');
  const { agents } = await ctx.api.get<{ agents: { id: string; name: string | null }[] }>('/agents');
  const ids = agents.map((a) => a.id);
  return { id: wanted !== null && ids.includes(wanted) ? wanted : ids[0], others: ids };
}

/** Opens the agent console. */
export async function agentPage(ctx: PageContext): Promise<void> {
  const clock = new ServerClock();
  const frame = shell(ctx.root, 'Agent console', ctx.me, clock);
  if (ctx.me.role === 'supervisor') {
    replace(frame.main, h('p', { class: 'note' }, 'A supervisor token does not act as an agent: open the supervisor view, whose forced changes are logged with your name.'));
    return;
  }
  const { id: agentId, others } = await chooseAgent(ctx);
  if (agentId === undefined) {
    replace(frame.main, h('p', { class: 'note' }, 'There is no agent in this call center.'));
    return;
  }
  const path = `/agent/${encodeURIComponent(agentId)}`;
  const [view, reasons] = await Promise.all([ctx.api.get<AgentView>(path), ctx.api.get<{ notReady: Reason[] }>('/reasons').then((r) => r.notReady)]);
  const outcome = new Outcome();
  const post = <T>(op: string, body: Record<string, unknown> = {}): Promise<T> => ctx.api.post<T>(`${path}/${op}`, body);

  // --- State -------------------------------------------------------------------------------
  let states: WireQueueState[] = view.queues.map(({ queue, state, reason, since: s }) => ({ queue, state, reason, since: s }));
  const boards = new Map(states.map((s) => [s.queue, new QueueBoard(s.queue)]));
  const reasonPicker = h(
    'select',
    { id: 'reason', 'data-testid': 'reason' },
    reasons.filter((r) => !r.system).map((r) => h('option', { value: r.code }, `${r.code} ${r.label}${r.origin === 'site' ? ' (site)' : ''}`)),
  );
  const stateTable = h('tbody');
  const stateOps = (queue: string | undefined): HTMLElement[] => {
    const body = (): Record<string, unknown> => (queue === undefined ? {} : { queue });
    const where = queue === undefined ? 'all queues' : `queue ${queue}`;
    const attrs = { 'data-queue': queue ?? 'all' };
    return [
      actionButton(outcome, 'Log in', 'login', () => post('login', body()), () => `Logged in: ${where}`, attrs),
      actionButton(outcome, 'Ready', 'ready', () => post('ready', body()), () => `Ready: ${where}`, attrs),
      actionButton(outcome, 'Not Ready', 'not_ready', () => post('not_ready', { ...body(), reason: Number(reasonPicker.value) }), () => `Not Ready (${reasonPicker.selectedOptions[0]?.textContent ?? ''}): ${where}`, attrs),
      actionButton(outcome, 'Log out', 'logout', () => post('logout', body()), () => `Logged out: ${where}`, { ...attrs, class: 'ghost' }),
    ];
  };
  const renderStates = (): void => {
    replace(
      stateTable,
      states.map((s) =>
        h(
          'tr',
          { 'data-queue': s.queue, 'data-state': s.state },
          h('td', {}, h('strong', {}, s.queue), ` ${boards.get(s.queue)?.name ?? ''}`),
          h('td', {}, stateBadge(s.state)),
          h('td', { class: 'reason' }, reasonText(s.state, s.reason, reasons)),
          h('td', {}, since(s.since)),
          h('td', {}, h('div', { class: 'row' }, stateOps(s.queue))),
        ),
      ),
    );
  };
  const statePanel = h(
    'section',
    { class: 'panel', 'aria-label': 'State' },
    h('h2', {}, `Agent ${view.id}${view.name === null ? '' : ` · ${view.name}`} (extension ${view.extension})`),
    others.length === 0
      ? null
      : h(
          'div',
          { class: 'row' },
          h('label', { for: 'as-agent' }, 'Console of agent'),
          h('select', { id: 'as-agent', onchange: (e: Event) => location.assign(`/ui/agent?agent=${encodeURIComponent((e.target as HTMLSelectElement).value)}`) }, others.map((id) => h('option', { value: id, ...(id === agentId ? { selected: true } : {}) }, id))),
        ),
    h('div', { class: 'row' }, h('label', { for: 'reason' }, 'Not Ready reason'), reasonPicker),
    h('table', { class: 'states' }, h('thead', {}, h('tr', {}, h('th', {}, 'Queue'), h('th', {}, 'State'), h('th', {}, 'Reason'), h('th', {}, 'For'), h('th', {}, ''))), stateTable),
    h('div', { class: 'row', 'data-queue': 'all' }, h('strong', {}, 'All queues:'), stateOps(undefined)),
  );

  // --- Offer -------------------------------------------------------------------------------
  let offer: Offer | undefined;
  // The offer's Answer button follows the softphone's ringing (renderOffer is hoisted below).
  const softphone = new Softphone(ctx.me.softphone, agentId, () => renderOffer());
  window.addEventListener('pagehide', () => void softphone.stop());
  let offerCheck: number | undefined;
  const offerBody = h('div');
  const rejectData = h('input', { id: 'reject-data', placeholder: 'data for the IVR (optional)', maxlength: 1024, 'data-testid': 'reject-data' });
  const forwardTo = h('input', { id: 'forward-to', placeholder: 'agent id', size: 8, 'data-testid': 'forward-to' });
  const offerPanel = h('section', { class: 'panel', 'aria-label': 'Offer' }, h('h2', {}, 'Ringing now'), offerBody);
  const renderOffer = (): void => {
    offerPanel.classList.toggle('offer', offer !== undefined);
    if (offer === undefined) {
      replace(offerBody, h('p', { class: 'empty', 'data-testid': 'no-offer' }, 'No call is ringing for you.'));
      return;
    }
    const o = offer;
    replace(
      offerBody,
      h('p', { class: 'big', 'data-testid': 'offer' }, `${o.caller || 'unknown caller'} · queue ${o.queue} ${boards.get(o.queue)?.name ?? ''}`),
      h('p', {}, 'Waiting ', o.since === null ? '—' : since(o.since)),
      h(
        'div',
        { class: 'row' },
        softphone.ringing
          ? actionButton(outcome, 'Answer in browser', 'answer-browser', () => softphone.answer(), () => `Answered the call from ${o.caller} in the browser`)
          : h('button', { type: 'button', disabled: true, 'data-op': 'answer-browser', title: 'The browser softphone is off or not ringing: answer on your phone' }, 'Answer in browser'),
        h('span', { class: 'note' }, softphone.ringing ? 'or on your desk phone' : 'answer on your desk phone'),
      ),
      h('div', { class: 'row' }, h('label', { for: 'reject-data' }, 'Reject with data'), rejectData, actionButton(outcome, 'Reject', 'reject', () => post('reject', { queue_task_id: o.task, ...(rejectData.value === '' ? {} : { data: rejectData.value }) }), () => `Rejected the call from ${o.caller}`, { class: 'warn' })),
      h('div', { class: 'row' }, h('label', { for: 'forward-to' }, 'Forward to'), forwardTo, actionButton(outcome, 'Forward', 'forward_agent', () => post('forward_agent', { queue_task_id: o.task, enqueue: enqueueXml('enqueue', o.queue, forwardTo.value.trim()) }), () => `Forwarded the call from ${o.caller}`)),
    );
  };
  /** The offer's details from the queue's waiting list. */
  const offerOf = (task: string, queue: string, caller?: string): Offer => {
    const c = boards.get(queue)?.callers.find((x) => x.task === task);
    return { task, queue, caller: caller ?? c?.caller ?? '', since: c?.since ?? null };
  };
  /** While an offer shows, the reservation is checked again when its lease ends (a ring timeout sends no event). */
  const watchOffer = (ms: number): void => {
    window.clearTimeout(offerCheck);
    offerCheck = window.setTimeout(() => {
      void ctx.api.get<AgentView>(path).then((v) => {
        if (v.reservation === null) {
          offer = undefined;
          renderOffer();
        } else {
          offer = offerOf(v.reservation.task, v.reservation.queue, offer?.task === v.reservation.task ? offer.caller : undefined);
          renderOffer();
          watchOffer(v.reservation.expiresInMs + 250);
        }
      }).catch(() => watchOffer(2000));
    }, ms);
  };

  // --- Conversations -----------------------------------------------------------------------
  const convs = new Map<string, { view: WireAgentConversation; record: WireConversation | undefined; card: HTMLElement; info: HTMLElement }>();
  const convList = h('div', { 'data-testid': 'conversations' });
  const convEmpty = h('p', { class: 'empty' }, 'No conversation.');
  const convPanel = h('section', { class: 'panel', 'aria-label': 'Conversations' }, h('h2', {}, 'Conversations'), convEmpty, convList);
  const firstQueue = states[0]?.queue ?? '';
  const convCard = (id: string): { card: HTMLElement; info: HTMLElement } => {
    const info = h('div');
    const body = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ conversation_id: id, ...extra });
    const mode = h('select', { 'aria-label': 'mode' }, [1, 2, 3].map((m) => h('option', { value: m }, `${m} ${MODES[m]}`)));
    const xferQueue = h('select', { 'aria-label': 'queue' }, states.map((s) => h('option', { value: s.queue }, s.queue)));
    const xferAgent = h('input', { placeholder: 'agent id (optional)', size: 10, 'aria-label': 'transfer to agent' });
    const xferNumber = h('input', { placeholder: 'number', size: 12, 'aria-label': 'transfer to number' });
    const consultAgent = h('input', { placeholder: 'agent id', size: 8, 'aria-label': 'consult agent' });
    const consultNumber = h('input', { placeholder: 'number', size: 12, 'aria-label': 'consult number' });
    const card = h(
      'div',
      { class: 'conv', 'data-conversation': id },
      info,
      h('div', { class: 'row' }, actionButton(outcome, 'Hold', 'pause', () => post('pause', body()), () => `On hold in ${id}`), mode, actionButton(outcome, 'Resume', 'resume', () => post('resume', body({ mode: Number(mode.value) })), () => `Resumed ${id} in mode ${mode.value}`)),
      h('div', { class: 'row' }, h('label', {}, 'Transfer to'), xferQueue, xferAgent, actionButton(outcome, 'Transfer to agent', 'xfer_agent', () => post('xfer_agent', body({ queue: enqueueXml('queue', xferQueue.value || firstQueue, xferAgent.value.trim()) })), () => `Transferred ${id} to queue ${xferQueue.value}`)),
      h('div', { class: 'row' }, h('label', {}, 'Transfer out'), xferNumber, actionButton(outcome, 'Transfer out', 'xferOut', () => post('xferOut', body({ to: xferNumber.value.trim(), max_answer_seconds: 3600 })), () => `Transferring ${id} to ${xferNumber.value}`)),
      h(
        'div',
        { class: 'row' },
        h('label', {}, 'Consult'),
        consultAgent,
        actionButton(outcome, 'Consult agent', 'consult', () => post('consult', body({ enqueue: enqueueXml('enqueue', xferQueue.value || firstQueue, consultAgent.value.trim()) })), () => `Consulting agent ${consultAgent.value}`),
        consultNumber,
        actionButton(outcome, 'Consult number', 'consult', () => post('consult', body({ to: consultNumber.value.trim() })), () => `Consulting ${consultNumber.value}`),
      ),
      h(
        'div',
        { class: 'row' },
        actionButton(outcome, 'Complete: transfer', 'consult_complete', () => post('consult_complete', body({ how: 'transfer' })), () => 'Consultation handed over'),
        actionButton(outcome, 'Complete: conference', 'consult_complete', () => post('consult_complete', body({ how: 'conference' })), () => 'Three-party conference'),
        actionButton(outcome, 'Cancel consult', 'consult_cancel', () => post('consult_cancel', body()), () => 'Back with the caller', { class: 'ghost' }),
      ),
    );
    return { card, info };
  };
  const renderConv = (id: string): void => {
    const c = convs.get(id);
    if (c === undefined) return;
    const legs = (c.record?.legs ?? []).filter((l) => l.state !== 'gone');
    replace(
      c.info,
      h('p', {}, h('strong', {}, `Conversation ${id.slice(0, 8)}`), c.record?.queue === undefined ? '' : ` · queue ${c.record.queue}`, ' · you: ', h('span', { class: 'mode', 'data-mode': c.view.mode }, MODES[c.view.mode] ?? `mode ${c.view.mode}`)),
      h('p', { class: 'legs' }, legs.length === 0 ? '' : `Parties: ${legs.map((l) => `${l.kind}${l.agent === undefined ? '' : ` ${l.agent}`} (${l.state === 'dialing' ? 'ringing' : MODES[l.mode] ?? l.mode})`).join(', ')}`),
    );
  };
  const addConv = (v: WireAgentConversation): void => {
    const have = convs.get(v.id);
    if (have !== undefined) {
      have.view = v;
      renderConv(v.id);
      return;
    }
    const { card, info } = convCard(v.id);
    convs.set(v.id, { view: v, record: undefined, card, info });
    convList.append(card);
    convEmpty.hidden = true;
    stream.addTopic(`conversation:${v.id}`);
    renderConv(v.id);
  };
  const dropConv = (id: string): void => {
    const c = convs.get(id);
    if (c === undefined) return;
    c.card.remove();
    convs.delete(id);
    convEmpty.hidden = convs.size > 0;
    stream.removeTopic(`conversation:${id}`);
  };

  // --- Dialer and softphone ----------------------------------------------------------------
  const dial = h('input', { id: 'dial', placeholder: 'number to call', size: 16, 'data-testid': 'dial' });
  const dialPanel = h(
    'section',
    { class: 'panel', 'aria-label': 'Dialer' },
    h('h2', {}, 'Call out'),
    h('div', { class: 'row' }, dial, actionButton(outcome, 'Call', 'call_out', () => post<{ conversation: string; state: string }>('call_out', { to: dial.value.trim(), max_answer_seconds: 3600 }), (r) => `Calling ${dial.value} (${r.state === 'ringing_agent' ? 'your phone rings first' : 'dialing'})`)),
    h('p', { class: 'note' }, 'Your phone rings first when you are in no call; otherwise the number is dialed from your current call, which goes on hold.'),
  );
  const softphonePanel = softphone.panel;

  replace(frame.main, outcome.el, h('div', { class: 'console' }, statePanel, offerPanel, convPanel, dialPanel, softphonePanel));
  renderStates();
  renderOffer();

  // --- The stream --------------------------------------------------------------------------
  const onEvent = (e: WireEvent): void => {
    for (const b of boards.values()) b.applyEvent(e);
    if (isAgentState(e) && e.agent === agentId) {
      states = states.map((s) => (s.queue === e.queue ? { queue: s.queue, state: e.state, reason: e.reason, since: e.ts } : s));
      renderStates();
      return;
    }
    if (isQueueCaller(e)) {
      if (e.reason === 'offered' && (e.agents ?? []).includes(agentId)) {
        offer = offerOf(e.task, e.queue, e.caller);
        renderOffer();
        void ctx.api.get<AgentView>(path).then((v) => watchOffer((v.reservation?.expiresInMs ?? 25_000) + 250)).catch(() => watchOffer(25_000));
      } else if (offer !== undefined && e.task === offer.task && e.reason !== 'enqueued') {
        offer = undefined;
        renderOffer();
      }
      return;
    }
    if (isConversation(e)) {
      if (e.action === 'ended') dropConv(e.id);
      else if (e.agent === agentId && e.kind === 'agent') {
        if (e.action === 'left') dropConv(e.id);
        else if (e.action === 'joined' || e.action === 'mode') addConv({ id: e.id, leg: e.leg ?? '', mode: e.mode ?? 1, active: e.mode !== 4 });
      }
      const c = convs.get(e.id);
      if (c?.record !== undefined && e.leg !== undefined) {
        const legs = c.record.legs.filter((l) => l.leg !== e.leg);
        const old = c.record.legs.find((l) => l.leg === e.leg);
        if (e.action !== 'left') legs.push({ ...(old ?? { leg: e.leg, kind: e.kind ?? 'external', mode: 1, state: 'up' }), ...(e.kind === undefined ? {} : { kind: e.kind }), ...(e.agent === undefined ? {} : { agent: e.agent }), ...(e.mode === undefined ? {} : { mode: e.mode }), ...(e.state === undefined ? {} : { state: e.state }) });
        c.record = { ...c.record, legs };
      }
      renderConv(e.id);
    }
  };
  const stream = new EventStream({
    cc: ctx.session.cc,
    token: ctx.session.token,
    topics: [`agent:${agentId}`, ...[...boards.keys()].map((q) => `queue:${q}`)],
    clock,
    handlers: {
      snapshot(topic, data, seq) {
        if (topic.startsWith('queue:')) {
          boards.get(topic.slice(6))?.applySnapshot(data as QueueSnapshot, seq, clock.now());
          renderStates();
          if (offer !== undefined) {
            offer = offerOf(offer.task, offer.queue, offer.caller);
            renderOffer();
          }
        } else if (topic.startsWith('agent:')) {
          const a = data as AgentSnapshot;
          states = a.queues.map(({ queue, state, reason, since: s }) => ({ queue, state, reason, since: s }));
          renderStates();
          for (const id of [...convs.keys()]) if (!a.conversations.some((c) => c.id === id)) dropConv(id);
          for (const c of a.conversations) addConv(c);
          offer = a.reservation === null ? undefined : offerOf(a.reservation.task, a.reservation.queue, offer?.task === a.reservation.task ? offer.caller : undefined);
          renderOffer();
          if (offer !== undefined) watchOffer(1000);
        } else if (topic.startsWith('conversation:')) {
          const id = topic.slice(13);
          const rec = (data as { conversation: WireConversation | null }).conversation;
          const c = convs.get(id);
          if (rec === null || rec.state === 'ended') dropConv(id);
          else if (c !== undefined) {
            c.record = rec;
            renderConv(id);
          }
        }
      },
      event: onEvent,
      status: (s, detail) => frame.status(s, detail),
      refused: (_e, why) => ctx.onRefused(why || 'the token was refused'),
      topicError: (topic) => {
        if (topic.startsWith('conversation:')) dropConv(topic.slice(13));
      },
    },
  });
  stream.start();
}
