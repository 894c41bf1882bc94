/** Prometheus metrics, on a registry per app so several apps can live in one process (tests, bench). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The metrics ccswitch exports at /metrics. */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  transitions: Counter<'op' | 'to'>;
  deadlines: Counter<'kind' | 'outcome'>;
  facs: Counter<'action' | 'status'>;
  invites: Counter<'outcome'>;
  /** WebSocket event stream: connected clients, events sent, slow-consumer closes. */
  wsClients: Gauge;
  wsEventsSent: Counter;
  wsSlowClosed: Counter;
  /** Trunk outbound addresses: 1 answering OPTIONS (or not pinged), 0 down (app/sip/trunkHealth.ts). */
  trunkAddressUp: Gauge<'trunk' | 'address'>;
  /** OPTIONS pings without an answer (timeout or transport error). */
  trunkPingFailures: Counter<'trunk' | 'address'>;
  /** Carrier registrations: 1 registered, 0 not; read from Redis on each scrape, so every instance reports the same. */
  trunkRegistered: Gauge<'trunk'>;
  /**
   * Where {@link Metrics.trunkRegistered} reads from (set by createApp: the carrier
   * registrations' status in Redis); unset, the gauge is empty.
   */
  trunkRegistrations: { read?: (() => Promise<{ trunk: string; registered: boolean }[]>) | undefined };
}

/** Creates the registry and the metrics; `defaults` adds process metrics (once per process is enough). */
export function createMetrics(defaults: boolean): Metrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'ccswitch_' });
  const trunkRegistrations: Metrics['trunkRegistrations'] = {};
  return {
    registry,
    httpRequests: new Counter({ name: 'ccswitch_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'ccswitch_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    transitions: new Counter({ name: 'ccswitch_agent_transitions_total', help: 'Agent state changes applied, by operation and target state', labelNames: ['op', 'to'], registers: [registry] }),
    facs: new Counter({ name: 'ccswitch_fac_total', help: 'Feature codes dialed, by action and SIP status', labelNames: ['action', 'status'], registers: [registry] }),
    invites: new Counter({ name: 'ccswitch_invites_total', help: 'INVITEs handled, by how they ended', labelNames: ['outcome'], registers: [registry] }),
    deadlines: new Counter({ name: 'ccswitch_deadlines_fired_total', help: 'Deadlines handled, by kind and outcome', labelNames: ['kind', 'outcome'], registers: [registry] }),
    wsClients: new Gauge({ name: 'ccswitch_ws_clients', help: 'WebSocket event clients connected', registers: [registry] }),
    wsEventsSent: new Counter({ name: 'ccswitch_ws_events_sent_total', help: 'Event frames sent to WebSocket clients', registers: [registry] }),
    wsSlowClosed: new Counter({ name: 'ccswitch_ws_slow_consumer_closes_total', help: 'WebSocket clients closed for not reading (4008)', registers: [registry] }),
    trunkAddressUp: new Gauge({ name: 'ccswitch_trunk_address_up', help: 'Trunk outbound address answering OPTIONS pings (1) or down (0), as this instance sees it', labelNames: ['trunk', 'address'], registers: [registry] }),
    trunkPingFailures: new Counter({ name: 'ccswitch_trunk_ping_failures_total', help: 'OPTIONS pings to a trunk address without an answer (timeout or transport error)', labelNames: ['trunk', 'address'], registers: [registry] }),
    trunkRegistered: new Gauge({
      name: 'ccswitch_trunk_registered',
      help: 'Carrier registration of a trunk in force (1) or not (0), from the shared status in Redis',
      labelNames: ['trunk'],
      registers: [registry],
      async collect() {
        if (trunkRegistrations.read === undefined) return;
        try {
          const rows = await trunkRegistrations.read();
          this.reset();
          for (const r of rows) this.set({ trunk: r.trunk }, r.registered ? 1 : 0);
        } catch {
          // Redis unreachable: keep the last values rather than failing the whole scrape.
        }
      },
    }),
    trunkRegistrations,
  };
}
