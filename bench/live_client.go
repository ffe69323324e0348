package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// LatencyOptions configures LatencyClient.
type LatencyOptions struct {
	URL      string        // http://host:port/path
	Mode     string        // LatFresh or LatKeepAlive
	Requests int           // requests measured (one warm-up request comes first, not counted)
	Gap      time.Duration // mean of the exponentially distributed gaps between requests
	Timeout  time.Duration // per request; a request that takes longer counts as an error
	// Rand draws the gaps; nil = a PCG seeded with 1, so runs draw the same gaps.
	Rand *rand.Rand
	// Dial makes the connections; nil = a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// latWarmUpTimeout bounds LatencyClient's warm-up request: several of TCP's
// retransmissions of a lost first segment (1 s, then 2 s).
const latWarmUpTimeout = 5 * time.Second

// ErrLatencyOptions is returned for options LatencyClient cannot run with.
var ErrLatencyOptions = errors.New("bench: latency client: bad options")

// LatencyClient sends o.Requests HTTP/1.1 GET requests to o.URL one at a time, each
// after a gap drawn from an exponential distribution of mean o.Gap (measured from the
// end of the previous request: the load is light and randomly timed, so no request
// finds the path warm from the one before by design), and measures each request
// from its first byte written — the connect included in fresh mode — to the last byte
// of the response read. The gaps are slept with nanosleep(2) (the thread's default
// timer slack, 50 µs, is small against the gaps): they shape the load and
// synchronise nothing.
//
// It is one goroutine writing a fixed request and reading the response with
// net/http's parser on a bufio.Reader: no connection pool, no extra goroutines per
// request, so the client's own cost stays small and the same on every path.
func LatencyClient(ctx context.Context, o LatencyOptions) (LatencyResult, error) {
	res := LatencyResult{Mode: o.Mode, GapUs: float64(o.Gap) / float64(time.Microsecond)}
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return res, fmt.Errorf("%w: url %q: want http://host[:port]/path", ErrLatencyOptions, o.URL)
	}
	if o.Mode != LatFresh && o.Mode != LatKeepAlive {
		return res, fmt.Errorf("%w: mode %q: want %s or %s", ErrLatencyOptions, o.Mode, LatFresh, LatKeepAlive)
	}
	if o.Requests <= 0 || o.Gap < 0 || o.Timeout <= 0 {
		return res, fmt.Errorf("%w: requests, timeout must be positive, gap not negative", ErrLatencyOptions)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	path := u.RequestURI()
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(1, 0))
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	c := &latencyConn{dial: dial, host: host, timeout: o.Timeout, fresh: o.Mode == LatFresh}
	c.req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gvs-bench\r\n", path, u.Host)
	if c.fresh {
		c.req = append(c.req, "Connection: close\r\n"...)
	}
	c.req = append(c.req, "\r\n"...)
	defer c.close()
	// The warm-up request is not measured: it pays for the path's first neighbour
	// resolution and connection set-up, so it gets a longer timeout than the
	// measured ones. A first segment lost on a busy host is sent again only after
	// TCP's initial retransmission timeout (1 s), which o.Timeout may not cover.
	c.timeout = max(o.Timeout, latWarmUpTimeout)
	_, err = c.do(ctx)
	c.timeout = o.Timeout
	if err != nil {
		return res, fmt.Errorf("bench: latency client: warm-up request to %s: %w", o.URL, err)
	}
	lat := make([]float64, 0, o.Requests)
	for range o.Requests {
		if err := ctx.Err(); err != nil {
			return res, context.Cause(ctx)
		}
		nanosleep(time.Duration(rnd.ExpFloat64() * float64(o.Gap)))
		d, err := c.do(ctx)
		if err != nil {
			res.Errors++
			continue
		}
		lat = append(lat, float64(d)/float64(time.Microsecond))
	}
	res.Count = len(lat)
	summarizeLatencies(&res, lat)
	return res, nil
}

// summarizeLatencies sets the percentiles of r from lat (µs, any order).
func summarizeLatencies(r *LatencyResult, lat []float64) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	r.P50, r.P99, r.P999 = Percentile(lat, 50), Percentile(lat, 99), Percentile(lat, 99.9)
	r.Max = lat[len(lat)-1]
}

// latencyConn is the latency client's connection: redialled for every request in
// fresh mode, and after an error in keep-alive mode.
type latencyConn struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	host    string
	req     []byte
	timeout time.Duration
	fresh   bool
	conn    net.Conn
	br      *bufio.Reader
}

// do sends one request and reads its response, and returns how long that took.
func (c *latencyConn) do(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(c.timeout)
	if c.conn == nil {
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err := c.dial(dctx, "tcp", c.host)
		cancel()
		if err != nil {
			return 0, err
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	err := c.roundTrip(deadline)
	d := time.Since(t0)
	if err != nil || c.fresh {
		c.close()
	}
	return d, err
}

func (c *latencyConn) roundTrip(deadline time.Time) error {
	if err := c.conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: latency client: %s", resp.Status)
	}
	if resp.Close && !c.fresh {
		// The server will not keep the connection: the next request redials.
		c.close()
	}
	return nil
}

func (c *latencyConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
