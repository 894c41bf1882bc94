/**
 * The wallboard (`/ui/wallboard`): every queue the token may see, live from the event stream.
 * Per queue: the callers waiting (position, caller, wait counting up), the agents per state
 * with reason and time in state, answered / abandoned / overflow, longest and average wait,
 * the service level, and the last hour's chart. Large type for a wall display.
 */
import { ServerClock } from './clock';
import { chart } from './chart';
import { duration, h, percent, replace, since } from './dom';
import type { Reason } from './api';
import type { PageContext } from './page';
import { QueueBoard, type BoardMinute } from './queueBoard';
import { shell } from './shell';
import { reasonText, stateBadge, STATE_ORDER, STATES } from './states';
import { EventStream } from './stream';
import type { QueueSnapshot } from './wire';

/** Opens the wallboard. */
export async function wallboardPage(ctx: PageContext): Promise<void> {
  const clock = new ServerClock();
  const frame = shell(ctx.root, 'Wallboard', ctx.me, clock);
  document.body.classList.add('wall');
  const reasons = await ctx.api.get<{ notReady: Reason[] }>('/reasons').then((r) => r.notReady).catch(() => []);
  const boards = new Map(ctx.me.queues.map((q) => [q, new QueueBoard(q)]));
  const cards = new Map<string, HTMLElement>();
  const grid = h('div', { class: 'boards' });
  replace(frame.main, ctx.me.queues.length === 0 ? h('p', {}, 'This token sees no queue.') : grid);
  for (const q of boards.keys()) {
    const card = h('section', { class: 'board', 'data-queue': q, 'aria-label': `Queue ${q}` });
    cards.set(q, card);
    grid.append(card);
  }

  const render = (b: QueueBoard): void => {
    const card = cards.get(b.id);
    if (card !== undefined) renderBoard(card, b, clock.now(), reasons);
  };
  const loadHistory = async (b: QueueBoard): Promise<void> => {
    try {
      const hist = await ctx.api.get<{ minutes: BoardMinute[] }>(`/queue/${encodeURIComponent(b.id)}/history`);
      b.applyHistory(hist.minutes);
      b.noteWaiting(clock.now());
      render(b);
    } catch {
      // The chart goes on from the live events.
    }
  };

  const stream = new EventStream({
    cc: ctx.session.cc,
    token: ctx.session.token,
    topics: [...boards.keys()].map((q) => `queue:${q}`),
    clock,
    handlers: {
      snapshot(topic, data, seq) {
        const b = boards.get(topic.replace(/^queue:/, ''));
        if (b === undefined) return;
        b.applySnapshot(data as QueueSnapshot, seq, clock.now());
        render(b);
        void loadHistory(b);
      },
      event(e) {
        for (const b of boards.values()) if (b.applyEvent(e)) render(b);
      },
      status(s, detail) {
        frame.status(s, detail);
        // Back live after a gap: the chart's hour is read again (the events in the gap came with the resume).
        if (s === 'live') for (const b of boards.values()) if (b.minutes.length > 0) void loadHistory(b);
      },
      refused: (_e, why) => ctx.onRefused(why || 'the token was refused'),
    },
  });
  // Once a second: a new minute for the chart, the waits' figures (the durations tick by themselves).
  window.setInterval(() => {
    for (const b of boards.values()) {
      const before = b.minutes.length;
      b.noteWaiting(clock.now());
      const card = cards.get(b.id);
      if (card === undefined) continue;
      const longest = card.querySelector<HTMLElement>('[data-kpi="longest"] .value');
      if (longest !== null) longest.textContent = duration(b.longestWait(clock.now()));
      if (b.minutes.length !== before) render(b);
    }
  }, 1000);
  stream.start();
}

function kpi(key: string, label: string, value: string, extra?: string): HTMLElement {
  return h('div', { class: 'kpi', 'data-kpi': key }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value), extra === undefined ? null : h('span', { class: 'extra' }, extra));
}

/** Redraws one queue's card. */
function renderBoard(card: HTMLElement, b: QueueBoard, now: number, reasons: readonly Reason[]): void {
  const s = b.stats;
  const counts = b.counts();
  const members = [...b.members.values()].sort((x, y) => STATE_ORDER.indexOf(x.state) - STATE_ORDER.indexOf(y.state) || (x.since ?? 0) - (y.since ?? 0) || x.agent.localeCompare(y.agent));
  replace(
    card,
    h('h2', {}, h('span', { class: 'qid' }, b.id), ` ${b.name}`),
    h(
      'div',
      { class: 'kpis' },
      kpi('waiting', 'Waiting', String(b.callers.length)),
      kpi('longest', 'Longest wait', duration(b.longestWait(now))),
      kpi('avg', 'Average wait', duration(s?.avgWaitMs)),
      kpi('sla', 'Service level', percent(s?.serviceLevel), `answered ≤ ${s?.slaSeconds ?? 20} s`),
      kpi('answered', 'Answered', String(b.count('answered'))),
      kpi('abandoned', 'Abandoned', String(b.count('abandoned'))),
      kpi('overflow', 'Overflow', String(b.count('overflow'))),
    ),
    h(
      'div',
      { class: 'cols' },
      h(
        'div',
        { class: 'col' },
        h('h3', {}, 'Waiting callers'),
        b.callers.length === 0
          ? h('p', { class: 'empty' }, 'Nobody waiting')
          : h(
              'table',
              { class: 'callers' },
              h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Caller'), h('th', {}, 'Wait'))),
              h(
                'tbody',
                {},
                b.callers.map((c, i) =>
                  h('tr', { 'data-task': c.task }, h('td', { class: 'pos' }, String(i + 1)), h('td', { class: 'caller' }, c.caller || 'unknown', c.ringing.length > 0 ? h('span', { class: 'ringing' }, ` ringing ${c.ringing.join(', ')}`) : null), h('td', { class: 'wait' }, since(c.since))),
                ),
              ),
            ),
      ),
      h(
        'div',
        { class: 'col' },
        h('h3', {}, 'Agents'),
        h('p', { class: 'counts' }, STATE_ORDER.filter((st) => counts[st] > 0).map((st) => h('span', { class: 'count' }, stateBadge(st), ` ${counts[st]}`))),
        h(
          'table',
          { class: 'agents' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Agent'), h('th', {}, 'State'), h('th', {}, 'Reason'), h('th', {}, 'For'))),
          h(
            'tbody',
            {},
            members.map((m) =>
              h('tr', { 'data-agent': m.agent, 'data-state': m.state, title: STATES[m.state].label }, h('td', { class: 'agent' }, m.agent), h('td', {}, stateBadge(m.state)), h('td', { class: 'reason' }, reasonText(m.state, m.reason, reasons)), h('td', { class: 'for' }, since(m.since))),
            ),
          ),
        ),
      ),
    ),
    h('h3', {}, 'Last hour'),
    chart(b.minutes, `Queue ${b.id}`),
    h('p', { class: 'legend' }, h('span', { class: 'key key-answered' }), 'answered per minute', h('span', { class: 'key key-waiting' }), 'most callers waiting'),
  );
  for (const el of card.querySelectorAll<HTMLElement>('[data-since]')) el.textContent = duration(now - Number(el.dataset.since));
}
