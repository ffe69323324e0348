package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// httpChecker is keepalived's HTTP_GET and SSL_GET: one GET on a fresh connection
// (Connection: close, no redirects followed, no proxy), checked for status code, then
// optionally for the MD5 digest of the body and a substring of it.
//
// It speaks HTTP/1.1 on its own connection instead of using http.Transport so that
// nothing outlives the probe (no idle pool, no background reader) and every byte read
// is bounded.
type httpChecker struct {
	dest    dest
	timeout time.Duration
	tls     *tls.Config // nil for plain HTTP
	url     *url.URL    // path and query only
	host    string      // Host header; empty means the connect address
	codes   []StatusRange
	digest  string // lower-case hex MD5, or empty
	expect  []byte
}

var _ Checker = (*httpChecker)(nil)

func newHTTPChecker(s *Spec) (*httpChecker, error) {
	u, err := url.ParseRequestURI(s.Path)
	if err != nil {
		return nil, fmt.Errorf("health: check %q: path: %w", s.ID, err)
	}
	c := &httpChecker{
		dest:    newDest(s),
		timeout: s.Timeout,
		url:     u,
		host:    s.Host,
		codes:   s.StatusCodes,
		digest:  s.Digest,
	}
	if s.Expect != "" {
		c.expect = []byte(s.Expect)
	}
	if s.Type != HTTPS {
		return c, nil
	}
	c.tls = &tls.Config{InsecureSkipVerify: !s.TLSVerify, ServerName: s.SNI}
	if c.tls.ServerName == "" {
		// Like a browser, name the virtual host; an IP literal is not sent as SNI
		// (RFC 6066 §3) but is still what the certificate is verified against.
		h := s.Host
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if _, err := netip.ParseAddr(h); err != nil {
			c.tls.ServerName = h
		}
	}
	if c.tls.ServerName == "" {
		c.tls.ServerName = s.ConnectName
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("health: check %q: ca file: %w", s.ID, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("health: check %q: ca file %s: no PEM certificate: %w", s.ID, s.CAFile, ErrInvalidSpec)
		}
		c.tls.RootCAs = pool
	}
	return c, nil
}

func (c *httpChecker) Check(ctx context.Context) Result {
	return probe(ctx, c.timeout, c.get)
}

func (c *httpChecker) get(ctx context.Context) (string, int, error) {
	ap, err := c.dest.resolve(ctx)
	if err != nil {
		return "", 0, err
	}
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return "", 0, err
	}
	defer raw.Close()
	stop := bindConn(ctx, raw)
	defer stop()

	conn := raw
	if c.tls != nil {
		cfg := c.tls
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName = ap.Addr().WithZone("").String()
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", 0, err
		}
		conn = tc
	}

	host := c.host
	if host == "" {
		host = ap.String()
	}
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        c.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       host,
		Header:     http.Header{"User-Agent": {"gvs-health"}},
		Close:      true,
	}
	if err := req.Write(conn); err != nil {
		return "", 0, err
	}

	lr := &io.LimitedReader{R: conn, N: maxHeaderBytes}
	resp, err := http.ReadResponse(bufio.NewReader(lr), req)
	if err != nil {
		return "", 0, responseError(ctx, lr, err)
	}
	// The decoded body is bounded below; the raw stream (chunk framing) by the timeout.
	// resp.Body is not closed: Close drains a chunked body to EOF, which never comes
	// from an endless one. Closing the connection releases everything.
	lr.N = math.MaxInt64

	if !c.statusOK(resp.StatusCode) {
		return "", 0, failuref("HTTP %d", resp.StatusCode)
	}
	if c.digest == "" && c.expect == nil {
		return fmt.Sprintf("HTTP %d", resp.StatusCode), WeightUnchanged, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return "", 0, bodyError(ctx, err)
	}
	if len(body) > MaxBodyBytes {
		return "", 0, failure("body too large")
	}
	if c.digest != "" {
		sum := md5.Sum(body)
		if hex.EncodeToString(sum[:]) != c.digest {
			return "", 0, failure("digest mismatch")
		}
	}
	if c.expect != nil && !bytes.Contains(body, c.expect) {
		return "", 0, failure("body lacks expected text")
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode), WeightUnchanged, nil
}

func (c *httpChecker) statusOK(code int) bool {
	for _, r := range c.codes {
		if r.Lo <= code && code <= r.Hi {
			return true
		}
	}
	return false
}

// responseError classifies a failure to read the status line and headers.
func responseError(ctx context.Context, lr *io.LimitedReader, err error) error {
	var opErr *net.OpError
	switch {
	case ctx.Err() != nil, errors.As(err, &opErr), errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case lr.N <= 0:
		return failure("response header too large")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failure("connection closed before response")
	}
	// Not echoing err: it quotes whatever garbage the server sent.
	return failure("malformed response")
}

func bodyError(ctx context.Context, err error) error {
	var opErr *net.OpError
	switch {
	case ctx.Err() != nil, errors.As(err, &opErr), errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return failure("body truncated")
	}
	return failure("malformed body")
}
