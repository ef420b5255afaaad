#!/usr/bin/env python3
"""HTTP/3 client (aioquic.h3), or HTTP/0.9 over QUIC (hq-interop) with --hq.

All GETs (or --method requests) are sent in parallel on ONE connection, each
with the --header fields. Optionally: one POST (or --post-method) with a
deterministic body or --body-file, a --content-type, request trailers, without
content-length, or paced at --post-rate; and one GET cancelled after its first
response bytes (STOP_SENDING + RESET_STREAM with H3_REQUEST_CANCELLED).

Prints one JSON object on stdout (see README.md); diagnostics go to stderr.
Exit status 0 when the run completed (checks may still have failed: see "ok"
and "error"), non-zero on usage errors or a crash of the client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import sys
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pylsqpack  # noqa: E402  (aioquic dependency)
from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.h3.connection import H3_ALPN, H3Connection  # noqa: E402
from aioquic.h3.events import DataReceived, HeadersReceived  # noqa: E402
from aioquic.quic import events  # noqa: E402
from aioquic.tls import SessionTicket  # noqa: E402

import peer_common as pc  # noqa: E402

H3_REQUEST_CANCELLED = 0x010C
POST_LABEL = "harrier-post"
USER_AGENT = "harrier-peer-aioquic"


class TunedH3Connection(H3Connection):
    """H3Connection with a configurable QPACK decoder table capacity.

    aioquic hard-codes 4096 in __init__ and announces it in SETTINGS from
    _init_connection(), which __init__ calls last, so the value is swapped in
    there (before the SETTINGS frame is encoded).
    """

    def __init__(self, quic, max_table_capacity: int, blocked_streams: int = 16):
        self._wanted_capacity = max_table_capacity
        self._wanted_blocked = blocked_streams
        # Request streams whose response has no content whatever its content-length says.
        self.head_streams: set[int] = set()
        super().__init__(quic)

    def _check_content_length(self, stream) -> None:
        # aioquic 1.7.2 compares content-length with the DATA received on every response,
        # so the answer to HEAD (content-length of the GET, no DATA) closes the connection
        # with H3_MESSAGE_ERROR. RFC 9114 §4.1.2: a response defined to have no content
        # (RFC 9110 §6.4.1: to HEAD) can carry a non-zero content-length.
        if stream.stream_id in self.head_streams:
            return
        super()._check_content_length(stream)

    def _init_connection(self) -> None:
        self._max_table_capacity = self._wanted_capacity
        self._blocked_streams = self._wanted_blocked
        self._decoder = pylsqpack.Decoder(self._max_table_capacity, self._blocked_streams)
        super()._init_connection()


class Request:
    """One request's progress and result."""

    def __init__(self, kind: str, method: str, path: str, stream_id: int, out_path: str | None,
                 keep_max: int = 0):
        self.kind = kind  # "get", "post" or "cancel"
        self.method = method
        self.path = path
        self.stream_id = stream_id
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.trailers: dict[str, str] | None = None
        self.bytes = 0
        self.hasher = hashlib.sha256()
        self.error: str | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.out = open(out_path, "wb") if out_path else None
        # the first keep_max + 1 body bytes, for body_b64 (reported only when it all fits)
        self.keep_max = keep_max
        self.kept = bytearray()
        self.stop_sending_code: int | None = None  # the server's STOP_SENDING, if any
        self.pacer: asyncio.Future | None = None  # --post-rate task
        self.body_sent: int | None = None  # body bytes written when paced
        # cancel bookkeeping
        self.cancel_sent = False
        self.bytes_before_cancel: int | None = None
        self.server_reset_code: int | None = None
        self.ended_normally = False

    def finish(self, error: str | None = None) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        if not self.done.done():
            self.error = error
            self.done.set_result(error is None)

    def result(self) -> dict:
        res = {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "headers": self.headers,
            "bytes": self.bytes,
            "sha256": self.hasher.hexdigest(),
        }
        if self.keep_max > 0 and self.bytes <= self.keep_max:
            res["body_b64"] = base64.b64encode(bytes(self.kept)).decode()
        if self.trailers is not None:
            res["trailers"] = self.trailers
        if self.error is not None:
            res["error"] = self.error
        elif not self.done.done():
            res["error"] = "unfinished"
        return res


def headers_to_dict(headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key, val = name.decode(errors="replace"), value.decode(errors="replace")
        out[key] = f"{out[key]}, {val}" if key in out else val
    return out


class H3ClientProtocol(QuicConnectionProtocol):
    def __init__(self, quic, *, hq: bool, qpack_capacity: int, **kwargs):
        super().__init__(quic, **kwargs)
        loop = asyncio.get_running_loop()
        self.hq = hq
        self.http = None if hq else TunedH3Connection(quic, qpack_capacity)
        self.handshake: asyncio.Future[events.HandshakeCompleted] = loop.create_future()
        self.requests: dict[int, Request] = {}
        self.terminated: events.ConnectionTerminated | None = None
        self.reset_event = asyncio.Event()

    # --- incoming -----------------------------------------------------------

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, events.StopSendingReceived):
            req = self.requests.get(event.stream_id)
            if req is not None:
                req.stop_sending_code = event.error_code
        elif isinstance(event, events.StreamReset):
            req = self.requests.get(event.stream_id)
            if req is not None:
                req.server_reset_code = event.error_code
                self.reset_event.set()
                if not req.cancel_sent:
                    req.finish(f"reset by server, code {event.error_code:#x}")
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            reason = (f"connection closed: code {event.error_code:#x} "
                      f"frame {event.frame_type} reason {event.reason_phrase!r}")
            if not self.handshake.done():
                self.handshake.set_exception(ConnectionError(reason))
                self.handshake.exception()  # mark retrieved
            for req in self.requests.values():
                req.finish(reason)
            self.reset_event.set()

        if self.hq:
            if isinstance(event, events.StreamDataReceived):
                self._on_data(event.stream_id, event.data, event.end_stream)
        elif self.http is not None:
            for h3_event in self.http.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    self._on_headers(h3_event)
                elif isinstance(h3_event, DataReceived):
                    self._on_data(h3_event.stream_id, h3_event.data, h3_event.stream_ended)

    def _on_headers(self, ev: HeadersReceived) -> None:
        req = self.requests.get(ev.stream_id)
        if req is None:
            return
        fields = headers_to_dict(ev.headers)
        if req.status is None or (100 <= req.status < 200):
            # final (or interim, overwritten by the final) response header
            req.status = int(fields.pop(":status", "0"))
            req.headers = fields
        else:
            req.trailers = fields
        if ev.stream_ended:
            self._end(req)

    def _on_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        req = self.requests.get(stream_id)
        if req is None or (req.done.done() and not req.cancel_sent):
            return
        req.bytes += len(data)
        req.hasher.update(data)
        if req.keep_max > 0 and len(req.kept) <= req.keep_max:
            req.kept += data[: req.keep_max + 1 - len(req.kept)]
        if req.out is not None:
            req.out.write(data)
        if req.kind == "cancel" and data and not req.cancel_sent and not ended:
            self._cancel(req)
        if ended:
            self._end(req)

    def _end(self, req: Request) -> None:
        req.ended_normally = True
        req.finish()

    def _cancel(self, req: Request) -> None:
        """Abort the request: STOP_SENDING (stop the response) and RESET_STREAM
        (a no-op in aioquic when our side already finished), both with
        H3_REQUEST_CANCELLED."""
        req.cancel_sent = True
        req.bytes_before_cancel = req.bytes
        self._quic.stop_stream(req.stream_id, H3_REQUEST_CANCELLED)
        self._quic.reset_stream(req.stream_id, H3_REQUEST_CANCELLED)
        self._transmit_soon()
        req.finish()  # done from our side; the server's RESET_STREAM is awaited later
        pc.log(f"cancelled stream {req.stream_id} after {req.bytes} bytes")

    # --- outgoing -----------------------------------------------------------

    def send_request(self, kind: str, method: str, authority: str, path: str,
                     out_path: str | None, body: bytes | None = None,
                     trailers: list[tuple[bytes, bytes]] | None = None,
                     extra_headers: list[tuple[bytes, bytes]] | None = None,
                     content_length: bool = True, rate: float = 0.0,
                     keep_max: int = 0) -> Request:
        """Send one request. extra_headers (lowercase names) go after the pseudo-headers;
        a user-agent among them replaces ours. With rate > 0 the body is paced (rate
        bytes per second, in tenths of a second) by a task; otherwise it is queued at once."""
        sid = self._quic.get_next_available_stream_id()
        req = Request(kind, method, path, sid, out_path, keep_max)
        self.requests[sid] = req
        if self.hq:
            self._quic.send_stream_data(sid, f"GET {path}\r\n".encode(), end_stream=True)
            return req
        extra = list(extra_headers or [])
        if method == "HEAD":
            self.http.head_streams.add(sid)
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
        ]
        if not any(name == b"user-agent" for name, _ in extra):
            headers.append((b"user-agent", USER_AGENT.encode()))
        headers += extra
        if body is None:
            self.http.send_headers(sid, headers, end_stream=True)
            return req
        if content_length:
            headers.append((b"content-length", str(len(body)).encode()))
        if trailers:
            headers.append((b"trailer", b", ".join(name for name, _ in trailers)))
        self.http.send_headers(sid, headers, end_stream=False)
        if rate > 0:
            req.pacer = asyncio.ensure_future(self._paced_body(req, body, rate, trailers))
            return req
        self.http.send_data(sid, body, end_stream=not trailers)
        if trailers:
            self.http.send_headers(sid, trailers, end_stream=True)
        return req

    async def _paced_body(self, req: Request, body: bytes, rate: float,
                          trailers: list[tuple[bytes, bytes]] | None) -> None:
        """Write `body` at `rate` bytes/s in 100 ms steps; stop when the server sent
        STOP_SENDING or reset the stream, or the response is complete."""
        step = max(1, int(rate / 10))
        req.body_sent = 0
        try:
            while req.body_sent < len(body):
                if req.stop_sending_code is not None or self.terminated is not None:
                    return  # aioquic already answered STOP_SENDING with RESET_STREAM
                if req.done.done():
                    # complete response before the whole request: abandon the body
                    self._quic.reset_stream(req.stream_id, H3_REQUEST_CANCELLED)
                    self.transmit()
                    return
                chunk = body[req.body_sent:req.body_sent + step]
                last = req.body_sent + len(chunk) >= len(body)
                self.http.send_data(req.stream_id, chunk, end_stream=last and not trailers)
                req.body_sent += len(chunk)
                if last and trailers:
                    self.http.send_headers(req.stream_id, trailers, end_stream=True)
                self.transmit()
                if not last:
                    await asyncio.sleep(0.1)
        except Exception as exc:  # the stream went away under us (reset, connection closed)
            pc.log(f"paced body on stream {req.stream_id} stopped: {exc!r}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url-base", required=True, help="https://HOST:PORT")
    p.add_argument("--paths", default="", help="comma-separated paths to GET in parallel")
    p.add_argument("--paths-file", default=None, help="file with one path per line")
    p.add_argument("--method", default="GET", help="method of the --paths requests (default GET)")
    p.add_argument("--header", action="append", default=[], metavar="'name: value'",
                   help="request field sent on every request (repeatable; a user-agent "
                        "replaces ours)")
    p.add_argument("--authority", default=None,
                   help=":authority of every request (default: HOST:PORT of --url-base)")
    p.add_argument("--body-b64", type=int, default=0, metavar="N",
                   help="report each body of at most N bytes as body_b64 (default 0: never)")
    p.add_argument("--out-dir", default=None, help="write each body here, by basename")
    p.add_argument("--post", default=None, metavar="PATH", help="also POST to PATH")
    p.add_argument("--post-size", type=int, default=0, help="POST body size in bytes")
    p.add_argument("--post-method", default="POST", help="method of the --post request")
    p.add_argument("--body-file", default=None,
                   help="POST body read from this file (instead of --post-size bytes)")
    p.add_argument("--content-type", default=None, help="content-type of the POST")
    p.add_argument("--no-content-length", action="store_true",
                   help="send the POST body without content-length")
    p.add_argument("--post-rate", type=float, default=0.0, metavar="BYTES_PER_S",
                   help="pace the POST body: BYTES_PER_S/10 bytes every 100 ms")
    p.add_argument("--trailers", action="append", default=[], metavar="'name: value'",
                   help="request trailer sent after the POST body (repeatable)")
    p.add_argument("--cancel", default=None, metavar="PATH",
                   help="GET PATH and cancel it after the first response bytes")
    p.add_argument("--hq", action="store_true", help="HTTP/0.9 over QUIC (ALPN hq-interop)")
    p.add_argument("--qpack-capacity", type=int, default=4096,
                   help="QPACK max table capacity we announce (0 disables the dynamic table)")
    p.add_argument("--server-name", default=None, help="TLS SNI (default: URL host)")
    p.add_argument("--session-ticket-out", default=None)
    p.add_argument("--session-ticket-in", default=None)
    p.add_argument("--zero-rtt", action="store_true",
                   help="send the requests as 0-RTT data (needs --session-ticket-in)")
    p.add_argument("--max-datagram-size", type=int, default=1350, help="UDP payload cap")
    pc.add_window_flags(p)
    p.add_argument("--handshake-timeout", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=60.0, help="bound on the whole run")
    args = p.parse_args()

    url = urlparse(args.url_base)
    if url.scheme != "https" or not url.hostname:
        p.error("--url-base must look like https://HOST:PORT")
    args.host = url.hostname
    args.port = url.port or 443
    paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    if args.paths_file:
        with open(args.paths_file) as fp:
            paths += [line.strip() for line in fp if line.strip()]
    args.path_list = ["/" + x.lstrip("/") for x in paths]
    if args.post:
        args.post = "/" + args.post.lstrip("/")
    if args.cancel:
        args.cancel = "/" + args.cancel.lstrip("/")
    args.header_list = []
    for h in args.header:
        name, sep, value = h.partition(":")
        name = name.strip().lower()
        if not sep or not name or name.startswith(":"):
            p.error(f"bad --header {h!r}: expected 'name: value' (use --authority for :authority)")
        args.header_list.append((name.encode(), value.strip().encode()))
    if args.authority is not None:
        args.authority = args.authority.strip()
    else:
        args.authority = url.netloc
    args.method = args.method.upper()
    args.post_method = args.post_method.upper()
    post_only = [("--body-file", args.body_file), ("--content-type", args.content_type),
                 ("--no-content-length", args.no_content_length), ("--post-rate", args.post_rate)]
    for flag, value in post_only:
        if value and not args.post:
            p.error(f"{flag} needs --post")
    if args.body_file and not os.path.isfile(args.body_file):
        p.error(f"--body-file {args.body_file}: no such file")
    if args.hq and (args.header_list or args.method != "GET"):
        p.error("--header/--method need HTTP/3 (not --hq)")
    args.trailer_list = []
    for t in args.trailers:
        name, sep, value = t.partition(":")
        if not sep or not name.strip():
            p.error(f"bad --trailers {t!r}: expected 'name: value'")
        args.trailer_list.append((name.strip().lower().encode(), value.strip().encode()))
    if args.hq and (args.post or args.trailer_list):
        p.error("--post/--trailers need HTTP/3 (not --hq)")
    if args.trailer_list and not args.post:
        p.error("--trailers needs --post")
    if args.session_ticket_in and not os.path.isfile(args.session_ticket_in):
        p.error(f"--session-ticket-in {args.session_ticket_in}: no such file")
    if args.zero_rtt and not args.session_ticket_in:
        p.error("--zero-rtt needs --session-ticket-in")
    if not (args.path_list or args.post or args.cancel):
        p.error("nothing to do: give --paths, --paths-file, --post or --cancel")
    return args


def out_file(out_dir: str | None, path: str) -> str | None:
    if not out_dir:
        return None
    name = os.path.basename(path.split("?", 1)[0]) or "index.html"
    return os.path.join(out_dir, name)


def main() -> int:
    args = parse_args()
    report: dict = {
        "ok": False,
        "responses": [],
        "post": None,
        "cancelled": None,
        "alpn": None,
        "resumed": False,
        "early_data_accepted": False,
        "zero_rtt_packets_sent": 0,
        "retry_seen": False,
        "handshake_s": None,
        "elapsed_s": 0.0,
        "session_ticket_saved": False,
        "error": None,
    }
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    deadline = pc.Deadline(args.timeout)

    async def run() -> None:
        tickets: list[SessionTicket] = []
        alpn = ["hq-interop"] if args.hq else list(H3_ALPN)
        config = pc.client_configuration(
            alpn, args.server_name, args.max_datagram_size, idle_timeout=30.0,
            max_data=args.max_data, max_stream_data=args.max_stream_data,
        )
        ticket = pc.load_ticket(args.session_ticket_in)
        if ticket is not None:
            config.session_ticket = ticket

        def factory(quic):
            return H3ClientProtocol(quic, hq=args.hq, qpack_capacity=args.qpack_capacity)

        transport, proto, quic = await pc.open_client(
            args.host, args.port, config, factory, tickets.append
        )
        assert isinstance(proto, H3ClientProtocol)
        gets: list[Request] = []
        post_req: Request | None = None
        cancel_req: Request | None = None

        def send_all() -> None:
            nonlocal post_req, cancel_req
            for path in args.path_list:
                gets.append(proto.send_request("get", args.method, args.authority, path,
                                               out_file(args.out_dir, path),
                                               extra_headers=args.header_list,
                                               keep_max=args.body_b64))
            if args.post:
                if args.body_file:
                    with open(args.body_file, "rb") as fp:
                        body = fp.read()
                else:
                    body = pc.payload(POST_LABEL, args.post_size)
                extra = list(args.header_list)
                if args.content_type is not None:
                    extra.append((b"content-type", args.content_type.encode()))
                report["post"] = {"path": args.post, "sent_bytes": len(body),
                                  "sent_sha256": pc.sha256_hex(body),
                                  "trailers_sent": {k.decode(): v.decode()
                                                    for k, v in args.trailer_list}}
                post_req = proto.send_request("post", args.post_method, args.authority,
                                              args.post, out_file(args.out_dir, args.post),
                                              body, args.trailer_list, extra_headers=extra,
                                              content_length=not args.no_content_length,
                                              rate=args.post_rate, keep_max=args.body_b64)
            if args.cancel:
                cancel_req = proto.send_request("cancel", "GET", args.authority,
                                                args.cancel, None,
                                                extra_headers=args.header_list)
            proto.transmit()

        try:
            pc.count_sent_zero_rtt(quic, proto.handshake, report)
            pc.start(proto, transmit=False)
            if args.zero_rtt:
                send_all()  # queued before the first flight: goes out as 0-RTT
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
            if not args.zero_rtt:
                send_all()

            all_reqs = list(proto.requests.values())
            await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(r.done) for r in all_reqs)), deadline.left()
            )
            if cancel_req is not None and cancel_req.cancel_sent \
                    and cancel_req.server_reset_code is None and proto.terminated is None:
                # give the server's RESET_STREAM (answer to STOP_SENDING) a moment
                try:
                    await asyncio.wait_for(proto.reset_event.wait(), min(2.0, deadline.left()))
                except asyncio.TimeoutError:
                    pass
            if proto.terminated is not None:
                raise ConnectionError("connection closed by peer before the run ended")
            # the connection must still be alive after everything (incl. the cancel)
            try:
                await asyncio.wait_for(proto.ping(), min(2.0, deadline.left()))
                alive = True
            except (asyncio.TimeoutError, ConnectionError):
                alive = False
            failures = [r for r in all_reqs if r.error is not None or not r.done.done()]
            report["ok"] = alive and not failures
            if failures:
                report["error"] = f"{len(failures)} request(s) failed"
            elif not alive:
                report["error"] = "connection not alive after the requests (PING unanswered)"
        except ConnectionError as exc:
            report["error"] = str(exc) or "connection error"
        except asyncio.TimeoutError:
            report["error"] = f"timeout after {args.timeout:g}s"
        finally:
            report["retry_seen"] = getattr(quic, "_retry_count", 0) > 0
            report["responses"] = [r.result() for r in gets]
            if post_req is not None:
                report["post"].update(post_req.result())
                if post_req.pacer is not None:
                    post_req.pacer.cancel()
                    # paced: what actually went out before the server stopped us
                    report["post"]["sent_bytes"] = post_req.body_sent or 0
                if post_req.stop_sending_code is not None:
                    report["post"]["server_stop_sending_code"] = post_req.stop_sending_code
            if cancel_req is not None:
                c = cancel_req.result()
                c.update({
                    "stream_id": cancel_req.stream_id,
                    "cancel_sent": cancel_req.cancel_sent,
                    "bytes_before_cancel": cancel_req.bytes_before_cancel,
                    "completed_before_cancel": cancel_req.ended_normally
                    and not cancel_req.cancel_sent,
                    "server_reset_code": cancel_req.server_reset_code,
                })
                report["cancelled"] = c
            for r in proto.requests.values():
                r.finish(None if r.done.done() else "unfinished")  # closes out files
            if args.session_ticket_out and not tickets and proto.terminated is None:
                for _ in range(20):  # NewSessionTicket may trail the handshake
                    if tickets or deadline.left() < 0.2:
                        break
                    await asyncio.sleep(0.05)
            if args.session_ticket_out and tickets:
                pc.save_ticket(args.session_ticket_out, tickets[-1])
                report["session_ticket_saved"] = True
            # H3_NO_ERROR (0x100) for HTTP/3; hq-interop has no codes: 0
            await pc.close_client(transport, proto, error_code=0 if args.hq else 0x100,
                                  grace=min(1.0, deadline.left() + 1))
            report["elapsed_s"] = round(deadline.elapsed(), 3)

    return pc.run_bounded(run, report, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
