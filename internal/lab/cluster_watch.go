package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// routePoll is how often a RouteWatch reads the router's table: the resolution of
// the withdraw times it measures.
const routePoll = 5 * time.Millisecond

// A RouteChange is the router's set of next hops for the VIP from At on.
type RouteChange struct {
	At   time.Time
	Hops []netip.Addr // sorted; empty: no route
}

// A RouteWatch follows the router's route to a cluster lab's VIP, recording every
// change of its next hops with the time it was first seen.
type RouteWatch struct {
	l      *Lab
	r      *routeReader
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changes []RouteChange
	err     error
	wake    chan struct{} // closed and replaced on every change
}

// WatchRoutes starts a RouteWatch; Stop ends it.
func (l *Lab) WatchRoutes() (*RouteWatch, error) {
	rt, ok := l.Host("router")
	if !ok {
		return nil, fmt.Errorf("lab %s: no router (not a cluster lab)", l.spec.Prefix)
	}
	r, err := openRouteReader(rt.NS)
	if err != nil {
		return nil, err
	}
	hops, err := r.nextHops(l.spec.VIP)
	if err != nil {
		r.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &RouteWatch{l: l, r: r, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}),
		changes: []RouteChange{{At: time.Now(), Hops: hops}}}
	go w.run(ctx)
	return w, nil
}

func (w *RouteWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(routePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hops, err := w.r.nextHops(w.l.spec.VIP)
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			w.err = err
		} else if !slices.Equal(hops, w.changes[len(w.changes)-1].Hops) {
			w.changes = append(w.changes, RouteChange{At: now, Hops: hops})
			close(w.wake)
			w.wake = make(chan struct{})
		}
		w.mu.Unlock()
	}
}

// Stop ends the watch and closes its netlink socket.
func (w *RouteWatch) Stop() {
	w.cancel()
	<-w.done
	w.r.Close()
}

// Changes returns every change seen so far, the first being the state at start.
func (w *RouteWatch) Changes() []RouteChange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}

// Hops returns the current next hops.
func (w *RouteWatch) Hops() []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes[len(w.changes)-1].Hops)
}

// Until waits until the next hops satisfy ok, at most timeout, and returns when
// they first did at or after since (since itself if they already did then).
func (w *RouteWatch) Until(ctx context.Context, since time.Time, timeout time.Duration, ok func([]netip.Addr) bool) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		err, wake := w.err, w.wake
		var at time.Time
		for i, c := range w.changes {
			end := time.Time{}
			if i+1 < len(w.changes) {
				end = w.changes[i+1].At
			}
			if !end.IsZero() && !end.After(since) {
				continue // over before since
			}
			if ok(c.Hops) {
				at = c.At
				if at.Before(since) {
					at = since
				}
				break
			}
		}
		last := w.changes[len(w.changes)-1].Hops
		w.mu.Unlock()
		if err != nil {
			return time.Time{}, err
		}
		if !at.IsZero() {
			return at, nil
		}
		select {
		case <-wake:
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("lab %s: router's next hops for %v not as wanted after %v: %v", w.l.spec.Prefix, w.l.spec.VIP, timeout, fmtHops(last))
		case <-ctx.Done():
			return time.Time{}, context.Cause(ctx)
		}
	}
}

// DirectorAddrs returns the addresses of the named directors, sorted: a next-hop
// set to compare with.
func (l *Lab) DirectorAddrs(names ...string) []netip.Addr {
	var as []netip.Addr
	for _, n := range names {
		if h, ok := l.Host(n); ok {
			as = append(as, h.Addr())
		}
	}
	slices.SortFunc(as, netip.Addr.Compare)
	return as
}

// Exactly returns a next-hop test for exactly these directors.
func (l *Lab) Exactly(names ...string) func([]netip.Addr) bool {
	want := l.DirectorAddrs(names...)
	return func(h []netip.Addr) bool { return slices.Equal(h, want) }
}

// Without returns a next-hop test that the director is not among them.
func (l *Lab) Without(name string) func([]netip.Addr) bool {
	a := l.DirectorAddrs(name)
	return func(h []netip.Addr) bool { return len(a) == 1 && !slices.Contains(h, a[0]) }
}

// With returns a next-hop test that the director is among them.
func (l *Lab) With(name string) func([]netip.Addr) bool {
	a := l.DirectorAddrs(name)
	return func(h []netip.Addr) bool { return len(a) == 1 && slices.Contains(h, a[0]) }
}

func fmtHops(h []netip.Addr) string {
	if len(h) == 0 {
		return "no route"
	}
	s := make([]string, len(h))
	for i, a := range h {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}
