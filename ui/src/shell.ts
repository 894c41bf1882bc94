/**
 * What every page shares: the header (title, page links, connection state, sign-out), the
 * banner that says the figures are not live while the stream reconnects, and the ticker that
 * keeps the waits and times in state counting up.
 */
import { h, replace, tick, useClock } from './dom';
import type { Me } from './api';
import type { ServerClock } from './clock';
import { clearSession } from './session';
import type { StreamStatus } from './stream';

/** A page's frame. */
export interface Shell {
  main: HTMLElement;
  /** Shows the stream's state (header, banner, `body[data-conn]`). */
  status(s: StreamStatus, detail: string): void;
}

/** The pages a role may open. */
export function pagesFor(me: Me): { path: string; title: string }[] {
  const pages = [
    { path: '/ui/wallboard', title: 'Wallboard', roles: ['admin', 'supervisor', 'agent'] },
    { path: '/ui/agent', title: 'Agent console', roles: ['admin', 'agent'] },
    { path: '/ui/supervisor', title: 'Supervisor', roles: ['admin', 'supervisor'] },
  ];
  return pages.filter((p) => p.roles.includes(me.role)).map(({ path, title }) => ({ path, title }));
}

/** Builds the frame of page `title` into `root`; the ticker counts against `clock`. */
export function shell(root: HTMLElement, title: string, me: Me, clock: ServerClock): Shell {
  const conn = h('span', { class: 'conn', role: 'status', 'aria-live': 'polite', 'data-testid': 'conn' }, 'connecting…');
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true, 'data-testid': 'banner' });
  const signOut = h('button', { class: 'ghost', type: 'button', onclick: () => { clearSession(); location.assign('/ui/'); } }, 'Sign out');
  const nav = h('nav', {}, pagesFor(me).map((p) => h('a', { href: p.path, ...(location.pathname === p.path ? { 'aria-current': 'page' } : {}) }, p.title)));
  const main = h('main', { id: 'main' });
  replace(
    root,
    h('header', { class: 'bar' }, h('h1', {}, h('span', { class: 'brand' }, 'ccswitch'), ` ${title}`), nav, h('span', { class: 'who' }, `${me.name} (${me.role}) · ${me.callcenter}`), conn, signOut),
    banner,
    main,
  );
  useClock(() => clock.now());
  let live = false;
  let lostAt = 0;
  window.setInterval(() => tick(main, clock.now()), 250);
  return {
    main,
    status(s, detail) {
      document.body.dataset.conn = s;
      conn.textContent = s === 'live' ? '● live' : s === 'stopped' ? 'offline' : detail;
      conn.dataset.state = s;
      if (s === 'live') {
        live = true;
        banner.hidden = true;
        return;
      }
      if (live) lostAt = Date.now();
      live = false;
      banner.hidden = false;
      const at = lostAt === 0 ? '' : ` Live until ${new Date(lostAt).toLocaleTimeString()}.`;
      banner.textContent = s === 'stopped' ? `Not connected: ${detail}.` : `Reconnecting to the event stream… the figures below may be out of date.${at}`;
    },
  };
}
