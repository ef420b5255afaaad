/**
import { TransformStream } from 'node:stream/web';
 * The echo endpoint (`harrier serve --webtransport-echo PATH`): every bidirectional stream is
 * echoed on itself, every unidirectional stream on a new unidirectional stream of ours, every
 * datagram in a datagram. Mount it with `server.use(webTransport(path, webTransportEcho()))`.
 */
import type { WebTransportHandler } from './middleware';
import type { WebTransportSession } from './session';

export interface EchoStats {
  bidirectionalStreams: number;
  unidirectionalStreams: number;
  datagrams: number;
  bytes: number;
}

/** An echo handler; `onSession` sees each session (tests read its close code there). */
export function webTransportEcho(options: { onSession?: (session: WebTransportSession, stats: EchoStats) => void } = {}): WebTransportHandler {
  return (session) => {
    const stats: EchoStats = { bidirectionalStreams: 0, unidirectionalStreams: 0, datagrams: 0, bytes: 0 };
    options.onSession?.(session, stats);
    const count = (n: number): void => void (stats.bytes += n);
    void (async () => {
      for await (const s of session.incomingBidirectionalStreams) {
        stats.bidirectionalStreams++;
        s.readable.pipeThrough(counter(count)).pipeTo(s.writable).catch(() => {});
      }
    })().catch(() => {});
    void (async () => {
      for await (const r of session.incomingUnidirectionalStreams) {
        stats.unidirectionalStreams++;
        session.createUnidirectionalStream()
          .then((w) => r.pipeThrough(counter(count)).pipeTo(w))
          .catch(() => r.cancel().catch(() => {}));
      }
    })().catch(() => {});
    void (async () => {
      for await (const d of session.datagrams.readable) {
        stats.datagrams++;
        session.datagrams.write(d);
      }
    })().catch(() => {});
  };
}

function counter(count: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      count(chunk.byteLength);
      controller.enqueue(chunk);
    },
  });
}
