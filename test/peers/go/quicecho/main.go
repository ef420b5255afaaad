// Command quicecho is a raw QUIC (no HTTP) echo client built on quic-go.
//
// It opens -streams bidirectional streams concurrently on ONE connection,
// writes -size deterministic bytes on each and closes its send side; the
// server must echo the bytes back and end its side. With -datagrams it also
// sends QUIC DATAGRAM frames that the server must echo. With -resume it first
// makes a short priming connection to get a session ticket, so the measured
// connection resumes (and, with -zero-rtt, sends stream 0 as 0-RTT data).
//
// One JSON object is printed on stdout (see ../../README.md). Exit status 0
// when the run completed (checks may have failed: see "ok" and "error"),
// 2 on usage errors.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"harrier/peers/internal/peer"
)

type streamError struct {
	Index    int    `json:"index"`
	StreamID int64  `json:"stream_id"`
	Error    string `json:"error"`
}

type report struct {
	OK                bool          `json:"ok"`
	Streams           int           `json:"streams"`
	StreamsOK         int           `json:"streams_ok"`
	BytesEchoed       int64         `json:"bytes_echoed"`
	DatagramsSent     int           `json:"datagrams_sent"`
	DatagramsEchoed   int           `json:"datagrams_echoed"`
	DatagramsBad      int           `json:"datagrams_bad"`
	RetrySeen         bool          `json:"retry_seen"`
	Resumed           bool          `json:"resumed"`
	EarlyDataAccepted bool          `json:"early_data_accepted"`
	ALPN              *string       `json:"alpn"`
	HandshakeS        *float64      `json:"handshake_s"`
	ElapsedS          float64       `json:"elapsed_s"`
	StreamErrors      []streamError `json:"stream_errors"`
	Error             *string       `json:"error"`
}

type options struct {
	addr, alpn, serverName    string
	streams, size             int
	datagrams, datagramSize   int
	maxDatagramSize           int
	resume, zeroRTT           bool
	handshakeTimeout, timeout time.Duration
}

func parseFlags() options {
	var o options
	var hsTimeout, timeout float64
	flag.StringVar(&o.addr, "addr", "127.0.0.1:4433", "server host:port")
	flag.StringVar(&o.alpn, "alpn", "harrier-echo", "ALPN protocol")
	flag.StringVar(&o.serverName, "server-name", "", "TLS SNI (default: host of -addr)")
	flag.IntVar(&o.streams, "streams", 100, "concurrent bidirectional streams")
	flag.IntVar(&o.size, "size", 1048576, "bytes per stream")
	flag.IntVar(&o.datagrams, "datagrams", 0, "QUIC datagrams to send")
	flag.IntVar(&o.datagramSize, "datagram-size", 1000, "bytes per datagram")
	flag.IntVar(&o.maxDatagramSize, "max-datagram-size", 1350, "UDP payload cap (1200..65527)")
	flag.BoolVar(&o.resume, "resume", false, "prime a session ticket with a first connection, then resume")
	flag.BoolVar(&o.zeroRTT, "zero-rtt", false, "with -resume: send stream 0 as 0-RTT data")
	flag.Float64Var(&hsTimeout, "handshake-timeout", 10, "seconds to wait for the handshake")
	flag.Float64Var(&timeout, "timeout", 60, "bound on the whole run, seconds")
	flag.Parse()
	usage := func(msg string) {
		fmt.Fprintln(os.Stderr, "quicecho:", msg)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments")
	}
	if o.streams < 0 || o.size < 0 || o.datagrams < 0 || o.datagramSize < 1 {
		usage("counts and sizes must be non-negative (datagram size >= 1)")
	}
	if o.maxDatagramSize < 1200 || o.maxDatagramSize > 65527 {
		usage("-max-datagram-size must be within 1200..65527")
	}
	if o.zeroRTT && !o.resume {
		usage("-zero-rtt needs -resume")
	}
	if o.serverName == "" {
		host, _, err := net.SplitHostPort(o.addr)
		if err != nil {
			usage("bad -addr: " + err.Error())
		}
		o.serverName = host
	}
	o.handshakeTimeout = time.Duration(hsTimeout * float64(time.Second))
	o.timeout = time.Duration(timeout * float64(time.Second))
	return o
}

func main() {
	o := parseFlags()
	start := time.Now()
	rep := &report{Streams: o.streams, StreamErrors: []streamError{}}
	retry := &peer.RetryDetector{}
	err := run(o, rep, retry)
	rep.RetrySeen = retry.Seen()
	rep.ElapsedS = peer.Seconds(time.Since(start))
	if err != nil {
		msg := err.Error()
		rep.Error = &msg
		rep.OK = false
	}
	peer.Emit(rep)
}

func run(o options, rep *report, retry *peer.RetryDetector) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	cache := peer.NewNotifyingCache()
	tlsConf := peer.TLSConfig(o.serverName, []string{o.alpn}, cache)
	quicConf := peer.QUICConfig(o.maxDatagramSize, retry)
	quicConf.EnableDatagrams = o.datagrams > 0
	quicConf.MaxIdleTimeout = 30 * time.Second

	if o.resume {
		if err := prime(ctx, o, tlsConf, quicConf, cache); err != nil {
			return fmt.Errorf("priming connection: %w", err)
		}
	}

	start := time.Now()
	// The measured connection. DialAddrEarly returns as soon as 0-RTT data
	// may be sent (with a ticket allowing it), else after the handshake.
	hsCtx, hsCancel := context.WithTimeout(ctx, o.handshakeTimeout)
	defer hsCancel()
	var conn *quic.Conn
	var err error
	if o.zeroRTT {
		conn, err = quic.DialAddrEarly(hsCtx, o.addr, tlsConf, quicConf)
	} else {
		conn, err = quic.DialAddr(hsCtx, o.addr, tlsConf, quicConf)
	}
	if err != nil {
		return handshakeErr(err, hsCtx, o)
	}
	defer conn.CloseWithError(0, "")

	results := make([]streamResult, o.streams)
	var wg sync.WaitGroup
	runStream := func(i int) {
		defer wg.Done()
		results[i] = echoStream(ctx, conn, i, o.size)
	}
	first := 0
	if o.zeroRTT && o.streams > 0 {
		wg.Add(1)
		go runStream(0) // opened before the handshake completes: 0-RTT
		first = 1
	}

	select {
	case <-conn.HandshakeComplete():
	case <-hsCtx.Done():
		return handshakeErr(hsCtx.Err(), hsCtx, o)
	case <-conn.Context().Done():
		return fmt.Errorf("connection closed during handshake: %w", context.Cause(conn.Context()))
	}
	hs := peer.Seconds(time.Since(start))
	rep.HandshakeS = &hs
	st := conn.ConnectionState()
	alpn := st.TLS.NegotiatedProtocol
	rep.ALPN = &alpn
	rep.Resumed = st.TLS.DidResume
	rep.EarlyDataAccepted = st.Used0RTT
	peer.Logf("handshake done: alpn=%s resumed=%v 0rtt=%v", alpn, rep.Resumed, rep.EarlyDataAccepted)

	// Datagrams: receiver first, then the sends.
	var dgWait func() (int, int, error)
	var dgErr error
	if o.datagrams > 0 {
		if !st.SupportsDatagrams.Remote {
			return errors.New("server did not advertise max_datagram_frame_size")
		}
		dgWait = echoDatagrams(ctx, conn, o, rep)
	}

	for i := first; i < o.streams; i++ {
		wg.Add(1)
		go runStream(i)
	}
	wg.Wait()

	for i, r := range results {
		rep.BytesEchoed += r.received
		if r.err == nil {
			rep.StreamsOK++
		} else if len(rep.StreamErrors) < 20 {
			rep.StreamErrors = append(rep.StreamErrors, streamError{i, r.streamID, r.err.Error()})
		}
	}
	if dgWait != nil {
		rep.DatagramsEchoed, rep.DatagramsBad, dgErr = dgWait()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("timeout after %v", o.timeout)
	}
	if cause := context.Cause(conn.Context()); conn.Context().Err() != nil {
		return fmt.Errorf("connection closed: %w", cause)
	}
	dgOK := o.datagrams == 0 || (rep.DatagramsEchoed > 0 && rep.DatagramsBad == 0)
	rep.OK = rep.StreamsOK == o.streams && dgOK
	switch {
	case rep.StreamsOK != o.streams:
		return fmt.Errorf("%d stream(s) failed", o.streams-rep.StreamsOK)
	case dgErr != nil:
		rep.OK = false
		return dgErr
	case !dgOK:
		return errors.New("datagram echo failed")
	}
	return nil
}

func handshakeErr(err error, hsCtx context.Context, o options) error {
	if errors.Is(err, context.DeadlineExceeded) || hsCtx.Err() != nil {
		return fmt.Errorf("handshake timeout after %v", o.handshakeTimeout)
	}
	return fmt.Errorf("dial: %w", err)
}

// prime makes one short connection and waits (up to 2 s) for a session ticket.
func prime(ctx context.Context, o options, tlsConf *tls.Config, quicConf *quic.Config, cache *peer.NotifyingCache) error {
	hsCtx, cancel := context.WithTimeout(ctx, o.handshakeTimeout)
	defer cancel()
	conn, err := quic.DialAddr(hsCtx, o.addr, tlsConf, quicConf)
	if err != nil {
		return handshakeErr(err, hsCtx, o)
	}
	defer conn.CloseWithError(0, "")
	select {
	case <-cache.Got:
		return nil
	case <-time.After(2 * time.Second):
		return errors.New("no session ticket received within 2s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

type streamResult struct {
	streamID int64
	received int64
	err      error
}

// echoStream writes the stream's payload and FIN while reading the echo
// concurrently (the server's echo is flow-controlled by our reads).
func echoStream(ctx context.Context, conn *quic.Conn, index, size int) (res streamResult) {
	res.streamID = -1
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		res.err = fmt.Errorf("open: %w", err)
		return res
	}
	res.streamID = int64(str.StreamID())
	data := peer.Payload(fmt.Sprintf("harrier-echo-stream-%d", index), size)
	want := sha256.Sum256(data)

	writeErr := make(chan error, 1)
	go func() {
		_, err := str.Write(data)
		if err == nil {
			err = str.Close() // FIN on our send side
		}
		writeErr <- err
	}()
	stop := context.AfterFunc(ctx, func() { str.CancelRead(0); str.CancelWrite(0) })
	defer stop()

	h := sha256.New()
	n, err := io.Copy(h, str)
	res.received = n
	if werr := <-writeErr; werr != nil && err == nil {
		err = fmt.Errorf("write: %w", werr)
	}
	switch {
	case err != nil:
		res.err = err
	case n != int64(size):
		res.err = fmt.Errorf("length %d != %d", n, size)
	case !bytes.Equal(h.Sum(nil), want[:]):
		res.err = fmt.Errorf("sha256 mismatch: got %s", hex.EncodeToString(h.Sum(nil)))
	}
	return res
}

// echoDatagrams sends the datagrams and returns a function that waits until
// all came back (or 1 s passes without a new one) and reports (echoed, bad,
// the error that stopped the sends if any).
func echoDatagrams(ctx context.Context, conn *quic.Conn, o options, rep *report) func() (int, int, error) {
	expected := make(map[string]int, o.datagrams)
	payloads := make([][]byte, o.datagrams)
	for j := range payloads {
		payloads[j] = peer.Payload(fmt.Sprintf("harrier-echo-datagram-%d", j), o.datagramSize)
		expected[string(payloads[j])] = j
	}
	var mu sync.Mutex
	echoed := map[int]bool{}
	bad := 0
	arrived := make(chan struct{}, 1)
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		for {
			msg, err := conn.ReceiveDatagram(rctx)
			if err != nil {
				return
			}
			mu.Lock()
			if j, ok := expected[string(msg)]; ok {
				echoed[j] = true
			} else {
				bad++
			}
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}()
	var sendErr error
	for _, p := range payloads {
		if sendErr = conn.SendDatagram(p); sendErr != nil {
			sendErr = fmt.Errorf("SendDatagram #%d: %w", rep.DatagramsSent, sendErr)
			break
		}
		rep.DatagramsSent++
	}
	return func() (int, int, error) {
		defer rcancel()
	wait:
		for {
			mu.Lock()
			n := len(echoed)
			mu.Unlock()
			if n >= rep.DatagramsSent {
				break
			}
			select {
			case <-arrived:
			case <-time.After(time.Second):
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return len(echoed), bad, sendErr
	}
}
