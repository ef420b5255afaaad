#!/usr/bin/env python3
"""An interop-runner client built on aioquic 1.7.2 (independent of Harrier).

It follows the runner's client contract, like the official client images:
  TESTCASE       handshake, transfer, retry, http3, resumption, zerortt, keyupdate,
                 chacha20, multiconnect, v2 (anything else exits 127)
  REQUESTS       space-separated URLs (all on one host:port)
  DOWNLOADS      where each body is written as DOWNLOADS/<path> (default /downloads)
  SSLKEYLOGFILE  TLS key log, QLOGDIR qlog directory (both optional)
  SERVER_NAME    TLS server name (default: the URL host)

Behaviour per test (as aioquic's own interop image drives examples/http3_client.py):
  - hq-interop (HTTP/0.9) everywhere except http3 (h3); all requests of one connection
    go out in parallel;
  - resumption / zerortt: the first URL on a first connection, then the rest on a second
    connection resuming the session ticket (zerortt: requests queued before the handshake,
    so they travel as 0-RTT);
  - multiconnect: one connection per URL, one after the other;
  - keyupdate: a key update is requested as soon as the handshake completes;
  - chacha20: TLS_CHACHA20_POLY1305_SHA256 is the only cipher suite offered;
  - transfer: small flow-control windows (the runner's clients use them to stress the
    server's flow control): 256 KiB per stream, 1 MiB per connection.
Exit status 0 when every download completed, 1 otherwise, 127 for unsupported tests.
"""

import asyncio
import logging
import os
import ssl
import sys
import time
from urllib.parse import urlparse

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h0.connection import H0_ALPN, H0Connection
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted
from aioquic.quic.logger import QuicFileLogger
from aioquic.quic.packet import QuicProtocolVersion
from aioquic.tls import CipherSuite

SUPPORTED = {
    "handshake", "transfer", "retry", "http3", "resumption", "zerortt", "keyupdate",
    "chacha20", "multiconnect", "v2",
}
log = logging.getLogger("aioquic-interop")


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        alpn = self._quic.configuration.alpn_protocols[0]
        self._http = H0Connection(self._quic) if alpn.startswith("hq-") else H3Connection(self._quic)
        self._files = {}
        self._waiters = {}
        self._status = {}
        self.key_update = False
        self.handshake = None

    def request(self, url, download_dir):
        u = urlparse(url)
        path = u.path or "/"
        stream_id = self._quic.get_next_available_stream_id()
        self._http.send_headers(
            stream_id=stream_id,
            headers=[
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", u.netloc.encode()),
                (b":path", path.encode()),
            ],
            end_stream=True,
        )
        name = os.path.basename(path)
        self._files[stream_id] = open(os.path.join(download_dir, name), "wb")
        fut = self._loop.create_future()
        self._waiters[stream_id] = fut
        self.transmit()
        return fut

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            self.handshake = event
        for h in self._http.handle_event(event):
            f = self._files.get(h.stream_id)
            if f is None:
                continue
            if isinstance(h, HeadersReceived):
                for k, v in h.headers:
                    if k == b":status":
                        self._status[h.stream_id] = int(v)
            elif isinstance(h, DataReceived):
                f.write(h.data)
                # As aioquic's interop client: update keys once response data flows, when
                # the handshake is surely confirmed (RFC 9001 §6: not before).
                if self.key_update:
                    log.info("requesting a key update")
                    self.request_key_update()
                    self.key_update = False
            if getattr(h, "stream_ended", False):
                f.close()
                del self._files[h.stream_id]
                status = self._status.get(h.stream_id, 200)
                fut = self._waiters.pop(h.stream_id)
                if status == 200:
                    fut.set_result(True)
                else:
                    fut.set_exception(RuntimeError(f"stream {h.stream_id}: status {status}"))
        if isinstance(event, ConnectionTerminated):
            for fut in self._waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"connection closed: {event.error_code:#x} {event.reason_phrase}"))
            self._waiters.clear()


def configuration(testcase, host, tickets):
    cfg = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN if testcase == "http3" else H0_ALPN,
        verify_mode=ssl.CERT_NONE,
        server_name=os.environ.get("SERVER_NAME") or host,
        max_datagram_size=1452,
    )
    if testcase == "transfer":
        cfg.max_stream_data = 256 * 1024
        cfg.max_data = 1024 * 1024
    if testcase == "chacha20":
        cfg.cipher_suites = [CipherSuite.CHACHA20_POLY1305_SHA256]
    if testcase == "v2":
        cfg.supported_versions = [QuicProtocolVersion.VERSION_2, QuicProtocolVersion.VERSION_1]
        cfg.original_version = QuicProtocolVersion.VERSION_1
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog:
        cfg.secrets_log_file = open(keylog, "a")
    qlog = os.environ.get("QLOGDIR")
    if qlog:
        os.makedirs(qlog, exist_ok=True)
        cfg.quic_logger = QuicFileLogger(qlog)
    if tickets:
        cfg.session_ticket = tickets[-1]
    return cfg


async def run_connection(testcase, host, port, urls, download_dir, tickets, zero_rtt=False):
    got_ticket = asyncio.Event()

    def on_ticket(ticket):
        tickets.append(ticket)
        got_ticket.set()

    cfg = configuration(testcase, host, tickets if zero_rtt or testcase in ("resumption", "zerortt") else None)
    started = time.monotonic()
    async with connect(
        host, port, configuration=cfg, create_protocol=Client,
        session_ticket_handler=on_ticket, wait_connected=not zero_rtt,
    ) as client:
        client.key_update = testcase == "keyupdate"
        await asyncio.gather(*[client.request(u, download_dir) for u in urls])
        if testcase in ("resumption", "zerortt") and not tickets:
            try:
                await asyncio.wait_for(got_ticket.wait(), 5)
            except asyncio.TimeoutError:
                raise RuntimeError("no session ticket within 5 s")
        hs = client.handshake
        log.info(
            "connection done in %.2fs: %d files, resumed=%s early_data_accepted=%s",
            time.monotonic() - started, len(urls),
            hs.session_resumed if hs else None, hs.early_data_accepted if hs else None,
        )
        client.close()
        await client.wait_closed()


async def main():
    testcase = os.environ.get("TESTCASE", "")
    if testcase not in SUPPORTED:
        print(f"unsupported test case: {testcase}", file=sys.stderr)
        return 127
    urls = os.environ.get("REQUESTS", "").split()
    if not urls:
        print("REQUESTS is empty", file=sys.stderr)
        return 1
    download_dir = os.environ.get("DOWNLOADS", "/downloads")
    u = urlparse(urls[0])
    host, port = u.hostname, u.port or 443
    tickets = []
    if testcase == "multiconnect":
        for url in urls:
            await run_connection(testcase, host, port, [url], download_dir, [])
    elif testcase in ("resumption", "zerortt"):
        await run_connection(testcase, host, port, urls[:1], download_dir, tickets)
        await run_connection(testcase, host, port, urls[1:], download_dir, tickets, zero_rtt=testcase == "zerortt")
    else:
        await run_connection(testcase, host, port, urls, download_dir, tickets)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        sys.exit(asyncio.run(main()))
    except Exception as e:  # noqa: BLE001 - any failure is a failed download
        log.error("failed: %r", e)
        sys.exit(1)
