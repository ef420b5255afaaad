"""Shared helpers for the aioquic-based peer clients in this folder.

Everything here is plumbing: deterministic payloads, QUIC client setup with a
bounded lifetime, session-ticket files and the one-JSON-object-on-stdout
reporting contract. The protocol work is done by aioquic itself.

Deterministic payloads are defined so that any language can reproduce them:

    payload(label, size) = SHAKE128(label as UTF-8).digest(size)

(Node: crypto.createHash("shake128", {outputLength: size}).update(label).digest();
Go: crypto/sha3.NewSHAKE128). The labels used by the clients are listed in
README.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import socket
import ssl
import sys
import time
import traceback
from typing import Any, Callable

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.tls import SessionTicket


def payload(label: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes, reproducible in Node and Go (SHAKE128)."""
    if size <= 0:
        return b""
    return hashlib.shake_128(label.encode()).digest(size)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def log(*parts: Any) -> None:
    """Diagnostics go to stderr; stdout is reserved for the final JSON object."""
    print(*parts, file=sys.stderr, flush=True)


def emit(report: dict) -> None:
    sys.stdout.write(json.dumps(report, sort_keys=False) + "\n")
    sys.stdout.flush()


def client_configuration(
    alpn: list[str],
    server_name: str | None,
    max_datagram_size: int,
    idle_timeout: float,
    max_data: int = 1048576,
    max_stream_data: int = 1048576,
) -> QuicConfiguration:
    """Client configuration with certificate verification disabled (self-signed dev cert).

    max_data / max_stream_data are our receive windows (aioquic's defaults are
    1 MiB each); small values exercise the server's flow-control handling.
    """
    config = QuicConfiguration(is_client=True, alpn_protocols=alpn)
    config.max_data = max_data
    config.max_stream_data = max_stream_data
    config.verify_mode = ssl.CERT_NONE
    config.max_datagram_size = max_datagram_size
    config.idle_timeout = idle_timeout
    if server_name:
        config.server_name = server_name
    return config


def add_window_flags(parser) -> None:
    parser.add_argument("--max-data", type=int, default=1048576,
                        help="connection receive window we grant (bytes)")
    parser.add_argument("--max-stream-data", type=int, default=1048576,
                        help="per-stream receive window we grant (bytes)")


def load_ticket(path: str | None) -> SessionTicket | None:
    if not path:
        return None
    with open(path, "rb") as fp:
        ticket = pickle.load(fp)
    if not isinstance(ticket, SessionTicket):
        raise ValueError(f"{path} does not hold an aioquic SessionTicket")
    return ticket


def save_ticket(path: str, ticket: SessionTicket) -> None:
    with open(path, "wb") as fp:
        pickle.dump(ticket, fp)


async def open_client(
    host: str,
    port: int,
    configuration: QuicConfiguration,
    protocol_factory: Callable[[QuicConnection], QuicConnectionProtocol],
    session_ticket_handler: Callable[[SessionTicket], None] | None = None,
) -> tuple[asyncio.DatagramTransport, QuicConnectionProtocol, QuicConnection]:
    """Create the UDP endpoint and the QuicConnection without starting the handshake.

    This mirrors aioquic.asyncio.connect() but leaves connecting (and the
    lifetime) to the caller, so callers can queue 0-RTT data before the first
    flight and bound every wait with a timeout.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    addr = infos[0][4]
    if len(addr) == 2:
        addr = ("::ffff:" + addr[0], addr[1], 0, 0)
    if configuration.server_name is None:
        configuration.server_name = host

    connection = QuicConnection(
        configuration=configuration, session_ticket_handler=session_ticket_handler
    )
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0, 0, 0))
    except BaseException:
        sock.close()
        raise
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: protocol_factory(connection), sock=sock
    )
    protocol._harrier_addr = addr  # remembered for start()
    return transport, protocol, connection


def start(protocol: QuicConnectionProtocol, transmit: bool = True) -> None:
    """Begin the handshake (with transmit=False, queue 0-RTT data first, then transmit())."""
    protocol.connect(protocol._harrier_addr, transmit=transmit)


async def close_client(
    transport: asyncio.DatagramTransport,
    protocol: QuicConnectionProtocol,
    error_code: int = 0,
    reason: str = "",
    grace: float = 1.0,
) -> None:
    """Send CONNECTION_CLOSE and wait (bounded) for the draining period."""
    try:
        protocol.close(error_code=error_code, reason_phrase=reason)
        await asyncio.wait_for(protocol.wait_closed(), grace)
    except (asyncio.TimeoutError, Exception):
        pass
    finally:
        transport.close()


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    length = 1 << (buf[pos] >> 6)
    value = buf[pos] & 0x3F
    for k in range(1, length):
        value = (value << 8) | buf[pos + k]
    return value, pos + length


def count_zero_rtt_packets(datagram: bytes) -> int:
    """Count QUIC v1 0-RTT packets among the coalesced long-header packets of
    one outgoing UDP datagram (header fields are not protected, only the low
    bits of the first byte and the packet number are)."""
    count, pos = 0, 0
    try:
        while pos < len(datagram) and datagram[pos] & 0x80:
            ptype = (datagram[pos] >> 4) & 0x3
            pos += 5  # first byte + version
            pos += 1 + datagram[pos]  # DCID
            pos += 1 + datagram[pos]  # SCID
            if ptype == 0:  # Initial: token
                token_len, pos = _varint(datagram, pos)
                pos += token_len
            elif ptype == 3:  # Retry has no length: never sent by a client
                break
            length, pos = _varint(datagram, pos)
            pos += length
            if ptype == 1:
                count += 1
    except IndexError:
        pass
    return count



def count_sent_zero_rtt(quic: QuicConnection, handshake: asyncio.Future, report: dict) -> None:
    """Wrap quic.datagrams_to_send so report["zero_rtt_packets_sent"] counts the
    0-RTT packets put on the wire before the handshake completes (this proves
    early data was sent as such, whatever the server then does with it)."""
    send = quic.datagrams_to_send
    report.setdefault("zero_rtt_packets_sent", 0)

    def counting_send(now: float):
        out = send(now=now)
        if not handshake.done():
            for data, _addr in out:
                report["zero_rtt_packets_sent"] += count_zero_rtt_packets(data)
        return out

    quic.datagrams_to_send = counting_send


class Deadline:
    """Remaining-time bookkeeping for one bounded run."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.end = self.start + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def run_bounded(main: Callable[[], "asyncio.Future[None]"], report: dict, timeout: float) -> int:
    """Run the async main with a hard time bound, then print the report.

    main() mutates `report` as it goes, so a timeout still reports partial
    progress. Returns the process exit status: 0 when the run completed (even
    with failed checks or a timeout), non-zero when the client itself crashed.
    """

    async def guarded() -> None:
        try:
            # a little slack beyond --timeout for the graceful close
            await asyncio.wait_for(main(), timeout + 3.0)
        except asyncio.TimeoutError:
            if not report.get("error"):
                report["error"] = f"timeout after {timeout:g}s"

    status = 0
    try:
        asyncio.run(guarded())
    except KeyboardInterrupt:
        report["error"] = report.get("error") or "interrupted"
        status = 130
    except Exception as exc:
        # An unexpected exception is a crash of the client itself: still print
        # the report (with the error) but exit non-zero.
        traceback.print_exc(file=sys.stderr)
        report["error"] = f"crash: {type(exc).__name__}: {exc}"
        status = 1
    report["ok"] = bool(report.get("ok")) and not report.get("error")
    emit(report)
    return status
