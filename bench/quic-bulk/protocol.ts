/**
 * What the quic-bulk processes exchange, shared by Harrier's server and client scripts (the
 * @matrixai/quic scripts, plain ESM, speak the same protocol and print the same lines).
 *
 * On the wire (ALPN "bulk"): the client opens bidirectional stream 0, writes `GET <bytes>`
 * and ends it; the server answers with <bytes> bytes and a fin. Once the client has every
 * byte (or its deadline passed) it opens a second stream and writes `DONE`; the server then
 * takes its CPU and connection figures, answers on that stream with them as JSON and ends
 * it; the client closes the connection. Both processes print one `RESULT <json>` line.
 *
 * Times are `process.hrtime.bigint()` in nanoseconds: CLOCK_MONOTONIC, shared by every
 * process of the machine, so the runner subtracts the server's first-write time from the
 * client's last-byte time.
 */

/** The UDP payload that fits a 1500-byte MTU over IPv6: 1500 - 40 (IPv6) - 8 (UDP); IPv4 would allow 1472. */
export const MAX_UDP_PAYLOAD = 1452;
export const ALPN = 'bulk';
export const MiB = 1024 * 1024;

export interface ServerArgs {
  certFile: string;
  keyFile: string;
  /** Congestion control for our server: cubic, reno, bbr2. */
  cc: string;
  /** Seconds after which the process gives up and exits 2. */
  timeoutSec: number;
}

export interface ClientArgs {
  port: number;
  bytes: number;
  /** Stop reading after this many seconds of transfer and report what arrived. */
  deadlineSec: number;
  timeoutSec: number;
}

/** Printed by a server after the DONE stream (also sent to the client). */
export interface ServerResult {
  role: 'server';
  /** hrtime (ns, as a decimal string) of the first stream write of the payload. */
  firstWriteNs: string;
  /** Bytes handed to the QUIC stack. */
  bytesWritten: number;
  /** CPU seconds (user + system) since the server was ready to accept. */
  cpuUser: number;
  cpuSystem: number;
  conn?: Record<string, unknown>;
  endpoint?: Record<string, unknown>;
}

/** Printed by a client at the end. */
export interface ClientResult {
  role: 'client';
  /** hrtime (ns) just before the connect call. */
  connectStartNs: string;
  /** hrtime (ns) when the connection was usable. */
  connectedNs: string;
  /** hrtime (ns) of the last payload byte (or of the deadline). */
  lastByteNs: string;
  bytesReceived: number;
  complete: boolean;
  cpuUser: number;
  cpuSystem: number;
  conn?: Record<string, unknown>;
  server?: ServerResult;
}

export function printResult(r: ServerResult | ClientResult): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

export function cpuSeconds(since: NodeJS.CpuUsage): { cpuUser: number; cpuSystem: number } {
  const u = process.cpuUsage(since);
  return { cpuUser: u.user / 1e6, cpuSystem: u.system / 1e6 };
}

/** Exits with status 2 after `sec` seconds, whatever is still pending. */
export function watchdog(sec: number, who: string): void {
  setTimeout(() => {
    process.stderr.write(`${who}: timed out after ${sec} s\n`);
    process.exit(2);
  }, sec * 1000).unref();
}
