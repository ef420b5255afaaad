import { STATUS_CODES } from 'node:http';

/**
 * An error that becomes an HTTP response: `status` is sent, and `message` only when `expose`
 * (by default for 4xx, never for 5xx). Throw it from middleware or use `ctx.throw()`.
 * `code` is a stable string for programmatic checks.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly expose: boolean;
  readonly code: string;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, message?: string, options: { expose?: boolean; code?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message ?? STATUS_CODES[status] ?? `HTTP ${status}`, { cause: options.cause });
    this.name = 'HttpError';
    this.status = status >= 400 && status <= 599 ? status : 500;
    this.expose = options.expose ?? this.status < 500;
    this.code = options.code ?? `HARRIER_HTTP_${this.status}`;
    this.headers = options.headers;
  }
}

export function isHttpError(e: unknown): e is HttpError {
  return e instanceof HttpError;
}

export function statusText(status: number): string {
  return STATUS_CODES[status] ?? '';
}
