package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// timeoutError is the cause of a probe context whose own Timeout elapsed, so the
// Reason names the configured timeout rather than the time it happened to take.
type timeoutError struct{ d time.Duration }

func (e *timeoutError) Error() string { return "timeout after " + e.d.String() }

// failure is a probe failure whose text is already the Reason ("HTTP 503").
type failure string

func (f failure) Error() string { return string(f) }

func failuref(format string, args ...any) error { return failure(fmt.Sprintf(format, args...)) }

// probeFunc runs one probe under ctx, which carries the checker's timeout. On success
// it returns a short reason and a weight (WeightUnchanged unless dynamic).
type probeFunc func(ctx context.Context) (reason string, weight int, err error)

// probe bounds f by timeout (on top of whatever ctx carries), times it and turns its
// error into a Reason.
func probe(ctx context.Context, timeout time.Duration, f probeFunc) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, &timeoutError{timeout})
	defer cancel()
	reason, weight, err := f(ctx)
	r := Result{Weight: WeightUnchanged, Duration: time.Since(start)}
	if err != nil {
		r.Reason = failReason(ctx, start, timeout, err)
		return r
	}
	r.Up, r.Reason = true, reason
	if weight >= 0 {
		r.Weight = weight
	}
	return r
}

// failReason names why a probe failed in a few words.
func failReason(ctx context.Context, start time.Time, timeout time.Duration, err error) string {
	var te *timeoutError
	switch {
	case errors.As(context.Cause(ctx), &te):
		return te.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// The caller's deadline came first.
		return "timeout after " + time.Since(start).Round(time.Millisecond).String()
	case ctx.Err() != nil:
		return "canceled"
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A socket deadline (set from ctx's) fired a moment before ctx's own timer.
		return (&timeoutError{timeout}).Error()
	}
	var f failure
	if errors.As(err, &f) {
		return string(f)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "resolve " + dnsErr.Name + ": no such host"
		}
		return "resolve " + dnsErr.Name + ": " + dnsErr.Err
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	return err.Error()
}

// dest is where a network checker connects.
type dest struct {
	ip   netip.Addr
	name string
	port uint16
}

func newDest(s *Spec) dest {
	d := dest{ip: s.Target.Addr(), name: s.ConnectName, port: s.Target.Port()}
	if s.ConnectIP.IsValid() {
		d.ip = s.ConnectIP
	}
	if s.ConnectPort != 0 {
		d.port = s.ConnectPort
	}
	return d
}

// resolve returns the address to connect to, looking ConnectName up within ctx. The
// pure-Go resolver is used so that a lookup never outlives ctx in a cgo thread.
func (d dest) resolve(ctx context.Context) (netip.AddrPort, error) {
	if d.name == "" {
		return netip.AddrPortFrom(d.ip, d.port), nil
	}
	r := net.Resolver{PreferGo: true}
	ips, err := r.LookupNetIP(ctx, "ip", d.name)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, failuref("resolve %s: no address", d.name)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), d.port), nil
}

func dial(ctx context.Context, network string, d dest) (net.Conn, error) {
	ap, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, ap.String())
}

// bindConn makes c's I/O end when ctx does: its deadline becomes ctx's, and a cancel
// moves it to the past. The caller calls stop before closing c.
func bindConn(ctx context.Context, c net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}
