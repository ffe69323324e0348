package sched

import (
	"net/netip"
	"strings"
	"testing"
)

// Test dests are named by letter: ID 0 is A at 10.0.0.1:80, ID 1 is B at 10.0.0.2:80 …
// (the addresses docs/ipvs-semantics.md §12.6–12.8 use).

func mkDest(id int, w int32) *Dest {
	return NewDest(uint32(id), netip.AddrFrom4([4]byte{10, 0, 0, byte(id + 1)}), 80, w, 0, 0)
}

// mkDests returns dests A, B, C … with the given weights.
func mkDests(weights ...int32) []*Dest {
	ds := make([]*Dest, len(weights))
	for i, w := range weights {
		ds[i] = mkDest(i, w)
	}
	return ds
}

func name(d *Dest) string {
	if d == nil {
		return "-"
	}
	return string(rune('A' + d.ID()))
}

func names(ds []*Dest) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = name(d)
	}
	return strings.Join(s, " ")
}

// addPool builds a pool the way an administrator does: the scheduler bound to an
// empty service, then each dest added in order (so the list is the reverse).
func addPool(t testing.TB, s Scheduler, ds ...*Dest) *Pool {
	t.Helper()
	p := NewPool(s)
	for _, d := range ds {
		if err := p.Add(d); err != nil {
			t.Fatalf("Add(%s): %v", name(d), err)
		}
	}
	return p
}

// listPool builds a pool whose list is ds in that order (head first) and then binds
// s, so s starts from init_service with the whole list.
func listPool(t testing.TB, s Scheduler, ds ...*Dest) *Pool {
	t.Helper()
	p := NewPool(nil)
	for i := len(ds) - 1; i >= 0; i-- {
		if err := p.Add(ds[i]); err != nil {
			t.Fatalf("Add(%s): %v", name(ds[i]), err)
		}
	}
	if got, want := names(p.Dests()), names(ds); got != want {
		t.Fatalf("list %s, want %s", got, want)
	}
	if err := p.SetScheduler(s); err != nil {
		t.Fatalf("SetScheduler: %v", err)
	}
	return p
}

func newSched(t testing.TB, n string, o Options) Scheduler {
	t.Helper()
	s, err := New(n, o)
	if err != nil {
		t.Fatalf("New(%q): %v", n, err)
	}
	return s
}

// picks schedules n times with pk and returns the picks as letters.
func picks(p *Pool, n int, pk *Packet) string {
	s := make([]string, n)
	for i := range s {
		s[i] = name(p.Schedule(pk))
	}
	return strings.Join(s, " ")
}

// conns gives d act active and inact inactive connections through the connection
// table's calls.
func conns(d *Dest, act, inact int) {
	for range act + inact {
		d.Bind(false)
	}
	for range act {
		d.Activate()
	}
}

// pkt4 is a TCP packet from src:sport to dst:80 at time now.
func pkt4(src, dst string, sport uint16, now int64) *Packet {
	p := &Packet{SrcPort: sport, DstPort: 80, Protocol: protoTCP, Now: now}
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is6() {
		p.IPv6 = true
		p.Src, p.Dst = s.As16(), d.As16()
	} else {
		a, b := s.As4(), d.As4()
		copy(p.Src[:], a[:])
		copy(p.Dst[:], b[:])
	}
	return p
}

func edit(t testing.TB, p *Pool, d *Dest, w int32) {
	t.Helper()
	if err := p.Edit(d.Addr(), d.Port(), w, d.UpperThreshold(), d.LowerThreshold()); err != nil {
		t.Fatalf("Edit(%s): %v", name(d), err)
	}
}

func del(t testing.TB, p *Pool, d *Dest) {
	t.Helper()
	if _, err := p.Delete(d.Addr(), d.Port()); err != nil {
		t.Fatalf("Delete(%s): %v", name(d), err)
	}
}
