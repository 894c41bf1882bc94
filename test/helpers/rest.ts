/** A REST client for a running instance's HTTP port, with the test configuration's token. */
import type { App } from '../../app/createApp';

/** `rest(method, path, json?)`: the status and parsed JSON body of one request. */
export type Rest = (method: string, path: string, json?: unknown) => Promise<{ status: number; body: any }>;

/** A client of `app` (call once its HTTP server listens). */
export function restClient(app: App, token = 'test-token-0123456789'): Rest {
  return async (method, path, json) => {
    const addr = app.http.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}
