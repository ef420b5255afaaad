/**
 * Server metrics: counters kept by the host as requests run, gauges read from the listeners
 * when asked. `Server.metrics()` returns a `MetricsSnapshot`; `formatPrometheus()` renders
 * one in the Prometheus text exposition format (version 0.0.4).
 */
import type { Protocol } from './http/context';

/** How a connection arrived: QUIC (HTTP/3, hq), TLS over TCP (HTTP/2, HTTP/1.1), cleartext TCP, Unix socket. */
export type Transport = 'quic' | 'tls' | 'tcp' | 'unix';

export const TRANSPORTS: readonly Transport[] = ['quic', 'tls', 'tcp', 'unix'];
export const PROTOCOLS: readonly Protocol[] = ['h3', 'hq', 'h2', 'http/1.1'];

/** A plain, JSON-friendly picture of the server at one moment. */
export interface MetricsSnapshot {
  connections: {
    /** Open connections now (TCP: accepted sockets, TLS handshakes included; QUIC: established). */
    active: Record<Transport, number>;
    /** Connections accepted since listen(). */
    total: Record<Transport, number>;
  };
  requests: {
    /** Requests (HTTP/2 and HTTP/3 streams) being answered now. */
    active: Record<Protocol, number>;
    /** Finished requests by protocol, then by status code ("200", "404"...). */
    total: Record<Protocol, Record<string, number>>;
  };
  /** Failed TLS handshakes: QUIC from the endpoint's count, TLS from 'tlsClientError'. */
  handshakeFailures: Record<'quic' | 'tls', number>;
  /** Request and response body bytes, by protocol (framing and headers not included). */
  bytes: {
    received: Record<Protocol, number>;
    sent: Record<Protocol, number>;
  };
}

/** A record with every key at 0. */
export const zeroes = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/** The counters the host updates as requests run (gauges live in the listeners). */
export class RequestMetrics {
  readonly active = zeroes(PROTOCOLS);
  readonly total = Object.fromEntries(PROTOCOLS.map((p) => [p, {}])) as Record<Protocol, Record<string, number>>;
  readonly received = zeroes(PROTOCOLS);
  readonly sent = zeroes(PROTOCOLS);

  started(protocol: Protocol): void {
    this.active[protocol]++;
  }

  finished(protocol: Protocol, status: number): void {
    this.active[protocol]--;
    const byStatus = this.total[protocol];
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }
}

/** Assembles a snapshot from the request counters and the listeners' connection gauges. */
export function snapshot(requests: RequestMetrics, connections: { active: Record<Transport, number>; total: Record<Transport, number> },
  handshakeFailures: Record<'quic' | 'tls', number>): MetricsSnapshot {
  const copy = <T extends object>(o: T): T => JSON.parse(JSON.stringify(o)) as T;
  return {
    connections: copy(connections),
    requests: { active: { ...requests.active }, total: copy(requests.total) },
    handshakeFailures: { ...handshakeFailures },
    bytes: { received: { ...requests.received }, sent: { ...requests.sent } },
  };
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** Renders a snapshot as Prometheus text (`# HELP`, `# TYPE`, one sample per line). */
export function formatPrometheus(m: MetricsSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Record<string, string>, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${value}`);
    }
  };
  const by = <K extends string>(label: string, rec: Record<K, number>): Array<[Record<string, string>, number]> =>
    (Object.entries(rec) as Array<[string, number]>).map(([k, v]) => [{ [label]: k }, v]);
  family('harrier_connections_active', 'gauge', 'Open connections by transport.', by('transport', m.connections.active));
  family('harrier_connections_total', 'counter', 'Connections accepted by transport.', by('transport', m.connections.total));
  family('harrier_requests_active', 'gauge', 'Requests (streams) being answered, by protocol.', by('protocol', m.requests.active));
  const totals: Array<[Record<string, string>, number]> = [];
  for (const [protocol, byStatus] of Object.entries(m.requests.total)) {
    for (const [status, n] of Object.entries(byStatus)) totals.push([{ protocol, status }, n]);
  }
  family('harrier_requests_total', 'counter', 'Finished requests by protocol and status.', totals);
  family('harrier_handshake_failures_total', 'counter', 'Failed TLS handshakes by transport.', by('transport', m.handshakeFailures));
  family('harrier_received_bytes_total', 'counter', 'Request body bytes received, by protocol.', by('protocol', m.bytes.received));
  family('harrier_sent_bytes_total', 'counter', 'Response body bytes sent, by protocol.', by('protocol', m.bytes.sent));
  return out.join('\n') + '\n';
}
