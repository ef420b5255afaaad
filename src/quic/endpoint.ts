import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  EventKind, native, type NativeEndpoint, type NativeEndpointOptions, type NativeEndpointStats,
  type NativeEvent, type NativeTransportOptions,
} from '../native';
import { QuicConnection } from './connection';
import { QuicError, TransportError } from './errors';

export interface QuicEndpointOptions extends Omit<NativeTransportOptions, 'keylogFile'> {
  /** Address to bind: an IPv4 or IPv6 literal; '::' is dual-stack unless ipv6Only. Default '::'. */
  host?: string;
  /** UDP port; 0 picks a free one. Default 0. */
  port?: number;
  ipv6Only?: boolean;
  /** Server certificate chain and key: PEM text (string or Buffer) or a file path. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** 48-byte session-ticket key (share between endpoints to resume across them). */
  ticketKey?: Buffer;
  retry?: boolean;
  retryTokenLifetime?: number;
  maxConnections?: number;
  qlogDir?: string;
  /** NSS key log file; defaults to $SSLKEYLOGFILE. `false` disables it. */
  keylogFile?: string | false;
  /** Allow outgoing connections (client mode); verification off by default. */
  client?: boolean | { verifyPeer?: boolean; caFile?: string };
  /** Kernel socket buffer size in bytes. Default 8 MiB. */
  socketBufferBytes?: number;
}

export interface ConnectOptions {
  serverName?: string;
  /** A session from `QuicConnection.session()` to resume (and send 0-RTT with earlyData). */
  session?: Buffer;
}

/**
 * A UDP socket with its QUIC connections. Events: 'connection' (QuicConnection, server side,
 * once the handshake is done or 0-RTT started).
 */
export class QuicEndpoint extends EventEmitter {
  readonly native: NativeEndpoint;
  readonly connections = new Map<number, QuicConnection>();
  address: { host: string; port: number; gso: boolean } | undefined;
  private closing = false;

  /** Binds a server endpoint. */
  static async listen(options: QuicEndpointOptions): Promise<QuicEndpoint> {
    const ep = new QuicEndpoint(options);
    ep.bind(options.host ?? '::', options.port ?? 0, options.ipv6Only ?? false, options.socketBufferBytes);
    return ep;
  }

  /** A client-only endpoint (binds an ephemeral port on first connect). */
  static client(options: QuicEndpointOptions): QuicEndpoint {
    return new QuicEndpoint({ ...options, client: options.client ?? true });
  }

  constructor(options: QuicEndpointOptions) {
    super();
    const nativeOptions: NativeEndpointOptions = { ...options, keylogFile: undefined } as NativeEndpointOptions;
    const keylog = options.keylogFile === false ? undefined : options.keylogFile ?? process.env.SSLKEYLOGFILE;
    if (keylog) nativeOptions.keylogFile = keylog;
    const cleanup: string[] = [];
    try {
      if (options.cert !== undefined || options.key !== undefined) {
        if (options.cert === undefined || options.key === undefined) {
          throw new QuicError('HARRIER_ERR_INVALID_ARG', 'cert and key must be given together');
        }
        nativeOptions.server = {
          certFile: pemFile(options.cert, 'cert', cleanup),
          keyFile: pemFile(options.key, 'key', cleanup),
          ticketKey: options.ticketKey,
        };
      }
      if (options.client) nativeOptions.client = options.client === true ? {} : options.client;
      const { Endpoint } = native();
      this.native = new Endpoint(nativeOptions, (events) => this.dispatch(events));
    } finally {
      for (const f of cleanup) fs.rmSync(path.dirname(f), { recursive: true, force: true });
    }
  }

  bind(host: string, port: number, ipv6Only = false, socketBufferBytes?: number): void {
    this.address = this.native.listen(host, port, ipv6Only, socketBufferBytes);
  }

  /** Opens a client connection; 'connect' fires on it once usable. */
  connect(host: string, port: number, options: ConnectOptions = {}): QuicConnection {
    const handle = this.native.connect(host, port, options.serverName ?? 'localhost', options.session);
    const conn = new QuicConnection(this.native, handle, false);
    this.connections.set(handle, conn);
    return conn;
  }

  stats(): NativeEndpointStats {
    return this.native.stats();
  }

  /** Whether this endpoint keeps the process alive (default true). */
  ref(referenced = true): void {
    this.native.ref(referenced);
  }

  /**
   * Closes every connection with `code` (application NO_ERROR by default), waits for them
   * to finish closing (at most `timeoutMs`), then releases the socket.
   */
  async close(options: { code?: number; reason?: string; timeoutMs?: number } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const code = options.code ?? TransportError.NO_ERROR;
    let open = this.native.closeAll(true, code, options.reason ?? 'endpoint closing');
    const deadline = Date.now() + (options.timeoutMs ?? 3000);
    // Closing takes about three PTOs (RFC 9000 §10.2); connections still in their handshake
    // are not visible to JS, so the native count is what we wait on.
    while (open > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      open = this.native.stats().connections;
    }
    this.native.close();
    for (const c of this.connections.values()) {
      c._onClosed({ isApp: true, code, reason: 'endpoint closed', byPeer: false, timedOut: false });
    }
    this.connections.clear();
  }

  private dispatch(events: NativeEvent[]): void {
    for (const e of events) {
      try {
        this.dispatchOne(e);
      } catch (err) {
        // One failing handler must not cost the rest of the batch (other connections).
        if (this.listenerCount('error') > 0) this.emit('error', err);
        else console.error(`harrier: error in a QUIC event handler: ${(err as Error)?.stack ?? err}`);
      }
    }
  }

  private dispatchOne(e: NativeEvent): void {
    {
      switch (e[0]) {
        case EventKind.Connection: {
          let conn = this.connections.get(e[1]);
          const server = !conn;
          if (!conn) {
            conn = new QuicConnection(this.native, e[1], true);
            this.connections.set(e[1], conn);
          }
          conn.info = {
            alpn: e[2], serverName: e[3], remoteAddress: e[4], remotePort: e[5],
            localAddress: e[6], localPort: e[7], resumed: e[8], earlyData: e[9],
          };
          if (server) this.emit('connection', conn);
          else conn.emit('connect', conn.info);
          break;
        }
        case EventKind.StreamData:
          this.connections.get(e[1])?._onStreamData(e[2], e[3], e[4]);
          break;
        case EventKind.StreamReset:
          this.connections.get(e[1])?._onStreamReset(e[2], e[3]);
          break;
        case EventKind.StopSending:
          this.connections.get(e[1])?._onStopSending(e[2], e[3]);
          break;
        case EventKind.Writable:
          this.connections.get(e[1])?._onWritable(e[2]);
          break;
        case EventKind.Datagram:
          this.connections.get(e[1])?.emit('datagram', e[2]);
          break;
        case EventKind.HandshakeDone:
          this.connections.get(e[1])?.emit('handshake');
          break;
        case EventKind.Closed: {
          const conn = this.connections.get(e[1]);
          if (!conn) break;
          this.connections.delete(e[1]);
          conn._onClosed({ isApp: e[2], code: e[3], reason: e[4], byPeer: e[5], timedOut: e[6] });
          break;
        }
      }
    }
  }
}

/** A PEM given as text becomes a private temporary file (quiche loads PEM files). */
function pemFile(value: string | Buffer, name: string, cleanup: string[]): string {
  const text = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  if (!text.includes('-----BEGIN')) {
    if (!fs.existsSync(text)) throw new QuicError(name === 'cert' ? 'HARRIER_ERR_TLS_CERT' : 'HARRIER_ERR_TLS_KEY', `${name} file not found: ${text}`);
    return text;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-pem-'));
  const file = path.join(dir, `${name}.pem`);
  fs.writeFileSync(file, text, { mode: 0o600 });
  cleanup.push(file);
  return file;
}
