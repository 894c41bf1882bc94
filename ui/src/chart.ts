/**
 * The wallboard's chart of the last hour: answered calls per minute as bars and the most
 * callers waiting in each minute as a stepped line with square markers (the two differ in
 * form, not only in colour). Plain SVG drawn from the data, nothing loaded.
 */
import type { BoardMinute } from './queueBoard';

const NS = 'http://www.w3.org/2000/svg';
const W = 600;
const H = 170;
const PAD = { left: 34, right: 8, top: 10, bottom: 24 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A tidy, even maximum for the y axis (so its middle line is a whole number too). */
function niceMax(n: number): number {
  if (n <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(n));
  const max = Math.ceil(n / step) * step;
  return max % 2 === 0 ? max : max + step;
}

/** Draws `minutes` (oldest first, up to 60) into an SVG element. */
export function chart(minutes: readonly BoardMinute[], label: string): SVGSVGElement {
  const answered = minutes.reduce((s, m) => s + m.answered, 0);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${label}: ${answered} answered in the last hour` });
  root.append(svg('title', {}, `${label}: answered calls per minute (bars) and callers waiting (line), last hour`));
  const max = niceMax(Math.max(1, ...minutes.map((m) => Math.max(m.answered, m.waiting ?? 0))));
  const n = 60;
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i: number): number => PAD.left + (i / n) * iw;
  const y = (v: number): number => PAD.top + ih - (v / max) * ih;
  // Grid and y labels.
  for (const v of [0, max / 2, max]) {
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
    root.append(svg('text', { x: PAD.left - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(Math.round(v))));
  }
  for (const [i, t] of [[0, '−60 min'], [30, '−30'], [n, 'now']] as const) root.append(svg('text', { x: x(i), y: H - 6, class: 'axis', 'text-anchor': i === 0 ? 'start' : i === n ? 'end' : 'middle' }, t));
  const offset = n - minutes.length;
  const bw = Math.max(1, iw / n - 2);
  minutes.forEach((m, j) => {
    if (m.answered > 0) root.append(svg('rect', { x: x(offset + j) + 1, y: y(m.answered), width: bw, height: y(0) - y(m.answered), class: 'bar-answered' }));
  });
  // Waiting: a stepped line over the minutes that have a figure.
  let d = '';
  minutes.forEach((m, j) => {
    if (m.waiting === null) return;
    const x0 = x(offset + j);
    const x1 = x(offset + j + 1);
    d += `${d === '' ? 'M' : 'L'}${x0.toFixed(1)},${y(m.waiting).toFixed(1)}H${x1.toFixed(1)}`;
  });
  if (d !== '') root.append(svg('path', { d, class: 'line-waiting' }));
  minutes.forEach((m, j) => {
    if (m.waiting !== null && m.waiting > 0) root.append(svg('rect', { x: x(offset + j + 0.5) - 3, y: y(m.waiting) - 3, width: 6, height: 6, class: 'mark-waiting' }));
  });
  return root;
}
