// Command wsh3 is a WebSocket-over-HTTP/3 client (RFC 9220 extended CONNECT)
// built on quic-go's http3 package and the gobwas/ws framer.
//
// It dials one QUIC connection (ALPN h3), waits for the server's SETTINGS and
// requires SETTINGS_ENABLE_CONNECT_PROTOCOL=1, then opens a request stream and
// sends an extended CONNECT (:method CONNECT, :protocol websocket, :scheme
// https, :path, :authority, sec-websocket-version: 13 and the optional
// sec-websocket-protocol, origin and sec-websocket-extensions). After a 2xx
// response the stream's DATA frames carry RFC 6455 frames; every frame the
// client sends is masked (except in -mode raw-unmasked).
//
// Modes:
//
//	echo              send -n messages alternating text (valid UTF-8, some
//	                  multi-byte characters) and binary, sizes cycling through
//	                  -sizes, all written by one goroutine while another reads
//	                  the echoes and compares them byte for byte (and opcode);
//	                  then send Close(-close-code, -close-reason) and wait for
//	                  the server's Close.
//	raw-invalid-utf8  send one text frame whose payload is not UTF-8.
//	raw-unmasked      send one unmasked text frame.
//	raw-bad-close     send a Close frame with code 1005 (or -close-code when
//	                  given explicitly, e.g. 999).
//	raw-oversize      send one binary message of -size bytes; if the server
//	                  echoes it instead of closing, close normally.
//
// In raw modes the client then reads until the server's Close frame, answers
// it with a Close echoing the code (unless it already sent one) and reports the
// server's code and reason.
//
// One JSON line is printed on stdout at the end:
//
//	{"status":200,"protocol":"","extensions":"","messages":12,"echoed":12,
//	 "bytes":2360000,"closeCode":4000,"closeReason":"bye",
//	 "serverCloseCode":4000,"serverCloseReason":"bye","fin":true,"ms":83}
//
// messages/bytes count the data messages the client sent and their payload
// bytes; echoed counts the echoes verified (echo mode) or data messages
// received (raw modes). closeCode/closeReason are what the client put in its
// Close frame, serverCloseCode/serverCloseReason what the server put in its
// own (null when none was received, or when it carried no code); fin tells
// whether the server then ended the stream cleanly. On failure the line also
// has "error".
//
// Exit status: 0 success; 1 failure after the request was sent (handshake,
// stream or framing error, echo mismatch, timeout, no Close from the server,
// -expect-close mismatch); 2 usage error or a non-2xx response (the status is
// in the JSON and on stderr); 3 the server did not advertise
// SETTINGS_ENABLE_CONNECT_PROTOCOL. Failures print one sentence on stderr.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"harrier/peers/internal/peer"
)

const (
	exitFailure      = 1
	exitUsage        = 2
	exitStatus       = 2
	exitNoExtConnect = 3
)

type report struct {
	Status            *int    `json:"status"`
	Protocol          string  `json:"protocol"`
	Extensions        string  `json:"extensions"`
	Messages          int     `json:"messages"`
	Echoed            int     `json:"echoed"`
	Bytes             int64   `json:"bytes"`
	CloseCode         *int    `json:"closeCode"`
	CloseReason       string  `json:"closeReason"`
	ServerCloseCode   *int    `json:"serverCloseCode"`
	ServerCloseReason string  `json:"serverCloseReason"`
	Fin               bool    `json:"fin"`
	MS                int64   `json:"ms"`
	Error             *string `json:"error,omitempty"`
}

type options struct {
	addr, authority, path, serverName, caFile string
	insecure                                  bool
	mode                                      string
	n                                         int
	sizes                                     []int
	size                                      int
	closeCode                                 int
	closeCodeSet                              bool
	closeReason                               string
	protocols                                 []string
	origin, extensions                        string
	expectClose                               int
	maxDatagramSize                           int
	handshakeTimeout, timeout                 time.Duration
}

// failure is an error that carries the exit status.
type failure struct {
	code int
	err  error
}

func (f *failure) Error() string { return f.err.Error() }

func fail(code int, format string, args ...any) error {
	return &failure{code: code, err: fmt.Errorf(format, args...)}
}

var modes = []string{"echo", "raw-invalid-utf8", "raw-unmasked", "raw-bad-close", "raw-oversize"}

func parseFlags() options {
	var o options
	var sizes, protocols peer.ListFlag
	var timeout, hsTimeout float64
	flag.StringVar(&o.addr, "addr", "", "server HOST:PORT (required)")
	flag.StringVar(&o.authority, "authority", "", ":authority (default: -addr)")
	flag.StringVar(&o.path, "path", "/ws", ":path (may carry a query)")
	flag.StringVar(&o.serverName, "server-name", "", "TLS SNI and name to verify (default: host of -addr)")
	flag.BoolVar(&o.insecure, "insecure", false, "skip certificate verification")
	flag.StringVar(&o.caFile, "ca", "", "PEM file of CA certificate(s) to verify the server with")
	flag.StringVar(&o.mode, "mode", "echo", strings.Join(modes, " | "))
	flag.IntVar(&o.n, "n", 12, "echo mode: number of messages")
	flag.Var(&sizes, "sizes", "echo mode: comma-separated message sizes, cycled (default 1,125,126,65535,65536,1048576)")
	flag.IntVar(&o.size, "size", 1048577, "raw-oversize: message size in bytes")
	flag.IntVar(&o.closeCode, "close-code", 4000, "code of the client's Close frame (raw-bad-close: default 1005)")
	flag.StringVar(&o.closeReason, "close-reason", "bye", "reason of the client's Close frame")
	flag.Var(&protocols, "protocol", "subprotocol(s) to offer in sec-websocket-protocol (comma-separated, repeatable)")
	flag.StringVar(&o.origin, "origin", "", "origin header")
	flag.StringVar(&o.extensions, "extensions", "", "sec-websocket-extensions header (permessage-deflate is understood)")
	flag.IntVar(&o.expectClose, "expect-close", 0, "fail unless the server's Close frame carries this code (0: any)")
	flag.IntVar(&o.maxDatagramSize, "max-datagram-size", 1350, "UDP payload cap (1200..65527)")
	flag.Float64Var(&hsTimeout, "handshake-timeout", 10, "seconds to wait for the QUIC handshake and the server's SETTINGS")
	flag.Float64Var(&timeout, "timeout", 60, "bound on the whole run, seconds")
	flag.Parse()
	usage := func(msg string) {
		fmt.Fprintln(os.Stderr, "wsh3:", msg)
		flag.Usage()
		os.Exit(exitUsage)
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments")
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		usage("-addr must look like HOST:PORT")
	}
	if o.authority == "" {
		o.authority = o.addr
	}
	if o.serverName == "" {
		o.serverName = host
	}
	if !strings.HasPrefix(o.path, "/") {
		usage("-path must start with /")
	}
	if o.insecure && o.caFile != "" {
		usage("give -insecure or -ca, not both")
	}
	if !validMode(o.mode) {
		usage("-mode must be one of " + strings.Join(modes, ", "))
	}
	if len(sizes) == 0 {
		sizes = peer.ListFlag{"1", "125", "126", "65535", "65536", "1048576"}
	}
	for _, s := range sizes {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			usage(fmt.Sprintf("bad size %q in -sizes", s))
		}
		o.sizes = append(o.sizes, v)
	}
	if o.n < 0 || o.size < 0 {
		usage("-n and -size must not be negative")
	}
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "close-code" {
			o.closeCodeSet = true
		}
	})
	if o.mode == "raw-bad-close" && !o.closeCodeSet {
		o.closeCode = 1005
	}
	if o.closeCode < 0 || o.closeCode > 0xffff {
		usage("-close-code must be within 0..65535")
	}
	if len(o.closeReason) > ws.MaxControlFramePayloadSize-2 {
		usage("-close-reason must be at most 123 bytes")
	}
	o.protocols = protocols
	if o.maxDatagramSize < 1200 || o.maxDatagramSize > 65527 {
		usage("-max-datagram-size must be within 1200..65527")
	}
	o.timeout = time.Duration(timeout * float64(time.Second))
	o.handshakeTimeout = time.Duration(hsTimeout * float64(time.Second))
	return o
}

func validMode(m string) bool {
	for _, x := range modes {
		if x == m {
			return true
		}
	}
	return false
}

func main() {
	o := parseFlags()
	start := time.Now()
	rep := &report{}
	err := run(o, rep)
	rep.MS = time.Since(start).Milliseconds()
	code := 0
	if err != nil {
		msg := err.Error()
		rep.Error = &msg
		code = exitFailure
		var f *failure
		if errors.As(err, &f) {
			code = f.code
		}
	}
	peer.Emit(rep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsh3: %s.\n", strings.TrimSuffix(err.Error(), "."))
	}
	os.Exit(code)
}

func tlsConfig(o options) (*tls.Config, error) {
	conf := &tls.Config{
		ServerName: o.serverName,
		NextProtos: []string{http3.NextProtoH3},
	}
	switch {
	case o.insecure:
		conf.InsecureSkipVerify = true //nolint:gosec // test peer against a dev cert
	case o.caFile != "":
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", o.caFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

func run(o options, rep *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	tlsConf, err := tlsConfig(o)
	if err != nil {
		return fail(exitUsage, "reading -ca: %v", err)
	}
	retry := &peer.RetryDetector{}
	qconf := peer.QUICConfig(o.maxDatagramSize, retry)
	qconf.MaxIdleTimeout = 30 * time.Second
	qconf.HandshakeIdleTimeout = o.handshakeTimeout
	qconf.KeepAlivePeriod = 10 * time.Second

	dialCtx, dialCancel := context.WithTimeout(ctx, o.handshakeTimeout)
	defer dialCancel()
	qconn, err := quic.DialAddr(dialCtx, o.addr, tlsConf, qconf)
	if err != nil {
		return fmt.Errorf("QUIC handshake with %s failed: %w", o.addr, err)
	}
	defer qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")

	// No request body is ever sent and no gzip is wanted: DisableCompression
	// keeps quic-go from adding "accept-encoding: gzip" to the CONNECT.
	tr := &http3.Transport{DisableCompression: true}
	cc := tr.NewClientConn(qconn)

	// RFC 9220 section 3: the client MUST NOT send an extended CONNECT before
	// it has seen SETTINGS_ENABLE_CONNECT_PROTOCOL=1.
	select {
	case <-cc.ReceivedSettings():
	case <-dialCtx.Done():
		return fail(exitNoExtConnect, "no HTTP/3 SETTINGS from the server within %v", o.handshakeTimeout)
	case <-qconn.Context().Done():
		return fmt.Errorf("connection closed before the server's SETTINGS arrived: %w", context.Cause(qconn.Context()))
	}
	if !cc.Settings().EnableExtendedConnect {
		return fail(exitNoExtConnect, "server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL=1, so RFC 9220 extended CONNECT is not allowed")
	}

	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return fmt.Errorf("opening the request stream failed: %w", err)
	}
	_ = str.SetDeadline(deadline)

	req, err := connectRequest(o)
	if err != nil {
		return fail(exitUsage, "building the request: %v", err)
	}
	if err := str.SendRequestHeader(req); err != nil {
		return fmt.Errorf("sending the extended CONNECT failed: %w", err)
	}
	resp, err := str.ReadResponse()
	if err != nil {
		return timeoutOr(o, fmt.Errorf("reading the response failed: %w", err))
	}
	status := resp.StatusCode
	rep.Status = &status
	if status < 200 || status > 299 {
		str.CancelRead(quic.StreamErrorCode(http3.ErrCodeNoError))
		str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeNoError))
		return fail(exitStatus, "server answered %d to the extended CONNECT", status)
	}
	rep.Protocol = resp.Header.Get("Sec-Websocket-Protocol")
	if rep.Protocol != "" && !contains(o.protocols, rep.Protocol) {
		return fmt.Errorf("server selected subprotocol %q that was not offered", rep.Protocol)
	}
	rep.Extensions = strings.Join(resp.Header.Values("Sec-Websocket-Extensions"), ", ")
	c := newConn(str, rep)
	if err := c.negotiateExtensions(o.extensions, rep.Extensions); err != nil {
		c.fail(ws.StatusUnsupportedData, err.Error())
		return err
	}

	switch o.mode {
	case "echo":
		err = c.echo(o)
	default:
		err = c.raw(o)
	}
	if err == nil {
		c.finish()
	} else {
		err = timeoutOr(o, err)
	}
	if err == nil && o.expectClose != 0 {
		if rep.ServerCloseCode == nil || *rep.ServerCloseCode != o.expectClose {
			got := "none"
			if rep.ServerCloseCode != nil {
				got = strconv.Itoa(*rep.ServerCloseCode)
			}
			err = fmt.Errorf("server Close code %s, expected %d", got, o.expectClose)
		}
	}
	return err
}

func timeoutOr(o options, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("timeout after %v (%v)", o.timeout, err)
	}
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// connectRequest builds the extended CONNECT. quic-go's request writer sends
// :protocol from req.Proto when the method is CONNECT (as webtransport-go does),
// and :scheme/:path from req.URL.
func connectRequest(o options) (*http.Request, error) {
	u, err := url.Parse("https://" + o.authority + o.path)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Sec-Websocket-Version", "13")
	if len(o.protocols) > 0 {
		h.Set("Sec-Websocket-Protocol", strings.Join(o.protocols, ", "))
	}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	if o.extensions != "" {
		h.Set("Sec-Websocket-Extensions", o.extensions)
	}
	return &http.Request{
		Method: http.MethodConnect,
		Proto:  "websocket",
		URL:    u,
		Host:   o.authority,
		Header: h,
	}, nil
}

// conn is the client end of one WebSocket on an HTTP/3 request stream.
type conn struct {
	str *http3.RequestStream
	rep *report

	// wsem serializes whole frames on the stream (a one-slot semaphore, so
	// that a Close or Pong can give up waiting behind a message that the
	// server stopped reading).
	wsem      chan struct{}
	bw        *bufio.Writer
	closeSent bool // guarded by wsem
	sentMsgs  atomic.Int64
	sentBytes atomic.Int64
	pongs     chan []byte // latest Ping payload to answer

	rd      *wsutil.Reader
	deflate bool
	msgFlag wsflate.MessageState
	window  []byte // last 32 KiB inflated, for context takeover
	noCtx   bool   // server_no_context_takeover
	closed  bool   // server Close frame received
}

var errServerClose = errors.New("server sent Close")

func newConn(str *http3.RequestStream, rep *report) *conn {
	c := &conn{
		str: str, rep: rep, bw: bufio.NewWriterSize(str, 64*1024),
		wsem: make(chan struct{}, 1), pongs: make(chan []byte, 1),
	}
	go c.ponger()
	c.rd = &wsutil.Reader{
		Source: bufio.NewReaderSize(str, 64*1024),
		State:  ws.StateClientSide,
		// UTF-8 is checked on the whole (inflated) message instead.
		CheckUTF8:      false,
		OnIntermediate: c.control,
	}
	return c
}

// negotiateExtensions accepts only what was offered; permessage-deflate is
// understood on receive (the client itself always sends uncompressed
// messages, which RFC 7692 allows).
func (c *conn) negotiateExtensions(offered, accepted string) error {
	if accepted == "" {
		return nil
	}
	for _, ext := range strings.Split(accepted, ",") {
		params := strings.Split(ext, ";")
		name := strings.ToLower(strings.TrimSpace(params[0]))
		if !strings.Contains(strings.ToLower(offered), name) {
			return fmt.Errorf("server accepted extension %q that was not offered", name)
		}
		if name != "permessage-deflate" {
			return fmt.Errorf("server accepted extension %q that this client cannot handle", name)
		}
		if c.deflate {
			return errors.New("server accepted permessage-deflate twice")
		}
		c.deflate = true
		for _, p := range params[1:] {
			if strings.EqualFold(strings.TrimSpace(p), "server_no_context_takeover") {
				c.noCtx = true
			}
		}
	}
	if c.deflate {
		c.rd.State = c.rd.State.Set(ws.StateExtended)
		c.rd.Extensions = []wsutil.RecvExtension{&c.msgFlag}
	}
	return nil
}

// controlWait bounds how long a Close or Pong waits behind a message being
// written (the stream deadline bounds message writes).
const controlWait = 2 * time.Second

var errWriteBusy = errors.New("a message was still being written")

// lock takes the write slot; wait < 0 waits for ever (until the stream
// deadline unblocks the holder).
func (c *conn) lock(wait time.Duration) bool {
	if wait < 0 {
		c.wsem <- struct{}{}
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case c.wsem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

func (c *conn) unlock() { <-c.wsem }

// write runs fn on the buffered writer holding the write slot, then flushes.
func (c *conn) write(wait time.Duration, fn func(w io.Writer) error) error {
	if !c.lock(wait) {
		return errWriteBusy
	}
	defer c.unlock()
	if err := fn(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// ponger writes the Pongs queued by control, between whole messages, and
// none after the client's Close.
func (c *conn) ponger() {
	for p := range c.pongs {
		c.lock(-1)
		var err error
		if !c.closeSent {
			err = ws.WriteFrame(c.bw, ws.MaskFrameInPlace(ws.NewPongFrame(p)))
			if err == nil {
				err = c.bw.Flush()
			}
		}
		c.unlock()
		if err != nil {
			return
		}
	}
}

// sendMessage writes one masked, unfragmented data message.
func (c *conn) sendMessage(op ws.OpCode, p []byte) error {
	c.sentMsgs.Add(1)
	c.sentBytes.Add(int64(len(p)))
	return c.write(-1, func(w io.Writer) error { return wsutil.WriteClientMessage(w, op, p) })
}

// sendClose sends one masked Close frame (body verbatim, no validation: the
// raw modes need invalid codes), unless one was already sent. If a message
// is stuck half-written (the server stopped reading it), no Close can be
// framed any more: the send side is then reset with H3_REQUEST_CANCELLED.
func (c *conn) sendClose(code *int, reason string) error {
	if !c.lock(controlWait) {
		c.str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestCanceled))
		return errWriteBusy
	}
	defer c.unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	var body []byte
	if code != nil {
		body = make([]byte, 2+len(reason))
		binary.BigEndian.PutUint16(body, uint16(*code))
		copy(body[2:], reason)
		cc := *code
		c.rep.CloseCode = &cc
		c.rep.CloseReason = reason
	}
	if err := ws.WriteFrame(c.bw, ws.MaskFrameInPlace(ws.NewCloseFrame(body))); err != nil {
		return err
	}
	return c.bw.Flush()
}

// fail closes the WebSocket with code after a local error (best effort).
func (c *conn) fail(code ws.StatusCode, reason string) {
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	for !utf8.ValidString(reason) {
		reason = reason[:len(reason)-1]
	}
	cc := int(code)
	_ = c.sendClose(&cc, reason)
	_ = c.str.Close()
}

// control handles a control frame whose payload is r (already unmasked).
func (c *conn) control(h ws.Header, r io.Reader) error {
	p, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		// Answered by ponger, so that reading never waits behind a message
		// being written (the server may be blocked writing to us meanwhile).
		// Only the latest Ping needs an answer (RFC 6455 section 5.5.3).
		for {
			select {
			case c.pongs <- p:
				return nil
			default:
			}
			select {
			case <-c.pongs:
			default:
			}
		}
	case ws.OpPong:
		return nil
	case ws.OpClose:
		c.closed = true
		if len(p) >= 2 {
			code, reason := ws.ParseCloseFrameData(p)
			cc := int(code)
			c.rep.ServerCloseCode = &cc
			c.rep.ServerCloseReason = reason
		} else if len(p) == 1 {
			return errors.New("server sent a Close frame with a 1-byte body")
		}
		return errServerClose
	}
	return fmt.Errorf("unexpected control opcode %d", h.OpCode)
}

// answerClose replies to the server's Close (RFC 6455 section 5.5.1) when
// the client has not sent one yet: it echoes the server's code when that code
// may be sent on the wire, and sends 1002 when it may not.
func (c *conn) answerClose() {
	code := c.rep.ServerCloseCode
	reason := ""
	if code != nil {
		if ws.CheckCloseFrameData(ws.StatusCode(*code), c.rep.ServerCloseReason) != nil {
			pe := int(ws.StatusProtocolError)
			code = &pe
			reason = "invalid close code"
		}
	}
	_ = c.sendClose(code, reason)
}

type message struct {
	op      ws.OpCode
	payload []byte
}

// next reads the next data message, answering pings on the way. It returns
// errServerClose when the server's Close frame arrives.
func (c *conn) next() (message, error) {
	for {
		h, err := c.rd.NextFrame()
		if err != nil {
			return message{}, c.readError(err)
		}
		if h.OpCode.IsControl() {
			if err := c.control(h, c.rd); err != nil {
				return message{}, c.readError(err)
			}
			continue
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(c.rd); err != nil {
			return message{}, c.readError(err)
		}
		p := buf.Bytes()
		if c.deflate && c.msgFlag.IsCompressed() {
			if p, err = c.inflate(p); err != nil {
				c.fail(ws.StatusProtocolError, "bad deflate data")
				return message{}, fmt.Errorf("inflating a compressed message failed: %w", err)
			}
		}
		if h.OpCode == ws.OpText && !utf8.Valid(p) {
			c.fail(ws.StatusInvalidFramePayloadData, "invalid UTF-8")
			return message{}, errors.New("server sent a text message that is not valid UTF-8")
		}
		return message{op: h.OpCode, payload: p}, nil
	}
}

// readError maps a read failure: a protocol violation by the server fails
// the WebSocket with 1002 (RFC 6455 section 7.4.1).
func (c *conn) readError(err error) error {
	if errors.Is(err, errServerClose) {
		return err
	}
	if _, ok := errors.AsType[ws.ProtocolError](err); ok {
		c.fail(ws.StatusProtocolError, err.Error())
		return fmt.Errorf("server broke RFC 6455: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("server ended the stream without a Close frame")
	}
	return fmt.Errorf("reading from the stream failed: %w", err)
}

// inflate undoes permessage-deflate (RFC 7692 section 7.2.2), keeping the
// LZ77 window across messages unless server_no_context_takeover.
func (c *conn) inflate(p []byte) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff}))
	var dict []byte
	if !c.noCtx {
		dict = c.window
	}
	fr := flate.NewReaderDict(src, dict)
	out, err := io.ReadAll(fr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if !c.noCtx {
		c.window = append(c.window, out...)
		if len(c.window) > 32*1024 {
			c.window = append([]byte(nil), c.window[len(c.window)-32*1024:]...)
		}
	}
	return out, nil
}

// awaitClose reads until the server's Close frame; data messages on the way
// are counted in echoed.
func (c *conn) awaitClose() error {
	for {
		_, err := c.next()
		if errors.Is(err, errServerClose) {
			return nil
		}
		if err != nil {
			return err
		}
		c.rep.Echoed++
	}
}

// finish ends the stream after the Close handshake and notes whether the
// server ended its side too (bounded wait).
func (c *conn) finish() {
	_ = c.str.Close()
	_ = c.str.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := io.Copy(io.Discard, c.rd.Source)
	c.rep.Fin = err == nil && n == 0
}

// payload returns message i of the echo run: even i text, odd i binary.
func payload(i, size int) (ws.OpCode, []byte) {
	raw := peer.Payload(fmt.Sprintf("harrier-ws-%d", i), size)
	if i%2 == 1 {
		return ws.OpBinary, raw
	}
	return ws.OpText, utf8Text(raw, size)
}

// utf8Text maps seed bytes to exactly size bytes of valid UTF-8 mixing ASCII
// with 2-, 3- and 4-byte characters (so they straddle frame and DATA frame
// boundaries).
func utf8Text(seed []byte, size int) []byte {
	multi := []string{"é", "€", "😀"}
	out := make([]byte, 0, size)
	for i := 0; len(out) < size; i++ {
		b := seed[i%len(seed)]
		room := size - len(out)
		if b%4 != 3 && int(b%4)+2 <= room {
			out = append(out, multi[b%4]...)
			continue
		}
		out = append(out, 'a'+b%26)
	}
	return out
}

func (c *conn) echo(o options) error {
	type sent struct {
		op ws.OpCode
		p  []byte
	}
	msgs := make([]sent, o.n)
	for i := range msgs {
		op, p := payload(i, o.sizes[i%len(o.sizes)])
		msgs[i] = sent{op, p}
	}
	defer func() {
		c.rep.Messages = int(c.sentMsgs.Load())
		c.rep.Bytes = c.sentBytes.Load()
	}()
	werr := make(chan error, 1)
	go func() {
		for i, m := range msgs {
			if err := c.sendMessage(m.op, m.p); err != nil {
				werr <- fmt.Errorf("sending message %d failed: %w", i, err)
				return
			}
		}
		werr <- nil
	}()
	for i, m := range msgs {
		got, err := c.next()
		if errors.Is(err, errServerClose) {
			c.answerClose()
			return fmt.Errorf("server closed the WebSocket after %d of %d echoes (code %s)", i, o.n, codeString(c.rep.ServerCloseCode))
		}
		if err != nil {
			return fmt.Errorf("echo %d: %w", i, err)
		}
		if got.op != m.op || !bytes.Equal(got.payload, m.p) {
			c.fail(ws.StatusProtocolError, "echo mismatch")
			return fmt.Errorf("echo %d differs: sent %s of %d bytes, got %s of %d bytes", i,
				opName(m.op), len(m.p), opName(got.op), len(got.payload))
		}
		c.rep.Echoed++
	}
	if err := <-werr; err != nil {
		return err
	}
	code := o.closeCode
	if err := c.sendClose(&code, o.closeReason); err != nil {
		return fmt.Errorf("sending Close failed: %w", err)
	}
	if err := c.awaitClose(); err != nil {
		return fmt.Errorf("waiting for the server's Close: %w", err)
	}
	if c.rep.Echoed != o.n {
		return fmt.Errorf("server sent %d data messages after the echoes", c.rep.Echoed-o.n)
	}
	return nil
}

func (c *conn) raw(o options) error {
	defer func() {
		c.rep.Messages = int(c.sentMsgs.Load())
		c.rep.Bytes = c.sentBytes.Load()
	}()
	var send func() error
	var p []byte
	switch o.mode {
	case "raw-invalid-utf8":
		p = []byte("harrier \xce\xb1 ok then \xff\xfe\xc3\x28 bad \xed\xa0\x80 surrogate")
		send = func() error { return c.sendMessage(ws.OpText, p) }
	case "raw-unmasked":
		p = []byte("unmasked frame from a client")
		send = func() error {
			c.sentMsgs.Add(1)
			c.sentBytes.Add(int64(len(p)))
			return c.write(-1, func(w io.Writer) error { return ws.WriteFrame(w, ws.NewTextFrame(p)) })
		}
	case "raw-bad-close":
		code := o.closeCode
		send = func() error { return c.sendClose(&code, o.closeReason) }
	case "raw-oversize":
		p = peer.Payload("harrier-ws-oversize", o.size)
		send = func() error { return c.sendMessage(ws.OpBinary, p) }
	}
	// Sent from another goroutine: a server that rejects the frame early may
	// stop reading it (flow control then blocks the write) and close at once.
	serr := make(chan error, 1)
	go func() { serr <- send() }()
	if o.mode == "raw-oversize" {
		got, err := c.next()
		if errors.Is(err, errServerClose) {
			c.answerClose()
			return nil
		}
		if err != nil {
			return fmt.Errorf("waiting for the server's Close: %w", err)
		}
		c.rep.Echoed++
		if got.op != ws.OpBinary || !bytes.Equal(got.payload, p) {
			c.fail(ws.StatusProtocolError, "echo mismatch")
			return fmt.Errorf("server answered the %d-byte message with a different %s message of %d bytes",
				len(p), opName(got.op), len(got.payload))
		}
		if err := <-serr; err != nil {
			return fmt.Errorf("sending the message failed: %w", err)
		}
		code := o.closeCode
		if err := c.sendClose(&code, o.closeReason); err != nil {
			return fmt.Errorf("sending Close failed: %w", err)
		}
		if err := c.awaitClose(); err != nil {
			return fmt.Errorf("waiting for the server's Close: %w", err)
		}
		return nil
	}
	if err := c.awaitClose(); err != nil {
		select {
		case serr := <-serr:
			if serr != nil {
				return fmt.Errorf("sending the %s frame failed (%v), then %w", o.mode, serr, err)
			}
		default:
		}
		return fmt.Errorf("waiting for the server's Close: %w", err)
	}
	c.answerClose()
	return nil
}

func codeString(code *int) string {
	if code == nil {
		return "none"
	}
	return strconv.Itoa(*code)
}

func opName(op ws.OpCode) string {
	switch op {
	case ws.OpText:
		return "text"
	case ws.OpBinary:
		return "binary"
	}
	return fmt.Sprintf("opcode %d", op)
}
