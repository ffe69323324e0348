package vrrp

import (
	"net/netip"
	"sync"
	"time"
)

// DefaultDropLogQuiet is how long a drop reason must stay silent before the Runner
// logs it again for the same sender (RunnerOptions.DropLogQuiet).
const DefaultDropLogQuiet = 30 * time.Second

// dropLog decides when a dropped advert is worth a log line: the first drop of a
// reason, a drop from a different sender than the last one for that reason, or a drop
// after the reason was quiet for at least quiet. Everything in between is counted
// only, so that a flood of bad adverts cannot flood the log (keepalived 2.2.7 logs
// every one). It is safe for concurrent use (read loops and the run loop share it).
type dropLog struct {
	quiet time.Duration
	mu    sync.Mutex
	seen  map[dropKey]*dropSeen
}

type dropKey struct {
	owner  any // a *Member, or a Transport for drops found while decoding
	reason Reason
}

type dropSeen struct {
	src        netip.Addr
	last       time.Time
	suppressed uint64
}

func newDropLog(quiet time.Duration) *dropLog {
	if quiet <= 0 {
		quiet = DefaultDropLogQuiet
	}
	return &dropLog{quiet: quiet, seen: map[dropKey]*dropSeen{}}
}

// note records a drop at now and reports whether to log it, with how many drops of
// the same reason went unlogged since the previous line.
func (d *dropLog) note(owner any, reason Reason, src netip.Addr, now time.Time) (log bool, suppressed uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := dropKey{owner, reason}
	s := d.seen[k]
	if s == nil {
		d.seen[k] = &dropSeen{src: src, last: now}
		return true, 0
	}
	quiet := now.Sub(s.last) >= d.quiet
	s.last = now
	if quiet || s.src != src {
		n := s.suppressed
		s.src, s.suppressed = src, 0
		return true, n
	}
	s.suppressed++
	return false, 0
}
