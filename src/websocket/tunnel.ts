import { Duplex, type Readable } from 'node:stream';
import type { ResponseSink } from '../http/context';

/**
 * The byte stream of an extended CONNECT (RFC 8441 over HTTP/2, RFC 9220 over HTTP/3) as a
 * socket for the `ws` library: reads come from the request body (the client's DATA frames),
 * writes go out through the response sink (the server's DATA frames).
 *
 * `ws` writes its handshake as an HTTP/1.1 head (`HTTP/1.1 101 Switching Protocols` and its
 * header lines); the first write is turned into the response head of the CONNECT instead:
 * 101 becomes 200 (RFC 8441 §5), any other status is sent as it is and ends the stream.
 */
export class TunnelSocket extends Duplex {
  private readonly body: Readable;
  private readonly sink: ResponseSink;
  private readonly extraHeaders: Array<[string, string]>;
  private headSent = false;
  private ended = false;
  private linger: NodeJS.Timeout | undefined;

  constructor(body: Readable, sink: ResponseSink, extraHeaders: Array<[string, string]> = []) {
    super({ allowHalfOpen: true });
    this.body = body;
    this.sink = sink;
    this.extraHeaders = extraHeaders;
    body.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) body.pause();
    });
    body.once('end', () => {
      clearTimeout(this.linger);
      this.push(null);
    });
    body.once('error', (err) => this.destroy(err));
    body.once('close', () => {
      // The stream went away without its end (reset, connection closed).
      if (!body.readableEnded && !this.destroyed) this.destroy(Object.assign(new Error('the client reset the stream'), { code: 'ECONNRESET' }));
    });
    body.pause();
  }

  override _read(): void {
    this.body.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!this.headSent) {
      this.headSent = true;
      const { status, headers } = parseHead(chunk.toString('latin1'));
      const ok = status === 101;
      this.sink.sendHead(ok ? 200 : status, [...headers, ...this.extraHeaders], !ok);
      if (!ok) this.ended = true;
      callback();
      return;
    }
    if (this.ended) {
      callback(Object.assign(new Error('write after the stream ended'), { code: 'EPIPE' }));
      return;
    }
    this.sink.write(chunk).then(
      (more) => callback(more === false ? Object.assign(new Error('the stream is gone'), { code: 'EPIPE' }) : null),
      (err: Error) => callback(err),
    );
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.ended) {
      this.ended = true;
      this.sink.end();
    }
    // The server's side is done (after the close handshake, as a TCP FIN would be): a client
    // that keeps its side open past LINGER_MS has its stream cancelled (HTTP/2 RST_STREAM
    // NO_ERROR, HTTP/3 STOP_SENDING), as a server closes a half-open TCP connection.
    if (!this.body.readableEnded) {
      this.linger = setTimeout(() => {
        this.sink.stopReading?.();
        this.body.destroy();
      }, LINGER_MS);
      this.linger.unref();
    }
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.linger);
    if (!this.ended) {
      this.ended = true;
      this.sink.abort(err ?? undefined);
    }
    if (!this.body.destroyed) this.body.destroy();
    callback(err);
  }
}

/** How long the client may keep its side open once ours has ended. */
const LINGER_MS = 2000;

const SKIP = new Set(['upgrade', 'connection', 'sec-websocket-accept']);

/** Status and fields of an HTTP/1.1 response head, minus the HTTP/1.1 upgrade fields. */
function parseHead(text: string): { status: number; headers: Array<[string, string]> } {
  const lines = text.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1] ?? 500);
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!SKIP.has(name)) headers.push([name, line.slice(colon + 1).trim()]);
  }
  return { status, headers };
}
