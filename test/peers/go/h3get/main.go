// Command h3get is an HTTP/3 client built on quic-go's http3 package.
//
// All requests go through ONE http3.Transport, hence one QUIC connection to
// the server; with -parallel (the default) the GETs (or -method requests) run
// concurrently, each with the -header fields. It can also POST (or
// -post-method) a deterministic body or -body-file with a -content-type,
// request trailers, without content-length, or paced at -post-rate; and cancel
// one GET after its first response bytes (quic-go then aborts the stream with
// H3_REQUEST_CANCELLED in both directions).
//
// One JSON object is printed on stdout (see ../../README.md). Exit status 0
// when the run completed (checks may have failed: see "ok" and "error"),
// 2 on usage errors.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"

	"harrier/peers/internal/peer"
)

const postLabel = "harrier-post"

type response struct {
	Path     string            `json:"path"`
	Method   string            `json:"method"`
	Status   *int              `json:"status"`
	Headers  map[string]string `json:"headers"`
	Trailers map[string]string `json:"trailers,omitempty"`
	Bytes    int64             `json:"bytes"`
	SHA256   string            `json:"sha256"`
	BodyB64  *string           `json:"body_b64,omitempty"`
	// Uncompressed: quic-go asked for gzip on its own and decoded the body
	// (Content-Encoding and Content-Length are then gone from Headers).
	Uncompressed bool    `json:"uncompressed,omitempty"`
	Error        *string `json:"error,omitempty"`
}

type postResult struct {
	response
	SentBytes    int               `json:"sent_bytes"`
	SentSHA256   string            `json:"sent_sha256"`
	TrailersSent map[string]string `json:"trailers_sent"`
}

type cancelResult struct {
	response
	CancelSent            bool   `json:"cancel_sent"`
	BytesBeforeCancel     *int64 `json:"bytes_before_cancel"`
	CompletedBeforeCancel bool   `json:"completed_before_cancel"`
}

type report struct {
	OK             bool          `json:"ok"`
	Responses      []response    `json:"responses"`
	Post           *postResult   `json:"post"`
	Cancelled      *cancelResult `json:"cancelled"`
	ALPN           *string       `json:"alpn"`
	RetrySeen      bool          `json:"retry_seen"`
	FirstResponseS *float64      `json:"first_response_s"`
	ElapsedS       float64       `json:"elapsed_s"`
	Error          *string       `json:"error"`
}

type options struct {
	base, serverName, outDir string
	paths                    []string
	parallel                 bool
	method                   string
	headers                  http.Header
	authority                string
	bodyB64                  int64
	noRedirect               bool
	post                     string
	postMethod               string
	postSize                 int
	bodyFile                 string
	contentType              string
	noContentLength          bool
	postRate                 float64
	trailers                 http.Header
	trailerList              map[string]string
	cancel                   string
	maxDatagramSize          int
	handshakeTimeout         time.Duration
	timeout                  time.Duration
}

func parseFlags() options {
	var o options
	var paths peer.ListFlag
	var trailers, headers peer.RepeatFlag
	var pathsFile string
	var timeout, hsTimeout float64
	flag.StringVar(&o.base, "base", "", "https://HOST:PORT (required)")
	flag.Var(&paths, "paths", "comma-separated paths to GET (repeatable)")
	flag.StringVar(&pathsFile, "paths-file", "", "file with one path per line")
	flag.BoolVar(&o.parallel, "parallel", true, "run the GETs concurrently (false: one after another, same connection)")
	flag.StringVar(&o.method, "method", "GET", "method of the -paths requests")
	flag.Var(&headers, "header", "'name: value' request field sent on every request (repeatable; Host sets :authority)")
	flag.StringVar(&o.authority, "authority", "", ":authority of every request (default: host of -base)")
	flag.Int64Var(&o.bodyB64, "body-b64", 0, "report each body of at most N bytes as body_b64 (0: never)")
	flag.BoolVar(&o.noRedirect, "no-redirect", false, "do not follow redirects (report the 3xx itself)")
	flag.StringVar(&o.post, "post", "", "also POST a deterministic body to this path")
	flag.IntVar(&o.postSize, "post-size", 0, "POST body size in bytes")
	flag.StringVar(&o.postMethod, "post-method", "POST", "method of the -post request")
	flag.StringVar(&o.bodyFile, "body-file", "", "POST body read from this file (instead of -post-size bytes)")
	flag.StringVar(&o.contentType, "content-type", "", "content-type of the POST")
	flag.BoolVar(&o.noContentLength, "no-content-length", false, "send the POST body without content-length")
	flag.Float64Var(&o.postRate, "post-rate", 0, "pace the POST body: BYTES_PER_S/10 bytes every 100 ms")
	flag.Var(&trailers, "trailer", "'name: value' request trailer sent after the POST body (repeatable)")
	flag.StringVar(&o.cancel, "cancel", "", "GET this path and cancel it after the first response bytes")
	flag.StringVar(&o.outDir, "out-dir", "", "write each body here, by basename")
	flag.StringVar(&o.serverName, "server-name", "", "TLS SNI (default: host of -base)")
	flag.IntVar(&o.maxDatagramSize, "max-datagram-size", 1350, "UDP payload cap (1200..65527)")
	flag.Float64Var(&hsTimeout, "handshake-timeout", 10, "seconds to wait for the handshake")
	flag.Float64Var(&timeout, "timeout", 60, "bound on the whole run, seconds")
	flag.Parse()
	usage := func(msg string) {
		fmt.Fprintln(os.Stderr, "h3get:", msg)
		flag.Usage()
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		usage("unexpected arguments")
	}
	u, err := url.Parse(o.base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		usage("-base must look like https://HOST:PORT")
	}
	o.base = strings.TrimRight(o.base, "/")
	if o.serverName == "" {
		o.serverName = u.Hostname()
	}
	if pathsFile != "" {
		f, err := os.Open(pathsFile)
		if err != nil {
			usage(err.Error())
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				paths = append(paths, line)
			}
		}
		f.Close()
	}
	for _, p := range paths {
		o.paths = append(o.paths, "/"+strings.TrimLeft(p, "/"))
	}
	if o.post != "" {
		o.post = "/" + strings.TrimLeft(o.post, "/")
	}
	if o.cancel != "" {
		o.cancel = "/" + strings.TrimLeft(o.cancel, "/")
	}
	o.trailers = http.Header{}
	o.trailerList = map[string]string{}
	for _, t := range trailers {
		name, value, ok := strings.Cut(t, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			usage(fmt.Sprintf("bad -trailer %q: expected 'name: value'", t))
		}
		o.trailers.Add(name, strings.TrimSpace(value))
		o.trailerList[strings.ToLower(name)] = strings.TrimSpace(value)
	}
	if len(trailers) > 0 && o.post == "" {
		usage("-trailer needs -post")
	}
	o.headers = http.Header{}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			usage(fmt.Sprintf("bad -header %q: expected 'name: value'", h))
		}
		value = strings.TrimSpace(value)
		if strings.EqualFold(name, "host") {
			o.authority = value // Go sends req.Host as :authority
			continue
		}
		o.headers.Add(name, value)
	}
	o.method = strings.ToUpper(o.method)
	o.postMethod = strings.ToUpper(o.postMethod)
	if o.post == "" && (o.bodyFile != "" || o.contentType != "" || o.noContentLength || o.postRate > 0) {
		usage("-body-file, -content-type, -no-content-length and -post-rate need -post")
	}
	if o.bodyFile != "" {
		if _, err := os.Stat(o.bodyFile); err != nil {
			usage(err.Error())
		}
	}
	if len(o.paths) == 0 && o.post == "" && o.cancel == "" {
		usage("nothing to do: give -paths, -paths-file, -post or -cancel")
	}
	if o.maxDatagramSize < 1200 || o.maxDatagramSize > 65527 {
		usage("-max-datagram-size must be within 1200..65527")
	}
	o.timeout = time.Duration(timeout * float64(time.Second))
	o.handshakeTimeout = time.Duration(hsTimeout * float64(time.Second))
	return o
}

func main() {
	o := parseFlags()
	start := time.Now()
	rep := &report{Responses: []response{}}
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

// client bundles the single transport and what we learn about its connection.
type client struct {
	o       options
	http    *http.Client
	start   time.Time
	stateMu sync.Mutex
	rep     *report
	failed  atomic.Int32
}

func run(o options, rep *report, retry *peer.RetryDetector) error {
	if o.outDir != "" {
		if err := os.MkdirAll(o.outDir, 0o755); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	tr := &http3.Transport{
		TLSClientConfig: peer.TLSConfig(o.serverName, nil, nil), // http3 sets ALPN h3
		QUICConfig:      peer.QUICConfig(o.maxDatagramSize, retry),
	}
	tr.QUICConfig.MaxIdleTimeout = 30 * time.Second
	tr.QUICConfig.HandshakeIdleTimeout = o.handshakeTimeout
	defer tr.Close()
	hc := &http.Client{Transport: tr}
	if o.noRedirect {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	c := &client{o: o, http: hc, start: time.Now(), rep: rep}

	var wg sync.WaitGroup
	rep.Responses = make([]response, len(o.paths))
	for i, p := range o.paths {
		get := func() {
			rep.Responses[i] = c.get(ctx, p)
		}
		if o.parallel {
			wg.Add(1)
			go func() { defer wg.Done(); get() }()
		} else {
			get()
		}
	}
	if o.post != "" {
		wg.Add(1)
		go func() { defer wg.Done(); rep.Post = c.postRequest(ctx) }()
	}
	if o.cancel != "" {
		wg.Add(1)
		go func() { defer wg.Done(); rep.Cancelled = c.cancelRequest(ctx) }()
	}
	wg.Wait()

	if ctx.Err() != nil {
		return fmt.Errorf("timeout after %v", o.timeout)
	}
	if n := c.failed.Load(); n > 0 {
		return fmt.Errorf("%d request(s) failed", n)
	}
	rep.OK = true
	return nil
}

// noteConn records connection facts from the first response.
func (c *client) noteConn(resp *http.Response) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.rep.ALPN != nil || resp.TLS == nil {
		return
	}
	alpn := resp.TLS.NegotiatedProtocol
	c.rep.ALPN = &alpn
	first := peer.Seconds(time.Since(c.start))
	c.rep.FirstResponseS = &first
}

func (c *client) fail(r *response, err error) {
	msg := err.Error()
	r.Error = &msg
	c.failed.Add(1)
}

// do runs one request and fills a response record; onData, when set, is called
// after each chunk of body read (with the running byte count) and may return
// true to stop reading.
func (c *client) do(ctx context.Context, req *http.Request, p string, out io.Writer,
	onData func(n int64) bool) (r response, stopped bool) {
	r = response{Path: p, Method: req.Method, Headers: map[string]string{}}
	h := sha256.New()
	var kept *bytes.Buffer
	if c.o.bodyB64 > 0 {
		kept = &bytes.Buffer{}
		out = keepWriter(out, kept, c.o.bodyB64+1)
	}
	defer func() {
		r.SHA256 = hex.EncodeToString(h.Sum(nil))
		if kept != nil && r.Bytes <= c.o.bodyB64 {
			b := base64.StdEncoding.EncodeToString(kept.Bytes())
			r.BodyB64 = &b
		}
	}()
	for name, values := range c.o.headers {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if c.o.authority != "" {
		req.Host = c.o.authority
	}
	resp, err := c.http.Do(req.WithContext(ctx))
	if err != nil {
		c.fail(&r, err)
		return r, false
	}
	defer resp.Body.Close()
	c.noteConn(resp)
	status := resp.StatusCode
	r.Status = &status
	r.Headers = lowerHeaders(resp.Header)
	r.Uncompressed = resp.Uncompressed
	if resp.ContentLength >= 0 {
		// Go moves Content-Length out of the header map
		r.Headers["content-length"] = fmt.Sprint(resp.ContentLength)
	}
	stopped, err = readBody(resp.Body, h, out, &r.Bytes, onData)
	if err != nil {
		c.fail(&r, err)
		return r, stopped
	}
	if len(resp.Trailer) > 0 {
		r.Trailers = lowerHeaders(resp.Trailer)
	}
	return r, stopped
}

func readBody(body io.Reader, h hash.Hash, out io.Writer, n *int64, onData func(int64) bool) (bool, error) {
	buf := make([]byte, 32*1024)
	for {
		k, err := body.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			*n += int64(k)
			if out != nil {
				if _, werr := out.Write(buf[:k]); werr != nil {
					return false, werr
				}
			}
			if onData != nil && err == nil && onData(*n) {
				return true, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

func (c *client) get(ctx context.Context, p string) response {
	req, err := http.NewRequest(c.o.method, c.o.base+p, nil)
	if err != nil {
		r := response{Path: p, Headers: map[string]string{}}
		c.fail(&r, err)
		return r
	}
	var out io.Writer
	if c.o.outDir != "" {
		f, err := os.Create(outFile(c.o.outDir, p))
		if err != nil {
			r := response{Path: p, Headers: map[string]string{}}
			c.fail(&r, err)
			return r
		}
		defer f.Close()
		out = f
	}
	r, _ := c.do(ctx, req, p, out, nil)
	return r
}

func (c *client) postRequest(ctx context.Context) *postResult {
	var body []byte
	if c.o.bodyFile != "" {
		var err error
		if body, err = os.ReadFile(c.o.bodyFile); err != nil {
			res := &postResult{response: response{Path: c.o.post, Method: c.o.postMethod, Headers: map[string]string{}}}
			c.fail(&res.response, err)
			return res
		}
	} else {
		body = peer.Payload(postLabel, c.o.postSize)
	}
	res := &postResult{SentBytes: len(body), SentSHA256: peer.SHA256Hex(body), TrailersSent: c.o.trailerList}
	req, err := http.NewRequest(c.o.postMethod, c.o.base+c.o.post, bytes.NewReader(body))
	if err != nil {
		res.response = response{Path: c.o.post, Method: c.o.postMethod, Headers: map[string]string{}}
		c.fail(&res.response, err)
		return res
	}
	req.ContentLength = int64(len(body))
	var paced *pacedReader
	if c.o.postRate > 0 {
		step := int(c.o.postRate / 10)
		if step < 1 {
			step = 1
		}
		paced = &pacedReader{data: body, step: step}
		req.Body = paced
		req.GetBody = nil
	} else if c.o.noContentLength {
		req.Body = io.NopCloser(bytes.NewReader(body)) // hides the length from Go
		req.GetBody = nil
	}
	if c.o.noContentLength {
		req.ContentLength = -1 // unknown: quic-go sends no content-length
	}
	if c.o.contentType != "" {
		req.Header.Set("Content-Type", c.o.contentType)
	}
	if len(c.o.trailers) > 0 {
		// announced in the "trailer" header, sent as a HEADERS frame after the body
		req.Trailer = c.o.trailers.Clone()
	}
	var out io.Writer
	if c.o.outDir != "" {
		if f, err := os.Create(outFile(c.o.outDir, c.o.post)); err == nil {
			defer f.Close()
			out = f
		}
	}
	res.response, _ = c.do(ctx, req, c.o.post, out, nil)
	if paced != nil {
		res.SentBytes = int(paced.sent.Load()) // what quic-go took before the exchange ended
	}
	return res
}

// pacedReader hands out step bytes per Read, 100 ms apart (the first at once).
type pacedReader struct {
	data   []byte
	step   int
	sent   atomic.Int64
	closed atomic.Bool
}

func (p *pacedReader) Read(b []byte) (int, error) {
	off := int(p.sent.Load())
	if off >= len(p.data) {
		return 0, io.EOF
	}
	if off > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if p.closed.Load() {
		return 0, errors.New("request body closed")
	}
	n := copy(b, p.data[off:min(off+p.step, len(p.data))])
	p.sent.Add(int64(n))
	return n, nil
}

func (p *pacedReader) Close() error {
	p.closed.Store(true)
	return nil
}

// keepWriter tees into out (may be nil) and keeps the first max bytes in kept.
func keepWriter(out io.Writer, kept *bytes.Buffer, max int64) io.Writer {
	k := writerFunc(func(b []byte) (int, error) {
		if room := max - int64(kept.Len()); room > 0 {
			kept.Write(b[:min(int64(len(b)), room)])
		}
		return len(b), nil
	})
	if out == nil {
		return k
	}
	return io.MultiWriter(out, k)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// cancelRequest reads the first chunk of the response body, then cancels the
// request's context: quic-go's http3 client then sends STOP_SENDING and
// RESET_STREAM with H3_REQUEST_CANCELLED (0x010c).
func (c *client) cancelRequest(ctx context.Context) *cancelResult {
	res := &cancelResult{}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	req, err := http.NewRequest(http.MethodGet, c.o.base+c.o.cancel, nil)
	if err != nil {
		res.response = response{Path: c.o.cancel, Headers: map[string]string{}}
		c.fail(&res.response, err)
		return res
	}
	var stopped bool
	res.response, stopped = c.do(rctx, req, c.o.cancel, nil, func(n int64) bool {
		before := n
		res.BytesBeforeCancel = &before
		return true
	})
	if stopped {
		rcancel() // aborts the stream both ways
		res.CancelSent = true
	} else if res.Error == nil {
		res.CompletedBeforeCancel = true
	}
	return res
}

func lowerHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return out
}

func outFile(dir, p string) string {
	name := path.Base(strings.SplitN(p, "?", 2)[0])
	if name == "/" || name == "." || name == "" {
		name = "index.html"
	}
	return filepath.Join(dir, name)
}
