#!/usr/bin/env python3
"""Raw QUIC echo client (aioquic), no HTTP.

Opens --streams bidirectional streams concurrently on ONE connection, writes
--size deterministic bytes on each and ends it; the server must echo the bytes
back and end its side. Optionally sends --datagrams QUIC DATAGRAM frames that
the server must echo. Supports session resumption and 0-RTT through pickled
aioquic session tickets.

Prints one JSON object on stdout (see README.md); diagnostics go to stderr.
Exit status 0 when the run completed (checks may still have failed: see "ok"
and "error"), non-zero on usage errors or a crash of the client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.quic import events  # noqa: E402
from aioquic.tls import SessionTicket  # noqa: E402

import peer_common as pc  # noqa: E402

# Room for the short header, packet number, AEAD tag and DATAGRAM frame header
# inside one UDP payload.
DATAGRAM_OVERHEAD = 50


def stream_label(index: int) -> str:
    return f"harrier-echo-stream-{index}"


def datagram_label(index: int) -> str:
    return f"harrier-echo-datagram-{index}"


class EchoStream:
    """Expected and received state of one echo stream."""

    def __init__(self, index: int, stream_id: int, size: int, expected_sha: str):
        self.index = index
        self.stream_id = stream_id
        self.size = size
        self.expected_sha = expected_sha
        self.hasher = hashlib.sha256()
        self.received = 0
        self.done = asyncio.get_running_loop().create_future()
        self.error: str | None = None

    def finish(self, error: str | None = None) -> None:
        if self.done.done():
            return
        if error is None:
            if self.received != self.size:
                error = f"length {self.received} != {self.size}"
            elif self.hasher.hexdigest() != self.expected_sha:
                error = "sha256 mismatch"
        self.error = error
        self.done.set_result(error is None)


class EchoClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[events.HandshakeCompleted] = loop.create_future()
        self.streams: dict[int, EchoStream] = {}
        self.expected_datagrams: dict[bytes, int] = {}
        self.echoed_datagrams: set[int] = set()
        self.bad_datagrams = 0
        self.datagram_event = asyncio.Event()
        self.terminated: events.ConnectionTerminated | None = None

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, events.StreamDataReceived):
            st = self.streams.get(event.stream_id)
            if st is None:
                pc.log(f"data on unexpected stream {event.stream_id}")
                return
            st.hasher.update(event.data)
            st.received += len(event.data)
            if event.end_stream:
                st.finish()
        elif isinstance(event, events.StreamReset):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.finish(f"reset by peer, code {event.error_code:#x}")
        elif isinstance(event, events.StopSendingReceived):
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.finish(f"STOP_SENDING from peer, code {event.error_code:#x}")
        elif isinstance(event, events.DatagramFrameReceived):
            index = self.expected_datagrams.get(event.data)
            if index is None:
                self.bad_datagrams += 1
            else:
                self.echoed_datagrams.add(index)
            self.datagram_event.set()
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            reason = (
                f"connection closed by peer: code {event.error_code:#x}"
                f" frame {event.frame_type} reason {event.reason_phrase!r}"
            )
            if not self.handshake.done():
                self.handshake.set_exception(ConnectionError(reason))
                self.handshake.exception()  # mark retrieved: no "never retrieved" warning
            for st in self.streams.values():
                st.finish(reason)
            self.datagram_event.set()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--alpn", default="harrier-echo")
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--size", type=int, default=1048576, help="bytes per stream")
    p.add_argument("--datagrams", type=int, default=0)
    p.add_argument("--datagram-size", type=int, default=1000)
    p.add_argument("--server-name", default=None, help="TLS SNI (default: --host)")
    p.add_argument("--session-ticket-out", default=None, help="pickle the received ticket here")
    p.add_argument("--session-ticket-in", default=None, help="resume with this pickled ticket")
    p.add_argument("--zero-rtt", action="store_true", help="send stream 0 as 0-RTT data")
    p.add_argument("--max-datagram-size", type=int, default=1350, help="UDP payload cap")
    pc.add_window_flags(p)
    p.add_argument("--handshake-timeout", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=60.0, help="bound on the whole run")
    args = p.parse_args()
    if args.streams < 0 or args.size < 0 or args.datagrams < 0 or args.datagram_size < 1:
        p.error("counts and sizes must be non-negative (datagram size >= 1)")
    if args.session_ticket_in and not os.path.isfile(args.session_ticket_in):
        p.error(f"--session-ticket-in {args.session_ticket_in}: no such file")
    if args.zero_rtt and not args.session_ticket_in:
        p.error("--zero-rtt needs --session-ticket-in")
    return args


def main() -> int:
    args = parse_args()
    report: dict = {
        "ok": False,
        "streams": args.streams,
        "streams_ok": 0,
        "bytes_echoed": 0,
        "datagrams_sent": 0,
        "datagrams_echoed": 0,
        "datagrams_bad": 0,
        "retry_seen": False,
        "resumed": False,
        "early_data_accepted": False,
        "early_data_attempted": False,
        "zero_rtt_packets_sent": 0,
        "alpn": None,
        "handshake_s": None,
        "elapsed_s": 0.0,
        "session_ticket_saved": False,
        "stream_errors": [],
        "error": None,
    }
    deadline = pc.Deadline(args.timeout)

    async def run() -> None:
        tickets: list[SessionTicket] = []
        config = pc.client_configuration(
            [args.alpn], args.server_name, args.max_datagram_size, idle_timeout=30.0,
            max_data=args.max_data, max_stream_data=args.max_stream_data,
        )
        if args.datagrams:
            config.max_datagram_frame_size = 65536
        ticket = pc.load_ticket(args.session_ticket_in)
        if ticket is not None:
            config.session_ticket = ticket

        transport, proto, quic = await pc.open_client(
            args.host, args.port, config, EchoClientProtocol, tickets.append
        )
        assert isinstance(proto, EchoClientProtocol)
        try:
            await exchange(proto, quic, ticket, tickets)
        except ConnectionError as exc:
            report["error"] = str(exc) or "connection error"
        except asyncio.TimeoutError:
            report["error"] = report["error"] or f"timeout after {args.timeout:g}s"
        finally:
            # Retry detection: aioquic 1.7.2 counts accepted Retry packets in
            # the private QuicConnection._retry_count (at most one is accepted).
            report["retry_seen"] = getattr(quic, "_retry_count", 0) > 0
            fill_stream_results(proto)
            report["datagrams_echoed"] = len(proto.echoed_datagrams)
            report["datagrams_bad"] = proto.bad_datagrams
            if args.session_ticket_out and not tickets and proto.terminated is None:
                # NewSessionTicket may trail the handshake a little.
                for _ in range(20):
                    if tickets or deadline.left() < 0.2:
                        break
                    await asyncio.sleep(0.05)
            if args.session_ticket_out and tickets:
                pc.save_ticket(args.session_ticket_out, tickets[-1])
                report["session_ticket_saved"] = True
            await pc.close_client(transport, proto, grace=min(1.0, deadline.left() + 1))
            report["elapsed_s"] = round(deadline.elapsed(), 3)

    def fill_stream_results(proto: EchoClientProtocol) -> None:
        ok = [st for st in proto.streams.values() if st.done.done() and st.error is None]
        report["streams_ok"] = len(ok)
        report["bytes_echoed"] = sum(st.received for st in proto.streams.values())
        errors = []
        for st in sorted(proto.streams.values(), key=lambda s: s.index):
            if st.error is None and not st.done.done():
                errors.append({"index": st.index, "stream_id": st.stream_id,
                               "error": f"unfinished, {st.received}/{st.size} bytes"})
            elif st.error is not None:
                errors.append({"index": st.index, "stream_id": st.stream_id, "error": st.error})
        report["stream_errors"] = errors[:20]  # keep the report small

    def open_stream(proto: EchoClientProtocol, quic, index: int) -> None:
        data = pc.payload(stream_label(index), args.size)
        sid = quic.get_next_available_stream_id()
        proto.streams[sid] = EchoStream(index, sid, args.size, pc.sha256_hex(data))
        quic.send_stream_data(sid, data, end_stream=True)

    async def exchange(proto: EchoClientProtocol, quic, ticket, tickets) -> None:
        pc.count_sent_zero_rtt(quic, proto.handshake, report)
        pc.start(proto, transmit=False)
        first = 0
        if args.zero_rtt and args.streams > 0:
            # Queued before the first flight: aioquic packs it into 0-RTT
            # packets when the ticket allows early data, else sends it as 1-RTT
            # after the handshake.
            report["early_data_attempted"] = ticket.max_early_data_size is not None
            open_stream(proto, quic, 0)
            first = 1
        proto.transmit()

        hs_wait = min(args.handshake_timeout, deadline.left())
        try:
            hs = await asyncio.wait_for(asyncio.shield(proto.handshake), hs_wait)
        except asyncio.TimeoutError:
            raise ConnectionError(f"handshake timeout after {hs_wait:g}s") from None
        report["handshake_s"] = round(deadline.elapsed(), 3)
        report["alpn"] = hs.alpn_protocol
        report["resumed"] = bool(hs.session_resumed)
        report["early_data_accepted"] = bool(hs.early_data_accepted)
        pc.log(f"handshake done: alpn={hs.alpn_protocol} resumed={hs.session_resumed} "
               f"early_data={hs.early_data_accepted}")

        if args.datagrams:
            remote_max = getattr(quic, "_remote_max_datagram_frame_size", None)
            limit = args.max_datagram_size - DATAGRAM_OVERHEAD
            if not remote_max:
                raise ConnectionError("server did not advertise max_datagram_frame_size")
            if args.datagram_size > min(limit, remote_max):
                raise ConnectionError(
                    f"datagram size {args.datagram_size} exceeds limit {min(limit, remote_max)}"
                )
            for j in range(args.datagrams):
                data = pc.payload(datagram_label(j), args.datagram_size)
                proto.expected_datagrams[data] = j
                quic.send_datagram_frame(data)
                report["datagrams_sent"] += 1

        for i in range(first, args.streams):
            open_stream(proto, quic, i)
        proto.transmit()

        if proto.streams:
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(st.done) for st in proto.streams.values())),
                deadline.left(),
            )
        if proto.terminated is not None:
            raise ConnectionError("connection closed by peer before the run ended")

        # Datagrams are unreliable: wait until all came back, or until 1 s
        # passes without a new one.
        while args.datagrams and len(proto.echoed_datagrams) < report["datagrams_sent"]:
            proto.datagram_event.clear()
            try:
                await asyncio.wait_for(proto.datagram_event.wait(), min(1.0, deadline.left()))
            except asyncio.TimeoutError:
                break
            if proto.terminated is not None:
                break

        fill_stream_results(proto)
        dgram_ok = args.datagrams == 0 or (
            len(proto.echoed_datagrams) > 0 and proto.bad_datagrams == 0
        )
        report["ok"] = report["streams_ok"] == args.streams and dgram_ok
        if report["streams_ok"] != args.streams:
            report["error"] = f"{args.streams - report['streams_ok']} stream(s) failed"
        elif not dgram_ok:
            report["error"] = "datagram echo failed"

    return pc.run_bounded(run, report, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
