/**
 * The part of autocannon's programmatic API that bench/loader.ts uses (the package ships
 * no types). The loader drives the HTTP comparison (app vs bare route); the benchmark
 * reports the ratio of the two, measured in the same run, not the absolute rates.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    /** What a request is built from. */
    interface RequestParams {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
    }
    /** One entry of a connection's request sequence. */
    interface Request extends RequestParams {
      /** Called before each send of this entry; returns the request to send. */
      setupRequest?: (req: RequestParams, context: Record<string, unknown>) => RequestParams;
      /** Called with each response to this entry. */
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
    }
    /** One connection. */
    interface Client {
      setRequests(requests: Request[]): void;
    }
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      amount?: number;
      pipelining?: number;
      /** Seconds. */
      timeout?: number;
      requests?: Request[];
      setupClient?: (client: Client) => void;
    }
    interface Result {
      errors: number;
      timeouts: number;
      non2xx: number;
      resets: number;
      statusCodeStats: Record<string, { count: number }>;
    }
    /** A running load; a thenable of its result. Emits `response` (client, status, bytes, ms). */
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
    }
  }

  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
