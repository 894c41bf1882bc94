/**
 * The sign-in of this browser tab: the bearer token and call center, typed once and kept in
 * sessionStorage (gone when the tab closes; never in the URL, never in localStorage).
 */

/** What a signed-in tab knows. */
export interface Session {
  cc: string;
  token: string;
}

const KEY = 'ccswitch.session';

/** The tab's session, if signed in. */
export function loadSession(): Session | undefined {
  const raw = sessionStorage.getItem(KEY);
  if (raw === null) return undefined;
  try {
    const s = JSON.parse(raw) as Partial<Session>;
    return typeof s.cc === 'string' && typeof s.token === 'string' && s.token !== '' ? { cc: s.cc, token: s.token } : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the session for this tab. */
export function saveSession(s: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

/** Forgets the session (sign out, or a token the server refused). */
export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
