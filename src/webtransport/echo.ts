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

/**
 * Counts bytes and holds back the last byte for up to `holdMs`, so that the end of the stream
 * (FIN) leaves together with data. quiche 0.30 can lose a FIN sent alone after its data under
 * congestion (it completes the stream once the data is acknowledged), and the peer then waits
 * for the end forever; the proper fix belongs in native/. Costs at most `holdMs` on the last byte.
 */
function counter(count: (n: number) => void, holdMs = 50): TransformStream<Uint8Array, Uint8Array> {
  let held: Uint8Array | undefined;
  let timer: NodeJS.Timeout | undefined;
  return new TransformStream({
    transform(chunk, controller) {
      count(chunk.byteLength);
      if (chunk.byteLength === 0) return;
      clearTimeout(timer);
      if (held) controller.enqueue(held);
      if (chunk.byteLength > 1) controller.enqueue(chunk.subarray(0, chunk.byteLength - 1));
      held = chunk.subarray(chunk.byteLength - 1);
      timer = setTimeout(() => {
        if (!held) return;
        try {
          controller.enqueue(held);
        } catch {
          // the stream was aborted meanwhile
        }
        held = undefined;
      }, holdMs);
    },
    flush(controller) {
      clearTimeout(timer);
      if (held) controller.enqueue(held);
      held = undefined;
    },
  });
}
