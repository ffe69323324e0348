package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FlowsOptions configure Lab.StartFlows (gvs lab flows). Zero fields take their
// defaults.
type FlowsOptions struct {
	Host     string        // where the clients run; "" = "client"
	Conns    int           // long-lived connections held open; 0 = none
	Rate     int           // short connections opened per second; 0 = none
	Interval time.Duration // between one long-lived connection's requests; 0 = 1 s
	Timeout  time.Duration // for an answer or a connect; 0 = 5 s
	// Report, if set, receives each second's counts as it ends.
	Report func(FlowsSecond)
}

// slowConnect: a connect that took this long had its SYN retransmitted (the
// kernel's first SYN retransmission is after 1 s).
const slowConnect = 900 * time.Millisecond

// FlowCounts are counters of a Flows run. A long-lived connection breaks when a
// request on it is reset, times out or finds it closed; it moves when an answer
// comes from another real server than its first (a broken connection is
// reopened, and the new one counts afresh).
type FlowCounts struct {
	LongOpen    int64 `json:"long_open"`    // long-lived connections open now (a gauge)
	Requests    int64 `json:"requests"`     // answered requests on long-lived connections
	Broken      int64 `json:"broken"`       // long-lived connections broken: the sum of the next three
	Reset       int64 `json:"reset"`        //   by a reset
	Timeout     int64 `json:"timeout"`      //   by a request unanswered within the timeout
	Closed      int64 `json:"closed"`       //   by an end of stream or another error
	Moved       int64 `json:"moved"`        // answers from another real server than the connection's first
	ReopenFail  int64 `json:"reopen_fail"`  // failed connects of long-lived connections (after a break, or at start)
	ShortOK     int64 `json:"short_ok"`     // short connections answered
	ShortFailed int64 `json:"short_failed"` // short connections that failed (connect or answer)
	ShortSlow   int64 `json:"short_slow"`   // answered, but the connect took over 0.9 s: a SYN was retransmitted
}

func (c FlowCounts) sub(o FlowCounts) FlowCounts {
	return FlowCounts{
		LongOpen: c.LongOpen, Requests: c.Requests - o.Requests, Broken: c.Broken - o.Broken,
		Reset: c.Reset - o.Reset, Timeout: c.Timeout - o.Timeout, Closed: c.Closed - o.Closed,
		Moved: c.Moved - o.Moved, ReopenFail: c.ReopenFail - o.ReopenFail, ShortOK: c.ShortOK - o.ShortOK,
		ShortFailed: c.ShortFailed - o.ShortFailed, ShortSlow: c.ShortSlow - o.ShortSlow,
	}
}

// Sub returns the counts since o was taken (LongOpen stays a gauge).
func (c FlowCounts) Sub(o FlowCounts) FlowCounts { return c.sub(o) }

// FlowsSecond is one second of a Flows run: the counts during it.
type FlowsSecond struct {
	Second int `json:"second"` // from 1
	FlowCounts
}

// FlowsReport is a finished run: every second and the totals.
type FlowsReport struct {
	Conns   int           `json:"conns"`
	Rate    int           `json:"rate"`
	Seconds []FlowsSecond `json:"seconds"`
	Total   FlowCounts    `json:"total"`
	// Servers counts the answers (long-lived and short) by the real server that
	// gave them.
	Servers map[string]int64 `json:"servers"`
}

// Flows is a running load of long-lived and short connections through the VIP.
type Flows struct {
	l      *Lab
	o      FlowsOptions
	url    netip.AddrPort
	cancel context.CancelFunc
	wg     sync.WaitGroup

	longOpen, requests, reset, timeout, closed, moved, reopenFail atomic.Int64
	shortOK, shortFailed, shortSlow                               atomic.Int64

	mu      sync.Mutex
	seconds []FlowsSecond
	servers map[string]int64
}

// StartFlows opens o.Conns long-lived connections to the VIP's HTTP port from the
// client and starts o.Rate short connections a second. It returns once every
// long-lived connection has answered once, or with an error (and nothing left
// running) if they cannot within a few timeouts. Stop ends the run.
func (l *Lab) StartFlows(ctx context.Context, o FlowsOptions) (*Flows, error) {
	if o.Host == "" {
		o.Host = "client"
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Conns < 0 || o.Rate < 0 {
		return nil, fmt.Errorf("lab: flows: negative counts (%d connections, %d/s)", o.Conns, o.Rate)
	}
	if _, err := l.ns(o.Host); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	f := &Flows{l: l, o: o, url: netip.AddrPortFrom(l.spec.VIP, l.spec.HTTPPort), cancel: cancel, servers: map[string]int64{}}

	// Open the long-lived connections, 32 at a time.
	conns := make([]*flowConn, o.Conns)
	sem := make(chan struct{}, 32)
	var openWG sync.WaitGroup
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	for i := range conns {
		openWG.Add(1)
		sem <- struct{}{}
		go func() {
			defer openWG.Done()
			defer func() { <-sem }()
			var err error
			for try := 0; try < 3; try++ {
				var c *flowConn
				if c, err = f.open(); err == nil {
					conns[i] = c
					return
				}
				if ctx.Err() != nil {
					break
				}
			}
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		}()
	}
	openWG.Wait()
	if n := failed.Load(); n > 0 || ctx.Err() != nil {
		for _, c := range conns {
			if c != nil {
				c.c.Close()
			}
		}
		cancel()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("lab %s: flows: %d of %d long-lived connections could not be opened: %w", l.spec.Prefix, n, o.Conns, firstErr)
	}
	f.longOpen.Store(int64(len(conns)))
	for _, c := range conns {
		f.wg.Go(func() { f.hold(rctx, c) })
	}
	if o.Rate > 0 {
		f.wg.Go(func() { f.shorts(rctx) })
	}
	f.wg.Go(func() { f.tick(rctx) })
	return f, nil
}

// Counts returns the totals so far.
func (f *Flows) Counts() FlowCounts {
	r, t, c := f.reset.Load(), f.timeout.Load(), f.closed.Load()
	return FlowCounts{
		LongOpen: f.longOpen.Load(), Requests: f.requests.Load(), Broken: r + t + c,
		Reset: r, Timeout: t, Closed: c, Moved: f.moved.Load(), ReopenFail: f.reopenFail.Load(),
		ShortOK: f.shortOK.Load(), ShortFailed: f.shortFailed.Load(), ShortSlow: f.shortSlow.Load(),
	}
}

// Stop ends the run, closes every connection and returns the report.
func (f *Flows) Stop() FlowsReport {
	f.cancel()
	f.wg.Wait()
	servers := f.Servers()
	f.mu.Lock()
	defer f.mu.Unlock()
	return FlowsReport{Conns: f.o.Conns, Rate: f.o.Rate, Seconds: f.seconds, Total: f.Counts(), Servers: servers}
}

// Servers returns the answers so far by real server.
func (f *Flows) Servers() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.servers)
}

func (f *Flows) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	prev := f.Counts()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := f.Counts()
		s := FlowsSecond{Second: n, FlowCounts: now.sub(prev)}
		prev = now
		f.mu.Lock()
		f.seconds = append(f.seconds, s)
		f.mu.Unlock()
		if f.o.Report != nil {
			f.o.Report(s)
		}
	}
}

// A flowConn is one long-lived connection and the real server that first
// answered on it.
type flowConn struct {
	c     net.Conn
	r     *bufio.Reader
	first string
}

// dial connects from the client's namespace.
func (f *Flows) dial(timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := f.l.Do(f.o.Host, func() (err error) {
		c, err = net.DialTimeout("tcp", f.url.String(), timeout)
		return err
	})
	return c, err
}

// open connects a long-lived connection and asks once.
func (f *Flows) open() (*flowConn, error) {
	c, err := f.dial(f.o.Timeout)
	if err != nil {
		return nil, err
	}
	fc := &flowConn{c: c, r: bufio.NewReader(c)}
	name, err := f.ask(fc, true)
	if err != nil {
		c.Close()
		return nil, err
	}
	fc.first = name
	return fc, nil
}

// ask sends one request on a connection and returns the name of the real server
// that answered.
func (f *Flows) ask(fc *flowConn, keep bool) (string, error) {
	if err := fc.c.SetDeadline(time.Now().Add(f.o.Timeout)); err != nil {
		return "", err
	}
	req := "GET /whoami HTTP/1.1\r\nHost: " + f.url.String() + "\r\n"
	if !keep {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(fc.c, req+"\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(fc.r, nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("lab: flows: %s", resp.Status)
	}
	name, _, _ := strings.Cut(strings.TrimSpace(string(body)), " ")
	if name == "" {
		return "", errors.New("lab: flows: empty answer")
	}
	f.mu.Lock()
	f.servers[name]++
	f.mu.Unlock()
	return name, nil
}

// hold keeps one long-lived connection asking every Interval (from a random
// phase, so the requests spread over the interval), reopening it after a break.
func (f *Flows) hold(ctx context.Context, fc *flowConn) {
	defer func() {
		if fc != nil {
			fc.c.Close()
			f.longOpen.Add(-1)
		}
	}()
	wait := time.Duration(rand.Int64N(int64(f.o.Interval)))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = f.o.Interval
		if fc == nil {
			c, err := f.open()
			if err != nil {
				f.reopenFail.Add(1)
				continue
			}
			fc = c
			f.longOpen.Add(1)
			continue
		}
		name, err := f.ask(fc, true)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			switch {
			case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
				f.reset.Add(1)
			case errors.Is(err, os.ErrDeadlineExceeded):
				f.timeout.Add(1)
			default:
				f.closed.Add(1)
			}
			fc.c.Close()
			fc = nil
			f.longOpen.Add(-1)
			continue
		}
		f.requests.Add(1)
		if name != fc.first {
			f.moved.Add(1)
			fc.first = name
		}
	}
}

// shorts opens Rate short connections a second, each asking once, at most
// Rate × Timeout in flight.
func (f *Flows) shorts(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	every := time.Second / time.Duration(f.o.Rate)
	t := time.NewTicker(every)
	defer t.Stop()
	inflight := make(chan struct{}, max(1, int(int64(f.o.Rate)*int64(f.o.Timeout)/int64(time.Second))))
	connectTimeout := min(f.o.Timeout, 3*time.Second+100*time.Millisecond) // two SYN retransmissions
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case inflight <- struct{}{}:
		default:
			f.shortFailed.Add(1) // too many still waiting: the director or router is not answering
			continue
		}
		wg.Go(func() {
			defer func() { <-inflight }()
			start := time.Now()
			c, err := f.dial(connectTimeout)
			if err != nil {
				if ctx.Err() == nil {
					f.shortFailed.Add(1)
				}
				return
			}
			defer c.Close()
			slow := time.Since(start) > slowConnect
			if _, err := f.ask(&flowConn{c: c, r: bufio.NewReader(c)}, false); err != nil {
				if ctx.Err() == nil {
					f.shortFailed.Add(1)
				}
				return
			}
			f.shortOK.Add(1)
			if slow {
				f.shortSlow.Add(1)
			}
		})
	}
}

// String is the one-line form of a second's or a run's counts.
func (c FlowCounts) String() string {
	return fmt.Sprintf("long %d open, %d answered, broken %d (reset %d, timeout %d, closed %d), moved %d; short ok %d failed %d slow %d",
		c.LongOpen, c.Requests, c.Broken, c.Reset, c.Timeout, c.Closed, c.Moved, c.ShortOK, c.ShortFailed, c.ShortSlow)
}
