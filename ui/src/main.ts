/**
 * The browser UI's entry: signs the tab in (token typed once, kept in sessionStorage, never
 * in the URL), then opens the page the path names.
 */
import { Api, ApiError, type Me } from './api';
import { h, replace } from './dom';
import { clearSession, loadSession, saveSession, type Session } from './session';
import { pagesFor } from './shell';
import { wallboardPage } from './wallboard';
import { agentPage } from './agent';
import { supervisorPage } from './supervisor';

const root = document.getElementById('app')!;

/** The sign-in form; resolves once the server accepted the token. */
function signIn(message?: string): Promise<{ session: Session; me: Me }> {
  return new Promise((resolve) => {
    const cc = h('input', { id: 'cc', name: 'cc', value: 'default', required: true, autocomplete: 'off', spellcheck: 'false' });
    const token = h('input', { id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off', 'data-testid': 'token' });
    const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'signin-error' }, message ?? '');
    const form = h(
      'form',
      { class: 'signin', method: 'post', action: '#' },
      h('h1', {}, h('span', { class: 'brand' }, 'ccswitch'), ' sign in'),
      h('label', { for: 'cc' }, 'Call center'),
      cc,
      h('label', { for: 'token' }, 'Bearer token'),
      token,
      h('button', { type: 'submit' }, 'Sign in'),
      h('p', { class: 'hint' }, 'The token is kept for this tab only (sessionStorage) and sent in the Authorization header and the event stream\'s first frame, never in the address.'),
      error,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const session = { cc: cc.value.trim(), token: token.value.trim() };
      error.textContent = 'Checking…';
      new Api(session)
        .get<Me>('/me')
        .then((me) => {
          saveSession(session);
          resolve({ session, me });
        })
        .catch((err: unknown) => {
          error.textContent = err instanceof ApiError ? `Refused: ${err.text}` : String(err);
        });
    });
    replace(root, form);
    token.focus();
  });
}

/** The signed-in tab's session, asking for a token when there is none or it is refused. */
async function signedIn(): Promise<{ session: Session; me: Me }> {
  const session = loadSession();
  if (session === undefined) return signIn();
  try {
    return { session, me: await new Api(session).get<Me>('/me') };
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
      clearSession();
      return signIn(`Signed out: ${err.text}`);
    }
    throw err;
  }
}

/** The list of pages the token may open. */
function home(me: Me): void {
  replace(
    root,
    h(
      'div',
      { class: 'home' },
      h('h1', {}, h('span', { class: 'brand' }, 'ccswitch')),
      h('p', {}, `Signed in as ${me.name} (${me.role}) in call center ${me.callcenter}.`),
      h('ul', { class: 'pages' }, pagesFor(me).map((p) => h('li', {}, h('a', { href: p.path }, p.title)))),
      h('button', { type: 'button', class: 'ghost', onclick: () => { clearSession(); location.reload(); } }, 'Sign out'),
    ),
  );
}

async function boot(): Promise<void> {
  const { session, me } = await signedIn();
  const page = location.pathname.replace(/^\/ui\/?/, '').replace(/\/$/, '');
  const onRefused = (why: string): void => {
    clearSession();
    void signIn(`Signed out: ${why}`).then(() => location.reload());
  };
  const ctx = { root, session, me, api: new Api(session), onRefused };
  if (page === 'wallboard') return wallboardPage(ctx);
  if (page === 'agent') return agentPage(ctx);
  if (page === 'supervisor') return supervisorPage(ctx);
  if (location.pathname !== '/ui/') history.replaceState(null, '', '/ui/');
  home(me);
}

boot().catch((err: unknown) => replace(root, h('p', { class: 'error', role: 'alert' }, `The page could not start: ${err instanceof Error ? err.message : String(err)}`)));
