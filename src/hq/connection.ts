/**
 * HTTP/0.9 over QUIC (ALPN "hq-interop", the QUIC interop runner's protocol), sans-I/O.
 *
 * A request is one line on a client bidirectional stream, `GET /path` ended by CRLF, LF or the
 * stream's FIN; the response is the raw body followed by FIN. There are no status lines,
 * headers or control streams. Requests come out as the same 'headers' event HTTP/3 emits, so
 * one handler serves both (like aioquic's h0).
 */
import type { H3Event, H3Transport, HeaderField, RequestConnection } from '../h3/types';

export interface HqOptions {
  /** Longest request line accepted, in bytes. Default 8 KiB. */
  maxRequestLineLength?: number;
}

/**
 * The application error code used to reset hq streams. hq-interop defines no error codes, so
 * a malformed request line, a refused request and a peer cancellation all use 0.
 */
export const HQ_ERROR_CODE = 0;

interface HqStream {
  id: number;
  line: string;
  /** The request line was parsed (or the stream abandoned): later bytes are ignored. */
  recvDone: boolean;
  peerEnded: boolean;
  sendClosed: boolean;
}

const REQUEST_LINE = /^GET (\/[\x21-\x7e\x80-\xff]*)$/;
const EMPTY = new Uint8Array(0);

export class HqServerConnection implements RequestConnection {
  private readonly maxLine: number;
  private readonly streams = new Map<number, HqStream>();
  private highestRequestId = -4;
  private goawayId: number | undefined;

  constructor(
    private readonly transport: H3Transport,
    options: HqOptions = {},
  ) {
    this.maxLine = options.maxRequestLineLength ?? 8192;
  }

  /** hq has no streams of its own: nothing to open. */
  start(): void {}

  receiveStreamData(streamId: number, data: Uint8Array, fin: boolean): H3Event[] {
    // Only client bidirectional streams carry requests; hq has no unidirectional streams.
    if (streamId % 4 !== 0) return [];
    const out: H3Event[] = [];
    const s = this.streams.get(streamId) ?? this.open(streamId, out);
    if (fin) s.peerEnded = true;
    if (!s.recvDone) {
      s.line += latin1(data);
      this.parse(s, fin, out);
    }
    this.maybeForget(s);
    return out;
  }

  receiveStreamReset(streamId: number, code: number): H3Event[] {
    const s = this.streams.get(streamId);
    if (!s) return [];
    s.peerEnded = true;
    s.recvDone = true;
    const out: H3Event[] = [];
    if (!s.sendClosed) {
      this.closeSend(s);
      out.push({ type: 'request-cancelled', streamId, code });
    }
    this.maybeForget(s);
    return out;
  }

  receiveStopSending(streamId: number, code: number): H3Event[] {
    const s = this.streams.get(streamId);
    if (!s || s.sendClosed) return [];
    // RFC 9000 §3.5: answer STOP_SENDING with RESET_STREAM, copying its error code.
    s.sendClosed = true;
    this.transport.resetStream(streamId, code);
    this.maybeForget(s);
    return [{ type: 'request-cancelled', streamId, code }];
  }

  /** HTTP/0.9 has no response head: nothing is written. */
  sendHeaders(_streamId: number, _headers: HeaderField[], fin = false): void {
    if (fin) this.end(_streamId);
  }

  sendData(streamId: number, data: Uint8Array, fin = false): void {
    const s = this.sendable(streamId);
    if (!s) return;
    if (data.length > 0 || fin) this.transport.write(streamId, data, fin);
    if (fin) this.finishSend(s);
  }

  /** HTTP/0.9 has no trailers: they are dropped and the response ends. */
  sendTrailers(streamId: number, _headers: HeaderField[]): void {
    this.end(streamId);
  }

  end(streamId: number): void {
    this.sendData(streamId, EMPTY, true);
  }

  resetStream(streamId: number, code: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    if (!s.sendClosed) {
      s.sendClosed = true;
      this.transport.resetStream(streamId, code);
    }
    this.abandon(s, code);
    this.maybeForget(s);
  }

  /** hq has no GOAWAY frame: requests on streams not seen yet are refused from now on. */
  goaway(): void {
    this.goawayId = Math.min(this.highestRequestId + 4, this.goawayId ?? Infinity);
  }

  private open(id: number, out: H3Event[]): HqStream {
    const s: HqStream = { id, line: '', recvDone: false, peerEnded: false, sendClosed: false };
    this.streams.set(id, s);
    if (this.goawayId !== undefined && id >= this.goawayId) this.reject(s, out);
    else if (id > this.highestRequestId) this.highestRequestId = id;
    return s;
  }

  private parse(s: HqStream, fin: boolean, out: H3Event[]): void {
    const nl = s.line.indexOf('\n');
    if (nl < 0 && !fin) {
      if (s.line.length > this.maxLine) this.reject(s, out);
      return;
    }
    let line = nl < 0 ? s.line : s.line.slice(0, nl);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    s.line = '';
    const match = line.length <= this.maxLine ? REQUEST_LINE.exec(line) : null;
    if (!match) return this.reject(s, out);
    s.recvDone = true;
    const headers: HeaderField[] = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', match[1]],
      [':authority', ''],
    ];
    out.push({ type: 'headers', streamId: s.id, headers, fin: true });
  }

  /** A malformed or refused request: reset both directions with HQ_ERROR_CODE. */
  private reject(s: HqStream, out: H3Event[]): void {
    this.abandon(s, HQ_ERROR_CODE);
    this.closeSend(s);
    out.push({ type: 'request-cancelled', streamId: s.id, code: HQ_ERROR_CODE });
  }

  private abandon(s: HqStream, code: number): void {
    if (s.recvDone) return;
    s.recvDone = true;
    s.line = '';
    if (!s.peerEnded) this.transport.stopSending(s.id, code);
  }

  private closeSend(s: HqStream): void {
    if (s.sendClosed) return;
    s.sendClosed = true;
    this.transport.resetStream(s.id, HQ_ERROR_CODE);
  }

  private finishSend(s: HqStream): void {
    s.sendClosed = true;
    this.maybeForget(s);
  }

  private sendable(id: number): HqStream | undefined {
    const s = this.streams.get(id);
    return s && !s.sendClosed ? s : undefined;
  }

  private maybeForget(s: HqStream): void {
    if (s.peerEnded && s.sendClosed) this.streams.delete(s.id);
  }
}

function latin1(data: Uint8Array): string {
  let s = '';
  for (let i = 0; i < data.length; i += 4096) {
    s += String.fromCharCode(...data.subarray(i, Math.min(i + 4096, data.length)));
  }
  return s;
}
