import * as http2 from 'node:http2';
import { Readable } from 'node:stream';
import { Request, type ResponseSink } from '../http/context';
import { httpDate } from '../http/date';
import { Fields, toHeaderObject } from '../http/fields';
import { drainOrClose } from '../util/drain';

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** Connection-specific header fields, not allowed in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

const NO_TRAILERS: Promise<Fields> = Promise.resolve(new Fields());
const MORE: Promise<void> = Promise.resolve();
const GONE: Promise<boolean> = Promise.resolve(false);

/** Where an HTTP/2 connection's requests come from, read once per session (its socket is a proxy). */
export interface Peer {
  address: string;
  port: number;
}

/**
 * One HTTP/2 request, straight from node's core stream API (not the Http2ServerRequest /
 * Http2ServerResponse compatibility objects, which cost about as much again per request):
 * the stream is the request body, and `h2Sink` answers on it.
 */
export function h2Request(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[], peer: Peer, scheme: 'http' | 'https'): Request {
  // nghttp2 refuses a field name with uppercase letters (RFC 9113 §8.2.1): no lowercasing here.
  const fields = Fields.fromLowercasePairs(raw);
  const method = (headers[':method'] as string | undefined) ?? 'GET';
  const authority = (headers[':authority'] as string | undefined) ?? fields.get('host') ?? '';
  // A classic CONNECT has no :path; its target is the authority (RFC 9113 §8.5).
  const target = (headers[':path'] as string | undefined) ?? (method === 'CONNECT' ? authority : '/');
  return new Request({
    method,
    target,
    headers: fields,
    protocol: 'h2',
    scheme,
    authority,
    remoteAddress: peer.address,
    remotePort: peer.port,
    // Without a body the stream itself stands for it (nothing to read); with one, a reader whose
    // destroy() only stops reading: the response can still go out on the stream.
    body: stream.endAfterHeaders ? (stream as Readable) : new H2Body(stream),
    trailers: stream.endAfterHeaders ? NO_TRAILERS : h2Trailers(stream),
    connectProtocol: headers[':protocol'] as string | undefined,
    raw: { stream, headers },
  });
}

/**
 * An HTTP/2 request body: the stream's DATA, read from the stream once someone reads this (so
 * a protocol that takes the stream over, WebTransport, is never raced). Destroying it stops
 * reading and leaves the stream open for the response; the sink then refuses the rest of the
 * request with RST_STREAM NO_ERROR once the response is complete.
 */
class H2Body extends Readable {
  private attached = false;
  private ended = false;

  constructor(private readonly stream: http2.ServerHttp2Stream) {
    super();
  }

  override _read(): void {
    if (this.attached) {
      this.stream.resume();
      return;
    }
    this.attached = true;
    const stream = this.stream;
    stream.on('data', this.onData);
    stream.once('end', this.onEnd);
    stream.once('close', this.onClose);
    stream.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.detach();
    callback(err);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.stream.pause();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.detach();
    this.push(null);
  };

  private readonly onClose = (): void => {
    // The stream closed without its end: the client reset it, or the connection went away.
    if (!this.ended && !this.destroyed) this.destroy(Object.assign(new Error('the client reset the request stream'), { code: 'ECONNRESET' }));
  };

  private detach(): void {
    if (!this.attached) return;
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onClose);
    if (!this.ended) this.stream.pause();
  }
}

/** The request's trailers (a HEADERS frame after its DATA), read when asked for. */
function h2Trailers(stream: http2.ServerHttp2Stream): () => Promise<Fields> {
  let got: Fields | undefined;
  // Trailers carry no pseudo-header fields (RFC 9113 §8.1; nghttp2 refuses them).
  stream.once('trailers', (t: http2.IncomingHttpHeaders) => (got = new Fields(t)));
  return () => new Promise<Fields>((resolve) => {
    const done = (): void => resolve(got ?? new Fields());
    if (stream.readableEnded || stream.destroyed) done();
    else {
      stream.once('end', done);
      stream.once('close', done);
    }
  });
}

/**
 * Answers one HTTP/2 request on its stream. `altSvc` is added to every response that has
 * none (the HTTP/3 advertisement); `tunnel`: the request is a CONNECT, its stream carries a
 * tunnel. A class rather than a literal of closures: this is made once per request.
 */
export class H2Sink implements ResponseSink {
  readonly supportsTrailers = true;
  /** The head said trailers may follow: the stream waits for 'wantTrailers'. */
  private trailing = false;
  private trailers: http2.OutgoingHttpHeaders | undefined;

  constructor(private readonly stream: http2.ServerHttp2Stream, private readonly altSvc: string | undefined, private readonly tunnel: boolean) {}

  sendInterim(status: number, headers: Array<[string, string]>): void {
    const stream = this.stream;
    if (stream.destroyed || stream.headersSent) return;
    stream.additionalHeaders(toHeaderObject(headers, { ':status': status }));
  }

  sendHead(status: number, headers: Array<[string, string]>, end: boolean, mayTrail?: boolean): void {
    const stream = this.stream;
    if (stream.destroyed || stream.headersSent) return;
    const obj = toHeaderObject(headers, { ':status': status } as http2.OutgoingHttpHeaders, CONNECTION_SPECIFIC);
    const altSvc = this.altSvc;
    if (altSvc && obj['alt-svc'] === undefined) obj['alt-svc'] = altSvc;
    // RFC 9110 §6.6.1. Node would add one, but from inside respond(): there, on this server,
    // V8 missed its property-store cache on every response (a runtime call per request).
    if (obj.date === undefined) obj.date = httpDate();
    // Unless told there will be none, the stream ends with trailers (an empty set is a DATA
    // frame with END_STREAM): a tunnel (extended CONNECT) that is reset then never shows
    // a clean end first.
    const trailing = (this.trailing = !end && mayTrail !== false);
    try {
      stream.respond(obj, trailing ? WAIT_FOR_TRAILERS : end ? END_STREAM : NO_END);
    } catch (err) {
      // A field node refuses (a connection-specific one such as `te: gzip`): no answer can go.
      closeLater(stream, NGHTTP2_INTERNAL_ERROR);
      throw err;
    }
    if (trailing) {
      stream.once('wantTrailers', () => {
        stream.sendTrailers(this.trailers ?? {});
        // Only now: a reset before them would drop the trailers.
        this.complete();
      });
    }
    if (end) this.complete();
  }

  write(chunk: Uint8Array): Promise<void | boolean> {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return GONE;
    if (stream.write(chunk)) return MORE;
    return drainOrClose(stream);
  }

  end(trailers?: Array<[string, string]>): void {
    this.finish(undefined, trailers);
  }

  endWith(chunk: Uint8Array, trailers?: Array<[string, string]>): void {
    this.finish(chunk, trailers);
  }

  abort(): void {
    closeLater(this.stream, NGHTTP2_INTERNAL_ERROR);
  }

  stopReading(): void {
    closeLater(this.stream, NGHTTP2_NO_ERROR);
  }

  private finish(chunk: Uint8Array | undefined, list: Array<[string, string]> | undefined): void {
    const stream = this.stream;
    if (stream.destroyed || stream.writableEnded) return;
    if (!stream.headersSent) stream.respond({ ':status': 200 });
    if (this.trailing && list && list.length > 0) this.trailers = toHeaderObject(list, {});
    if (chunk) stream.end(chunk);
    else stream.end();
    if (!this.trailing) this.complete();
  }

  /**
   * RFC 9113 §8.1: a complete response may precede the end of the request; the rest is refused
   * with RST_STREAM NO_ERROR. Not for a tunnel (extended CONNECT): the end of our side is a
   * half-close there, and the tunnel decides when to stop reading.
   */
  private complete(): void {
    const stream = this.stream;
    if (!this.tunnel && !stream.endAfterHeaders && !stream.readableEnded && !stream.closed) closeLater(stream, NGHTTP2_NO_ERROR);
  }
}

// respond() copies its options with a spread, which V8 does on a slow path for a frozen
// object: plain objects (never modified), and none for the default.
const WAIT_FOR_TRAILERS = { endStream: false, waitForTrailers: true };
const END_STREAM = { endStream: true, waitForTrailers: false };
const NO_END = undefined;

/**
 * RST_STREAM from the next turn of the event loop: node 20 sends it at once, and doing that
 * while nghttp2 is still processing the received data that led to it (a 'data' or 'end'
 * handler up the stack) can corrupt the session and spin it (nodejs/node#64113).
 */
function closeLater(stream: http2.ServerHttp2Stream, code: number): void {
  setImmediate(() => {
    if (!stream.closed && !stream.destroyed) stream.close(code);
  });
}
