/**
 * The browser UI (`/ui/`): the static files `npm run build` writes to `dist/ui` (sources in
 * `ui/`), served without a bearer token — the page asks for the token and keeps it in the
 * tab's sessionStorage — and with a Content-Security-Policy that lets the page load nothing
 * from anywhere but this server. The files hold no configuration and no data: everything the
 * pages show comes from the REST API and the event stream, under the token's role.
 *
 * Pages (one HTML file; the script picks the page from the path): `/ui/` (sign-in and the
 * list of pages), `/ui/wallboard`, `/ui/agent`, `/ui/supervisor`.
 */
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, extname, join, posix, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../../lib/logger';

/** The pages served by the UI's one HTML file. */
export const UI_PAGES = ['', 'wallboard', 'agent', 'supervisor'] as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** A host header we are willing to repeat in the policy (name or address, optional port). */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$/;

/**
 * The policy of every `/ui` response: scripts, styles, images and connections from this
 * origin only (the WebSocket of the same host, spelt out for browsers whose `'self'` does not
 * cover `ws:`), no plugins, no framing, no base or form target elsewhere. `connect` adds
 * more connection targets: the softphone's SIP WebSocket (config sip.softphone.wsUrl).
 */
export function uiContentSecurityPolicy(host: string | undefined, connect: readonly string[] = []): string {
  const ws = (host !== undefined && HOST.test(host) ? ` ws://${host} wss://${host}` : '') + connect.map((c) => ` ${c}`).join('');
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Where `npm run build` puts the UI: `dist/ui` of the package root, found from this file
 * whether it runs compiled (`dist/app/http`) or from source (`app/http`).
 */
export function defaultUiDir(from = __dirname): string {
  let dir = from;
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'ui');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return resolve(from, '..', '..', 'ui');
}

/**
 * The file under `root` that a request path (after `/ui/`, percent-decoded) names, or
 * undefined when it leaves `root`, names a dotfile or holds characters no file of ours has.
 */
export function uiFile(root: string, rel: string): string | undefined {
  if (rel.length > 200 || /[\0\\]/.test(rel)) return undefined;
  const norm = posix.normalize(`/${rel}`);
  if (norm.split('/').some((part) => part.startsWith('.'))) return undefined;
  const file = resolve(root, `.${norm}`);
  return file === root || file.startsWith(root + sep) ? file : undefined;
}

const HTML_PAGES: ReadonlySet<string> = new Set(UI_PAGES.map((p) => p));

/** What the UI plugin needs. */
export interface UiDeps {
  /** The built UI (default {@link defaultUiDir}). */
  dir?: string | undefined;
  logger: Logger;
  /** More targets the pages may connect to (the softphone's SIP WebSocket). */
  connect?: readonly string[];
}

/** Registers GET /ui and /ui/* (which includes /ui/). */
export function uiRoutes(app: FastifyInstance, deps: UiDeps): void {
  const root = resolve(deps.dir ?? defaultUiDir());
  if (!existsSync(join(root, 'index.html'))) deps.logger.warn({ dir: root }, 'the browser UI is not built (npm run build): /ui/ answers 404');

  const secure = (reply: FastifyReply, host: string | undefined): FastifyReply =>
    reply
      .header('Content-Security-Policy', uiContentSecurityPolicy(host, deps.connect))
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .header('X-Frame-Options', 'DENY')
      .header('Cross-Origin-Opener-Policy', 'same-origin');

  const notFound = (reply: FastifyReply, message: string) => reply.status(404).header('Cache-Control', 'no-cache').send({ error: 'not_found', message });

  /** Sends `file` if it is a regular file under the root; false if there is none. */
  const sendFile = async (reply: FastifyReply, file: string, cache: string): Promise<boolean> => {
    try {
      if (!(await stat(file)).isFile()) return false;
      const body = await readFile(file);
      await reply.status(200).header('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream').header('Cache-Control', cache).send(body);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
      throw err;
    }
  };

  const serve = async (rel: string, host: string | undefined, reply: FastifyReply): Promise<FastifyReply> => {
    secure(reply, host);
    const page = rel.replace(/\/$/, '');
    if (HTML_PAGES.has(page)) {
      if (!(await sendFile(reply, join(root, 'index.html'), 'no-cache'))) return notFound(reply, 'the browser UI is not built (npm run build)');
      return reply;
    }
    const file = uiFile(root, rel);
    if (file === undefined || !(await sendFile(reply, file, rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'))) return notFound(reply, `no file /ui/${rel.slice(0, 100)}`);
    return reply;
  };

  const html = { description: 'A page of the browser UI, or one of its files (scripts, styles)', content: { 'text/html': { schema: { type: 'string' } } } };
  const missing = { description: 'No such file (or the UI is not built)', $ref: 'Error#' };
  const doc = { tags: ['ui'], security: [] };

  app.get('/ui', { schema: { ...doc, summary: 'The browser UI\'s first page (as /ui/)', response: { 200: html, 404: missing } } }, async (req, reply) => serve('', req.headers.host, reply));
  app.get<{ Params: { '*': string } }>(
    '/ui/*',
    {
      schema: {
        ...doc,
        summary: 'The browser UI (no token needed: the page asks for it): /ui/ sign-in, /ui/wallboard, /ui/agent, /ui/supervisor, and their files under /ui/assets/',
        params: { type: 'object', properties: { '*': { type: 'string', maxLength: 200 } } },
        response: { 200: html, 404: missing },
      },
    },
    async (req, reply) => serve(req.params['*'], req.headers.host, reply),
  );
}
