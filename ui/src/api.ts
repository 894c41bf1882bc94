/**
 * The REST API as the pages use it: the documented routes with the tab's bearer token, JSON
 * in and out, and a refusal as an {@link ApiError} carrying the server's code and message.
 */
import type { Session } from './session';

/** A refused request: HTTP status, the API's error code and its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** `409 illegal_transition: …`, as the pages show it. */
  get text(): string {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

/** A client of one call center's REST API. */
export class Api {
  constructor(private readonly session: Session) {}

  /** The call center's path prefix. */
  get base(): string {
    return `/callcenter/${encodeURIComponent(this.session.cc)}`;
  }

  /** GET a path under the call center. */
  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** POST a JSON body to a path under the call center. */
  post<T>(path: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  private async request<T>(method: string, path: string, body?: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.session.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, cache: 'no-store', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new ApiError(0, 'network', `the server could not be reached (${err instanceof Error ? err.message : String(err)})`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      json = {};
    }
    if (!res.ok) {
      const e = json as { error?: unknown; message?: unknown };
      throw new ApiError(res.status, typeof e.error === 'string' ? e.error : 'error', typeof e.message === 'string' ? e.message : res.statusText);
    }
    return json as T;
  }
}

/** What `GET me` says of the token. */
export interface Me {
  callcenter: string;
  name: string;
  role: 'admin' | 'supervisor' | 'agent';
  agent: string | null;
  supervisor: string | null;
  queues: string[];
  /** Where the browser softphone registers; null when the server has it off. */
  softphone: { wsUrl: string; domain: string } | null;
}

/** One Not Ready reason of `GET reasons`. */
export interface Reason {
  code: number;
  label: string;
  origin: 'seed' | 'site';
  system: boolean;
}
