/** A tiny DOM builder and the formatting helpers every page uses. */

/** Attributes of {@link h}: strings set as attributes, `on*` functions as listeners. */
export type Attrs = Record<string, string | number | boolean | undefined | null | ((ev: Event) => void)>;
/** A child of {@link h}: a node, a text, or nothing. */
export type Child = Node | string | number | null | undefined | false;

/**
 * Builds an element: `h('button', { class: 'x', onclick: fn }, 'Ready')`. `true` sets an
 * empty attribute, `false`/null/undefined leave it out; text is always set as text.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Appends children (flattening arrays, skipping empty ones). */
export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Replaces an element's children. */
export function replace(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren();
  append(el, children);
}

/** `m:ss` (or `h:mm:ss`) of a duration in ms; `—` for none. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

let serverNow: () => number = () => Date.now();

/** Sets the clock live durations are counted against (the page's server clock). */
export function useClock(now: () => number): void {
  serverNow = now;
}

/** A live duration: an element whose text the page's ticker keeps counting up from `since` (server ms). */
export function since(from: number | null | undefined, attrs: Attrs = {}): HTMLElement {
  return h('span', { class: 'since', 'data-since': from ?? undefined, ...attrs }, from === null || from === undefined ? '—' : duration(serverNow() - from));
}

/** Updates every live duration below `root` against the server time `now`. */
export function tick(root: ParentNode, now: number): void {
  for (const el of root.querySelectorAll<HTMLElement>('[data-since]')) {
    const from = Number(el.dataset.since);
    el.textContent = duration(now - from);
  }
}

/** Percent of a 0..1 share, or `—`. */
export function percent(share: number | null | undefined): string {
  return share === null || share === undefined ? '—' : `${Math.round(share * 100)}%`;
}
