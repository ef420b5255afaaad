import { Readable } from 'node:stream';
import { H3ServerConnection, H3_INTERNAL_ERROR, H3_NO_ERROR, type H3Event, type H3Options, type H3Transport, type RequestConnection } from '../h3';
import { HqServerConnection } from '../hq';
import { App } from '../http/app';
import { Context, Request, type Protocol, type ResponseSink } from '../http/context';
import { httpDate } from '../http/date';
import { Fields } from '../http/fields';
import { offerWebSocket } from '../websocket/route';
import { QuicEndpoint, type QuicConnection, type QuicEndpointOptions, type QuicStream } from '../quic';
import { WebTransportDriver, attachWebTransportSession, type WebTransportOptions, type WebTransportSession } from '../webtransport';

/** Bytes queued per response stream before the writer waits for the connection. */
const HIGH_WATER = 256 * 1024;
const EMPTY = new Uint8Array(0);

export interface QuicListenerOptions extends Omit<QuicEndpointOptions, 'alpn'> {
  /** HTTP/3 settings (field section size, QPACK table, extended CONNECT...). */
  h3?: H3Options;
  /** Also offer HTTP/0.9 over QUIC (ALPN hq-interop), for the interop runner. Default true. */
  hq?: boolean;
  /** Most concurrent requests per connection (QUIC bidirectional stream limit). Default 100. */
  maxConcurrentStreams?: number;
  /**
   * Serve WebTransport over HTTP/3 (extended CONNECT, HTTP datagrams, WebTransport streams):
   * turns on QUIC datagrams and the HTTP/3 settings. Sessions reach the pipeline as CONNECT
   * requests (see webTransport() in src/webtransport). Default off.
   */
  webtransport?: boolean | WebTransportOptions;
}

interface Exchange {
  stream: QuicStream;
  body: Readable;
  resolveTrailers: (f: Fields) => void;
  cancelled: boolean;
  /** The client finished its request (FIN or trailers). */
  peerDone: boolean;
}

/** Serves an App over HTTP/3 (and HTTP/0.9) on one QUIC endpoint. */
export class QuicListener {
  readonly endpoint: QuicEndpoint;
  private readonly app: App;
  private readonly options: QuicListenerOptions;
  private readonly sessions = new Set<RequestConnection>();
  /** WebTransport sessions per HTTP/3 connection (with options.webtransport). */
  private readonly webtransport = new Set<WebTransportDriver>();
  /** Requests being answered, for graceful shutdown. */
  inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  /** After goaway(): connections that complete their handshake now are closed at once. */
  private draining = false;

  static async listen(app: App, options: QuicListenerOptions): Promise<QuicListener> {
    const alpn = ['h3', ...(options.hq === false ? [] : ['hq-interop'])];
    const wt = options.webtransport ? true : undefined;
    const endpoint = await QuicEndpoint.listen({
      initialMaxStreamsBidi: options.maxConcurrentStreams ?? 100,
      // WebTransport: client uni streams carry data too, and datagrams must be on (RFC 9297 §2.1.1).
      initialMaxStreamsUni: wt ? 100 : 16,
      ...options,
      ...(wt ? { datagrams: true } : {}),
      alpn,
    });
    return new QuicListener(app, endpoint, options);
  }

  constructor(app: App, endpoint: QuicEndpoint, options: QuicListenerOptions) {
    this.app = app;
    this.endpoint = endpoint;
    this.options = options;
    endpoint.on('connection', (conn: QuicConnection) => this.serve(conn));
  }

  get port(): number {
    return this.endpoint.address?.port ?? 0;
  }

  /** Graceful shutdown, step 1: GOAWAY on every connection; new requests are refused. */
  goaway(): void {
    this.draining = true;
    for (const s of this.sessions) s.goaway();
    for (const w of this.webtransport) w.goaway();
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Closes every connection (H3_NO_ERROR) and releases the socket. */
  close(): Promise<void> {
    return this.endpoint.close({ code: H3_NO_ERROR, reason: 'server shutting down' });
  }

  private serve(conn: QuicConnection): void {
    if (this.draining) {
      conn.close(H3_NO_ERROR, 'server shutting down');
      return;
    }
    const transport: H3Transport = {
      write: (id, data, fin) => {
        const s = conn.stream(id);
        if (!s.writeEnded) s.write(data, fin);
      },
      resetStream: (id, code) => conn.resetStream(id, code),
      stopSending: (id, code) => conn.stopSending(id, code),
      close: (code, reason) => conn.close(code, reason),
      sendDatagram: WebTransportDriver.datagramSender(conn),
    };
    const protocol: Protocol = conn.alpn === 'h3' ? 'h3' : 'hq';
    // WebTransport hook: the driver sees HTTP/3 events first (see src/webtransport/driver.ts).
    const wtOptions = this.options.webtransport === true ? {} : this.options.webtransport || undefined;
    const h3Options = wtOptions ? { webTransportMaxSessions: wtOptions.maxSessions ?? 16, ...this.options.h3 } : this.options.h3;
    const h3 = protocol === 'h3' ? new H3ServerConnection(transport, h3Options) : undefined;
    const session: RequestConnection = h3 ?? new HqServerConnection(transport);
    const wt = h3 && wtOptions ? new WebTransportDriver(conn, h3, wtOptions) : undefined;
    if (wt) {
      this.webtransport.add(wt);
      conn.on('datagram', (d: Buffer) => dispatch(h3!.receiveDatagram(d)));
    }
    this.sessions.add(session);
    const exchanges = new Map<number, Exchange>();
    conn.on('close', () => {
      if (wt) {
        this.webtransport.delete(wt);
        wt.closed('the connection closed');
      }
      this.sessions.delete(session);
      for (const ex of exchanges.values()) this.cancel(ex);
      exchanges.clear();
    });
    const dispatch = (events: H3Event[]): void => {
      for (const e of events) if (!wt?.event(e)) this.onEvent(conn, session, protocol, exchanges, e, wt);
    };
    const attach = (s: QuicStream): void => {
      s.on('data', (d: Buffer) => dispatch(session.receiveStreamData(s.id, d, false)));
      s.on('end', () => dispatch(session.receiveStreamData(s.id, EMPTY, true)));
      s.on('reset', (code: number | bigint) => dispatch(session.receiveStreamReset(s.id, Number(code))));
      s.on('stop', (code: number | bigint) => dispatch(session.receiveStopSending(s.id, Number(code))));
    };
    conn.on('stream', attach);
    // Streams we open (WebTransport's, HTTP/3's own control and QPACK streams) hear from the peer
    // too: data and FIN on a server-opened bidirectional stream, STOP_SENDING on any of ours
    // (on a critical stream that is H3_CLOSED_CRITICAL_STREAM, RFC 9114 §6.2.1).
    conn.on('open', attach);
    session.start();
  }

  private onEvent(conn: QuicConnection, session: RequestConnection, protocol: Protocol, exchanges: Map<number, Exchange>, e: H3Event, wt?: WebTransportDriver): void {
    switch (e.type) {
      case 'headers':
        this.startRequest(conn, session, protocol, exchanges, e.streamId, e.headers, e.fin, wt);
        break;
      case 'data': {
        const ex = exchanges.get(e.streamId);
        if (!ex) break;
        if (e.data.byteLength > 0 && !ex.body.push(e.data)) ex.stream.pause();
        if (e.fin) {
          ex.peerDone = true;
          ex.body.push(null);
          ex.resolveTrailers(new Fields());
        }
        break;
      }
      case 'trailers': {
        const ex = exchanges.get(e.streamId);
        if (!ex) break;
        ex.peerDone = true;
        ex.resolveTrailers(new Fields(e.headers));
        ex.body.push(null);
        break;
      }
      case 'request-cancelled': {
        const ex = exchanges.get(e.streamId);
        if (ex) this.cancel(ex);
        break;
      }
      default:
        break;
    }
  }

  private cancel(ex: Exchange): void {
    if (ex.cancelled) return;
    ex.cancelled = true;
    if (!ex.body.readableEnded) {
      // A handler reading the body sees the error; one that is not reading loses nothing.
      if (ex.body.listenerCount('error') === 0) ex.body.on('error', () => {});
      ex.body.destroy(Object.assign(new Error('request cancelled by the client'), { code: 'HARRIER_ERR_REQUEST_CANCELLED' }));
    }
    ex.resolveTrailers(new Fields());
  }

  private startRequest(conn: QuicConnection, session: RequestConnection, protocol: Protocol,
    exchanges: Map<number, Exchange>, streamId: number, fields: Array<[string, string]>, fin: boolean, wt?: WebTransportDriver): void {
    // WebTransport hook: an extended CONNECT for a session (its capsules go to the session, not the body).
    const wtSession: WebTransportSession | 'rejected' | undefined = wt?.connectRequest(streamId, fields);
    if (wtSession === 'rejected') return;
    if (wtSession) fin = true;
    const stream = conn.stream(streamId);
    const headers = new Fields();
    let method = 'GET';
    let path = '/';
    let authority = '';
    let scheme: 'http' | 'https' = 'https';
    let connectProtocol: string | undefined;
    for (const [name, value] of fields) {
      if (name.charCodeAt(0) !== 0x3a /* ':' */) headers.append(name, value);
      else if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':authority') authority = value;
      else if (name === ':scheme') scheme = value === 'http' ? 'http' : 'https';
      else if (name === ':protocol') connectProtocol = value;
    }
    if (!authority) authority = headers.get('host') ?? '';
    const body = new Readable({ read: () => stream.resume() });
    let resolveTrailers!: (f: Fields) => void;
    const trailers = new Promise<Fields>((resolve) => (resolveTrailers = resolve));
    const ex: Exchange = { stream, body, resolveTrailers, cancelled: false, peerDone: fin };
    exchanges.set(streamId, ex);
    if (fin) {
      body.push(null);
      resolveTrailers(new Fields());
    }
    const info = conn.info!;
    const request = new Request({
      method, target: path, headers, protocol, scheme, authority,
      remoteAddress: info.remoteAddress, remotePort: info.remotePort, body, trailers, connectProtocol,
    });
    // RFC 9220: a WebSocket over this request stream.
    if (connectProtocol === 'websocket' && method === 'CONNECT') offerWebSocket(request, { hub: this.app.webSockets });
    const baseSink = this.sink(session, protocol, stream, ex);
    if (wtSession) attachWebTransportSession(request, wtSession);
    const ctx = new Context(request, wtSession ? wt!.sink(wtSession, streamId, baseSink) : baseSink);
    this.inFlight++;
    void this.app.handle(ctx).finally(() => {
      exchanges.delete(streamId);
      if (wtSession && !wtSession.accepted) wtSession._rejected(ctx.response.status);
      // The handler answered without reading the whole body: stop the upload
      // (RFC 9114 §4.1.1 allows a complete response before the request ends).
      if (!wtSession?.accepted) baseSink.stopReading!();
      if (--this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private sink(session: RequestConnection, protocol: Protocol, stream: QuicStream, ex: Exchange): ResponseSink {
    const id = stream.id;
    const head = (status: number, headers: Array<[string, string]>): Array<[string, string]> => [[':status', String(status)], ...headers];
    // HTTP/0.9 has no framing, so its end is a bare FIN, which quiche 0.30 can lose (see
    // h3/connection.ts): the last chunk is held back and carries the FIN instead.
    let held: Uint8Array | undefined;
    const hold = protocol === 'hq';
    return {
      supportsTrailers: protocol === 'h3',
      sendInterim: (status, headers) => {
        if (!ex.cancelled) session.sendHeaders(id, head(status, headers), false);
      },
      sendHead: (status, headers, end) => {
        if (ex.cancelled) return;
        const fields = head(status, headers);
        // RFC 9110 §6.6.1: an origin server with a clock sends Date (node does on HTTP/1.1 and HTTP/2).
        if (!headers.some(([name]) => name === 'date')) fields.push(['date', httpDate()]);
        session.sendHeaders(id, fields, end);
      },
      write: async (chunk) => {
        if (ex.cancelled) return false;
        if (hold) [chunk, held] = [held ?? new Uint8Array(0), chunk];
        if (chunk.byteLength > 0) session.sendData(id, chunk, false);
        if (stream.writableLength > HIGH_WATER) await stream.drained();
        return !ex.cancelled;
      },
      end: (trailers) => {
        if (ex.cancelled) return;
        if (held) session.sendData(id, held, true);
        else if (trailers && trailers.length > 0) session.sendTrailers(id, trailers);
        else session.end(id);
        held = undefined;
      },
      abort: () => {
        if (!ex.cancelled) session.resetStream(id, H3_INTERNAL_ERROR);
        ex.cancelled = true;
      },
      stopReading: () => {
        if (ex.peerDone || ex.cancelled) return;
        ex.peerDone = true;
        stream.stopSending(H3_NO_ERROR);
        ex.body.destroy();
      },
    };
  }
}
