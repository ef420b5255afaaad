import { QuicEndpoint, type QuicEndpointOptions, type QuicStream } from '../../src/quic';

/**
 * Raw QUIC echo on our endpoint (ALPN harrier-echo): every bidirectional stream's bytes go
 * back on the same stream, with backpressure (the incoming side pauses while the outgoing
 * side is queued); every datagram goes back as a datagram.
 */
export async function startEchoServer(options: Omit<QuicEndpointOptions, 'alpn'>): Promise<QuicEndpoint> {
  const ep = await QuicEndpoint.listen({ datagrams: true, ...options, alpn: ['harrier-echo'] });
  ep.on('connection', (conn) => {
    conn.on('stream', (s: QuicStream) => {
      if (!s.bidirectional) return;
      s.on('data', (chunk: Buffer) => {
        if (!s.write(chunk)) {
          s.pause();
          s.once('drain', () => s.resume());
        }
      });
      s.on('end', () => s.end());
    });
    conn.on('datagram', (d: Buffer) => {
      try {
        conn.sendDatagram(d);
      } catch {
        // A full datagram queue drops the echo, as the network could.
      }
    });
  });
  return ep;
}
