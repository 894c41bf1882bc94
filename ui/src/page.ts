/** What every page gets from the entry. */
import type { Api, Me } from './api';
import type { Session } from './session';

/** A page's context. */
export interface PageContext {
  root: HTMLElement;
  session: Session;
  me: Me;
  api: Api;
  /** The server refused the token on the stream: sign in again. */
  onRefused(why: string): void;
}
