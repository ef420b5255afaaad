import { Readable } from 'node:stream';
import { Fields } from './fields';
import { HttpError } from './errors';

/** The protocol a request arrived on. */
export type Protocol = 'h3' | 'hq' | 'h2' | 'http/1.1';

/** A response body: text, bytes, a stream, an async iterable of bytes, or a value sent as JSON. */
export type ResponseBody = null | string | Uint8Array | Readable | AsyncIterable<Uint8Array> | object;

/** What a listener provides for each request: how to answer it on its protocol. */
export interface ResponseSink {
  /** The protocol can carry trailers (HTTP/3, HTTP/2; HTTP/1.1 with chunked encoding). */
  readonly supportsTrailers: boolean;
  /** Sends an informational (1xx) response, where the protocol has them. */
  sendInterim(status: number, headers: Array<[string, string]>): void;
  /**
   * Sends the final status and headers; `end` when there is no body. `mayTrail`: trailers may
   * follow the body (HTTP/2 has to know when it sends the head).
   */
  sendHead(status: number, headers: Array<[string, string]>, end: boolean, mayTrail?: boolean): void;
  /**
   * Sends body bytes; resolves once the protocol can take more (backpressure), with false
   * when the exchange is gone (the client cancelled or disconnected) and writing should stop.
   */
  write(chunk: Uint8Array): Promise<void | boolean>;
  /** Ends the response, with trailers when given. */
  end(trailers?: Array<[string, string]>): void;
  /** Sends the last body bytes and ends, in one write where the protocol can (optional). */
  endWith?(chunk: Uint8Array, trailers?: Array<[string, string]>): void;
  /** Aborts the response stream (reset) after an error mid-body. */
  abort(error?: unknown): void;
  /**
   * The rest of the request is not wanted, the response being complete: HTTP/2 RST_STREAM
   * NO_ERROR (RFC 9113 §8.1), HTTP/3 STOP_SENDING H3_NO_ERROR (RFC 9114 §4.1.1).
   */
  stopReading?(): void;
}

export interface RequestInit {
  method: string;
  /** Request target as sent: path and query ("/a/b?c=d"). */
  target: string;
  headers: Fields;
  protocol: Protocol;
  scheme: 'http' | 'https';
  authority: string;
  remoteAddress: string;
  remotePort: number;
  body: Readable;
  /** The trailers, or a function that starts reading them when first asked for. */
  trailers?: Promise<Fields> | (() => Promise<Fields>);
  /** The `:protocol` of an extended CONNECT (RFC 8441, RFC 9220): 'websocket', 'webtransport'. */
  connectProtocol?: string;
  /** The underlying request objects, when the protocol is served by node:http / node:http2. */
  raw?: unknown;
}

/** The incoming request, the same for every protocol. */
export class Request {
  readonly method: string;
  readonly target: string;
  readonly path: string;
  readonly search: string;
  readonly headers: Fields;
  readonly protocol: Protocol;
  /** Scheme and client address; forwarded-header middleware may rewrite them. */
  scheme: 'http' | 'https';
  authority: string;
  remoteAddress: string;
  remotePort: number;
  /** The request body as a stream (empty for bodiless requests). */
  body: Readable;
  readonly raw: unknown;
  /** The `:protocol` of an extended CONNECT (RFC 8441, RFC 9220), e.g. 'websocket'. */
  readonly connectProtocol: string | undefined;
  private trailerSource: Promise<Fields> | (() => Promise<Fields>) | undefined;
  private queryCache: URLSearchParams | undefined;

  constructor(init: RequestInit) {
    this.method = init.method;
    this.target = init.target;
    const q = init.target.indexOf('?');
    this.path = q < 0 ? init.target : init.target.slice(0, q);
    this.search = q < 0 ? '' : init.target.slice(q);
    this.headers = init.headers;
    this.protocol = init.protocol;
    this.scheme = init.scheme;
    this.authority = init.authority;
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this.body = init.body;
    this.raw = init.raw;
    this.connectProtocol = init.connectProtocol;
    this.trailerSource = init.trailers;
  }

  get query(): URLSearchParams {
    this.queryCache ??= new URLSearchParams(this.search);
    return this.queryCache;
  }

  /** Host without port, lowercased. */
  get hostname(): string {
    const a = this.authority;
    if (a.startsWith('[')) return a.slice(0, a.indexOf(']') + 1).toLowerCase();
    const i = a.lastIndexOf(':');
    return (i < 0 ? a : a.slice(0, i)).toLowerCase();
  }

  get(name: string): string | undefined {
    return this.headers.get(name);
  }

  /** Trailers, once the body has been read to its end. */
  trailers(): Promise<Fields> {
    if (typeof this.trailerSource === 'function') this.trailerSource = this.trailerSource();
    this.trailerSource ??= Promise.resolve(new Fields());
    return this.trailerSource;
  }

  /** Reads the whole body; over `limit` bytes it throws 413. */
  async bytes(limit = 1 << 20): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for await (const chunk of this.body) {
      total += (chunk as Buffer).byteLength;
      if (total > limit) {
        this.body.destroy();
        throw new HttpError(413, `request body over ${limit} bytes`, { code: 'HARRIER_ERR_BODY_TOO_LARGE' });
      }
      parts.push(chunk as Buffer);
    }
    return Buffer.concat(parts, total);
  }

  async text(limit?: number): Promise<string> {
    return (await this.bytes(limit)).toString('utf8');
  }
}

/** The response being built; `respond()` sends it once the pipeline has run. */
export class Response {
  status = 404;
  readonly headers = new Fields();
  body: ResponseBody = null;
  /** Trailers sent after the body (where the protocol carries them). */
  trailers: Fields | undefined;
  /** Set once the head has gone out. */
  headersSent = false;
  private explicitStatus = false;
  private readonly sink: ResponseSink;

  constructor(sink: ResponseSink) {
    this.sink = sink;
  }

  /** Sends `100 Continue`, `103 Early Hints` and other 1xx responses before the final one. */
  sendInterim(status: number, headers: Array<[string, string]> = []): void {
    if (status < 100 || status > 199 || status === 101) throw new RangeError('interim status must be 1xx (not 101)');
    if (this.headersSent) return;
    this.sink.sendInterim(status, headers);
  }

  /** 103 Early Hints with `Link` headers (RFC 8297). */
  earlyHints(links: string[]): void {
    this.sendInterim(103, links.map((l) => ['link', l]));
  }

  /** @internal */
  get statusWasSet(): boolean {
    return this.explicitStatus;
  }

  /** @internal */
  markStatus(): void {
    this.explicitStatus = true;
  }

  /** @internal */
  get _sink(): ResponseSink {
    return this.sink;
  }
}

/** Per-request state passed through the middleware. */
export class Context {
  readonly request: Request;
  readonly response: Response;
  private paramsValue: Record<string, string> | undefined;
  private stateValue: Record<string, unknown> | undefined;

  constructor(request: Request, sink: ResponseSink) {
    this.request = request;
    this.response = new Response(sink);
  }

  /** Route parameters (`/users/:id` → params.id). */
  get params(): Record<string, string> {
    return (this.paramsValue ??= {});
  }
  set params(p: Record<string, string>) {
    this.paramsValue = p;
  }

  /** Free space for middleware. */
  get state(): Record<string, unknown> {
    return (this.stateValue ??= {});
  }

  get method(): string { return this.request.method; }
  get path(): string { return this.request.path; }
  get query(): URLSearchParams { return this.request.query; }
  get protocol(): Protocol { return this.request.protocol; }

  get status(): number { return this.response.status; }
  set status(s: number) {
    this.response.status = s;
    this.response.markStatus();
  }

  get body(): ResponseBody { return this.response.body; }
  /** Setting a body makes the status 200 unless one was set (as in Koa). */
  set body(b: ResponseBody) {
    this.response.body = b;
    if (!this.response.statusWasSet) this.response.status = b === null ? 204 : 200;
  }

  /** Sets a response header. */
  set(name: string, value: string | number | readonly string[]): void {
    this.response.headers.set(name, value);
  }

  /** Reads a request header. */
  get(name: string): string | undefined {
    return this.request.headers.get(name);
  }

  /** Throws an HttpError (4xx messages are shown to the client, 5xx are not). */
  throw(status: number, message?: string, options?: { expose?: boolean; code?: string }): never {
    throw new HttpError(status, message, options);
  }
}
