// Package peer holds the plumbing shared by the quic-go peer clients:
// deterministic payloads, the JSON report, flag helpers and Retry detection.
package peer

import (
	"context"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// Payload returns size deterministic pseudo-random bytes: SHAKE128(label).
// The same definition is used by the Python peers and is easy to reproduce in
// Node (crypto.createHash("shake128", {outputLength: size})).
func Payload(label string, size int) []byte {
	out := make([]byte, size)
	h := sha3.NewSHAKE128()
	h.Write([]byte(label))
	h.Read(out)
	return out
}

// SHA256Hex is the lowercase hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Emit prints the report as one JSON object on stdout.
func Emit(report any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(report); err != nil {
		fmt.Fprintln(os.Stderr, "encoding report:", err)
		os.Exit(1)
	}
}

// Seconds rounds d to milliseconds, in seconds (for the report).
func Seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1000) / 1000
}

// Logf writes a diagnostic line to stderr (stdout is reserved for the report).
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// ListFlag is a repeatable string flag that also splits on commas.
type ListFlag []string

func (l *ListFlag) String() string { return strings.Join(*l, ",") }

// Set appends each non-empty comma-separated element.
func (l *ListFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// RepeatFlag is a repeatable string flag kept verbatim (no comma split).
type RepeatFlag []string

func (r *RepeatFlag) String() string { return strings.Join(*r, "; ") }

// Set appends v.
func (r *RepeatFlag) Set(v string) error { *r = append(*r, v); return nil }

// TLSConfig returns a client TLS config without certificate verification
// (the server uses a self-signed development certificate).
func TLSConfig(serverName string, alpn []string, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // test peer against a dev cert
		ServerName:         serverName,
		NextProtos:         alpn,
		ClientSessionCache: cache,
	}
}

// QUICConfig caps the UDP payload at maxDatagramSize (path MTU discovery off,
// so loopback's 64 KiB MTU is not probed) and installs the Retry detector.
func QUICConfig(maxDatagramSize int, retry *RetryDetector) *quic.Config {
	return &quic.Config{
		InitialPacketSize:       uint16(maxDatagramSize),
		DisablePathMTUDiscovery: true,
		Tracer:                  retry.Tracer,
	}
}

// RetryDetector notices a Retry packet accepted by quic-go. quic-go exposes
// no API for it; its qlog tracer records a PacketReceived event with packet
// type "retry" when (and only when) it accepts a Retry.
type RetryDetector struct{ seen atomic.Bool }

// Seen reports whether a Retry was accepted on any traced connection.
func (r *RetryDetector) Seen() bool { return r.seen.Load() }

// Tracer is a quic.Config.Tracer.
func (r *RetryDetector) Tracer(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
	return retryTrace{r}
}

type retryTrace struct{ r *RetryDetector }

func (t retryTrace) AddProducer() qlogwriter.Recorder { return retryRecorder(t) }

type retryRecorder struct{ r *RetryDetector }

func (rr retryRecorder) RecordEvent(ev qlogwriter.Event) {
	if pr, ok := ev.(qlog.PacketReceived); ok && pr.Header.PacketType == qlog.PacketTypeRetry {
		rr.r.seen.Store(true)
	}
}

func (rr retryRecorder) Close() error { return nil }

// NotifyingCache is a TLS session cache that signals when a ticket arrives.
type NotifyingCache struct {
	tls.ClientSessionCache
	once sync.Once
	Got  chan struct{}
}

// NewNotifyingCache wraps an LRU session cache.
func NewNotifyingCache() *NotifyingCache {
	return &NotifyingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8), Got: make(chan struct{})}
}

// Put stores the session and closes Got on the first real ticket.
func (c *NotifyingCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		c.once.Do(func() { close(c.Got) })
	}
}
