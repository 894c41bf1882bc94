/**
 * The supervisor view (`/ui/supervisor`): the agents of the token's queues with their state
 * per queue, forced Ready / Not Ready / logout (ops 30 / 31 / 29, logged with the supervisor)
 * and monitoring (listen, whisper, barge, intercept) of an agent's call from the
 * supervisor's phone. Every button calls the documented REST operation and shows refusals.
 */
import { actionButton, Outcome } from './actions';
import type { Reason } from './api';
import { ServerClock } from './clock';
import { duration, h, replace, since } from './dom';
import type { PageContext } from './page';
import { QueueBoard } from './queueBoard';
import { shell } from './shell';
import { reasonText, stateBadge } from './states';
import { EventStream } from './stream';
import type { QueueSnapshot } from './wire';

const MONITOR = ['listen', 'whisper', 'barge', 'intercept'] as const;

/** Opens the supervisor view. */
export async function supervisorPage(ctx: PageContext): Promise<void> {
  const clock = new ServerClock();
  const frame = shell(ctx.root, 'Supervisor', ctx.me, clock);
  if (ctx.me.role === 'agent') {
    replace(frame.main, h('p', { class: 'note' }, 'An agent token has no supervisor view: open the agent console.'));
    return;
  }
  const [reasons, agentList, supervisors] = await Promise.all([
    ctx.api.get<{ notReady: Reason[] }>('/reasons').then((r) => r.notReady),
    ctx.api.get<{ agents: { id: string; name: string | null; extension: string }[] }>('/agents').then((r) => r.agents),
    ctx.api.get<{ supervisors: { id: string; name?: string | null }[] }>('/supervisors').then((r) => r.supervisors).catch(() => []),
  ]);
  const outcome = new Outcome();
  const boards = new Map(ctx.me.queues.map((q) => [q, new QueueBoard(q)]));
  const names = new Map(agentList.map((a) => [a.id, a]));

  // Who monitors: the token's supervisor; an admin picks one.
  const supPicker = h('select', { id: 'as-supervisor', 'aria-label': 'monitor as supervisor' }, (ctx.me.supervisor !== null ? [{ id: ctx.me.supervisor, name: null }] : supervisors).map((s) => h('option', { value: s.id }, `${s.id}${s.name ? ` ${s.name}` : ''}`)));
  const supervisor = (): string => supPicker.value;
  const scope = h('select', { id: 'scope', 'aria-label': 'queues the forced change applies to' }, h('option', { value: '' }, 'all my queues'), ctx.me.queues.map((q) => h('option', { value: q }, `queue ${q}`)));
  const reasonPicker = h('select', { id: 'force-reason', 'aria-label': 'Not Ready reason' }, reasons.map((r) => h('option', { value: r.code, ...(r.code === 3 ? { selected: true } : {}) }, `${r.code} ${r.label}`)));
  const queueBody = (): Record<string, unknown> => (scope.value === '' ? {} : { queue: scope.value });
  const force = (agent: string, op: string, extra: Record<string, unknown> = {}) => ctx.api.post(`/agent/${encodeURIComponent(agent)}/${op}`, { ...queueBody(), ...(ctx.me.supervisor === null && supPicker.value === '' ? {} : { supervisor: supervisor() }), ...extra });
  const canMonitor = supPicker.options.length > 0;

  const tbody = h('tbody');
  const summary = h('div', { class: 'row' });
  const render = (): void => {
    replace(
      summary,
      [...boards.values()].map((b) => h('span', { class: 'kpi', 'data-queue': b.id }, h('span', { class: 'label' }, `${b.id} ${b.name}`), h('span', {}, `${b.callers.length} waiting · longest ${duration(b.longestWait(clock.now()))}`))),
    );
    const agents = new Set<string>();
    for (const b of boards.values()) for (const m of b.members.keys()) agents.add(m);
    replace(
      tbody,
      [...agents].sort().map((id) => {
        const a = names.get(id);
        const perQueue = [...boards.values()].flatMap((b) => {
          const m = b.members.get(id);
          return m === undefined ? [] : [h('div', { class: 'row', 'data-queue': b.id, 'data-state': m.state }, h('span', { class: 'qid' }, b.id), stateBadge(m.state), h('span', { class: 'reason' }, reasonText(m.state, m.reason, reasons)), since(m.since))];
        });
        return h(
          'tr',
          { 'data-agent': id },
          h('td', {}, h('strong', {}, id), a?.name ? ` ${a.name}` : '', h('div', { class: 'note' }, `ext. ${a?.extension ?? '?'}`)),
          h('td', {}, perQueue),
          h(
            'td',
            {},
            h(
              'div',
              { class: 'row' },
              actionButton(outcome, 'Force Ready', 'force_ready', () => force(id, 'force_ready'), () => `Agent ${id} forced Ready`),
              actionButton(outcome, 'Force Not Ready', 'force_not_ready', () => force(id, 'force_not_ready', { reason: Number(reasonPicker.value) }), () => `Agent ${id} forced Not Ready`),
              actionButton(outcome, 'Force logout', 'force_logout', () => force(id, 'force_logout'), () => `Agent ${id} logged out`, { class: 'warn' }),
            ),
            h(
              'div',
              { class: 'row' },
              MONITOR.map((mode) =>
                actionButton(outcome, mode[0]!.toUpperCase() + mode.slice(1), `monitor_${mode}`, () => ctx.api.post<{ state: string }>(`/supervisor/${encodeURIComponent(supervisor())}/monitor`, { agent: id, mode }), (r) => `${mode} on agent ${id}: ${r.state === 'ringing_supervisor' ? 'your phone rings' : 'mode changed'}`, canMonitor ? {} : { disabled: true, title: 'this token has no supervisor (no phone to ring)' }),
              ),
            ),
          ),
        );
      }),
    );
    for (const el of tbody.querySelectorAll<HTMLElement>('[data-since]')) el.textContent = duration(clock.now() - Number(el.dataset.since));
  };

  replace(
    frame.main,
    outcome.el,
    h(
      'section',
      { class: 'panel' },
      h('h2', {}, `Queues ${ctx.me.queues.join(', ')}`),
      summary,
      h(
        'div',
        { class: 'row' },
        h('label', { for: 'scope' }, 'Forced changes apply to'),
        scope,
        h('label', { for: 'force-reason' }, 'Not Ready reason'),
        reasonPicker,
        h('label', { for: 'as-supervisor' }, 'Monitor as'),
        supPicker,
        actionButton(outcome, 'Stop monitoring', 'monitor_stop', () => ctx.api.post(`/supervisor/${encodeURIComponent(supervisor())}/monitor/stop`), () => 'Monitoring stopped', canMonitor ? { class: 'ghost' } : { class: 'ghost', disabled: true }),
      ),
      canMonitor ? null : h('p', { class: 'note' }, 'This token acts as no supervisor: monitoring needs a supervisor whose phone rings.'),
      h('table', { class: 'supervise' }, h('thead', {}, h('tr', {}, h('th', {}, 'Agent'), h('th', {}, 'State per queue'), h('th', {}, 'Actions'))), tbody),
    ),
  );
  render();

  const stream = new EventStream({
    cc: ctx.session.cc,
    token: ctx.session.token,
    topics: [...boards.keys()].map((q) => `queue:${q}`),
    clock,
    handlers: {
      snapshot(topic, data, seq) {
        boards.get(topic.replace(/^queue:/, ''))?.applySnapshot(data as QueueSnapshot, seq, clock.now());
        render();
      },
      event(e) {
        let changed = false;
        for (const b of boards.values()) changed = b.applyEvent(e) || changed;
        if (changed) render();
      },
      status: (s, detail) => frame.status(s, detail),
      refused: (_e, why) => ctx.onRefused(why || 'the token was refused'),
    },
  });
  stream.start();
}
