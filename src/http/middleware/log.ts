import type { Middleware } from '../compose';
import type { Context, Protocol, ResponseSink } from '../context';

export interface AccessLogOptions {
  /**
   * 'common': NCSA Common Log Format, `host - - [10/Oct/2000:13:55:36 +0000] "GET /path HTTP/3" 200 2326`.
   * 'json': one object per line: time, remote, method, path (with query), protocol,
   * status, bytes, durationMs, userAgent. Default 'common'.
   */
  format?: 'common' | 'json';
  /** Receives each line, without newline. Default: written to stdout with '\n'. */
  write?: (line: string) => void;
}

/** What is known about a finished exchange. */
export interface AccessLogRecord {
  /** When the request arrived. */
  time: Date;
  remote: string;
  method: string;
  /** Request target: path and query. */
  path: string;
  /** 'HTTP/3', 'HTTP/2', 'HTTP/1.1' or 'HTTP/0.9'. */
  protocol: string;
  status: number;
  /** Response body bytes handed to the protocol. */
  bytes: number;
  /** From the request's arrival to the response's end. */
  durationMs: number;
  userAgent: string | null;
}

const PROTOCOL_NAMES: Record<Protocol, string> = { h3: 'HTTP/3', h2: 'HTTP/2', 'http/1.1': 'HTTP/1.1', hq: 'HTTP/0.9' };
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `10/Oct/2000:13:55:36 +0000` (always UTC). */
export function clfDate(d: Date): string {
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** Quotes, backslashes, control and non-ASCII bytes become \xHH, as nginx writes them, so a line cannot be forged. */
function escapeClf(s: string): string {
  return s.replace(/[\x00-\x1f"\\\x7f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? encodeURIComponent(c).replace(/%/g, '\\x') : `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`;
  });
}

export function formatCommon(r: AccessLogRecord): string {
  return `${escapeClf(r.remote || '-')} - - [${clfDate(r.time)}] "${escapeClf(r.method)} ${escapeClf(r.path)} ${r.protocol}" ${r.status} ${r.bytes > 0 ? r.bytes : '-'}`;
}

export function formatJson(r: AccessLogRecord): string {
  return JSON.stringify({
    time: r.time.toISOString(), remote: r.remote, method: r.method, path: r.path, protocol: r.protocol,
    status: r.status, bytes: r.bytes, durationMs: r.durationMs, userAgent: r.userAgent,
  });
}

/**
 * Access log: one line per exchange, written once the response has ended (or was aborted),
 * so the status is the one actually sent, the byte count is the body that went out and
 * the duration covers streaming it. Put it first so that it sees every request.
 */
export function accessLog(options: AccessLogOptions = {}): Middleware<Context> {
  const format = options.format === 'json' ? formatJson : formatCommon;
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const time = new Date();
    let status: number | undefined;
    let bytes = 0;
    let logged = false;
    const log = (): void => {
      if (logged) return;
      logged = true;
      const req = ctx.request;
      write(format({
        time,
        remote: req.remoteAddress,
        method: req.method,
        path: req.target,
        protocol: PROTOCOL_NAMES[req.protocol] ?? req.protocol,
        status: status ?? ctx.response.status,
        bytes,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1000) / 1000,
        userAgent: req.headers.get('user-agent') ?? null,
      }));
    };
    // The response goes out through the listener's sink after the whole pipeline has run
    // (respond()), so the sink is what sees the real status, the bytes and the end.
    const res = ctx.response as unknown as { sink: ResponseSink };
    const inner = res.sink;
    if (inner) {
      res.sink = {
        get supportsTrailers() { return inner.supportsTrailers; },
        sendInterim: (s, h) => inner.sendInterim(s, h),
        sendHead: (s, h, end, mayTrail) => {
          status = s;
          inner.sendHead(s, h, end, mayTrail);
          if (end) log();
        },
        write: (chunk) => {
          bytes += chunk.byteLength;
          return inner.write(chunk);
        },
        end: (trailers) => {
          inner.end(trailers);
          log();
        },
        endWith: inner.endWith && ((chunk, trailers) => {
          bytes += chunk.byteLength;
          inner.endWith!(chunk, trailers);
          log();
        }),
        abort: (err) => {
          inner.abort(err);
          log();
        },
        stopReading: inner.stopReading && (() => inner.stopReading!()),
      };
    }
    try {
      await next();
    } finally {
      // Something answered without the sink (or there is none to wrap): log what is known now.
      if (!inner || (ctx.response.headersSent && status === undefined)) log();
    }
  };
}
