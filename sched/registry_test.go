package sched

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	want := []string{"dh", "fo", "lblc", "lblcr", "lc", "mh", "nq", "ovf", "rr", "sed", "sh", "twos", "wlc", "wrr"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		s, err := New(n, Options{})
		if err != nil {
			t.Fatalf("New(%q): %v", n, err)
		}
		if s.Name() != n {
			t.Errorf("New(%q).Name() = %q", n, s.Name())
		}
		// A fresh scheduler on an empty pool finds nothing and does not panic.
		if d := NewPool(s).Schedule(anyPkt); d != nil {
			t.Errorf("%s: empty pool picked %s", n, name(d))
		}
	}
}

func TestNewNone(t *testing.T) {
	s, err := New("none", Options{})
	if err != nil || s.Name() != "none" {
		t.Fatalf("New(none) = %v, %v", s, err)
	}
	p := listPool(t, s, mkDests(1, 1)...)
	if d := p.Schedule(anyPkt); d != nil {
		t.Errorf("none picked %s", name(d))
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		sched   string
		opts    Options
		is      error
		mention []string
	}{
		{"unknown", "wrrr", Options{}, ErrUnknownScheduler, []string{`"wrrr"`, "wlc", "mh", "none"}},
		{"case", "RR", Options{}, ErrUnknownScheduler, []string{`"RR"`}},
		{"flag bits", "rr", Options{Flags: 0x40}, ErrFlag, []string{"0x40"}},
		{"mh size 4096", "mh", Options{MHTableSize: 4096}, ErrOption, []string{"4096", "4093"}},
		{"mh size 65537", "mh", Options{MHTableSize: 65537}, ErrOption, []string{"65537"}},
		{"mh size negative", "mh", Options{MHTableSize: -1}, ErrOption, []string{"-1"}},
		{"lblc expiration", "lblc", Options{LBLCExpiration: -time.Second}, ErrOption, []string{"lblc", "-1s"}},
		{"lblcr expiration", "lblcr", Options{LBLCRExpiration: -time.Second}, ErrOption, []string{"lblcr"}},
		{"lblc capacity", "lblc", Options{LBLCCapacity: -5}, ErrOption, []string{"-5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.sched, tc.opts)
			if !errors.Is(err, tc.is) || s != nil {
				t.Fatalf("New = %v, %v; want error %v", s, err, tc.is)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
	for _, m := range mhPrimes {
		s, err := New("mh", Options{MHTableSize: int(m)})
		if err != nil {
			t.Fatalf("New(mh, %d): %v", m, err)
		}
		if got := s.(Sizer).MaxDests(); got != int(m) {
			t.Errorf("MaxDests() = %d, want %d", got, m)
		}
	}
	if s := newSched(t, "mh", Options{}); s.(Sizer).MaxDests() != 4093 {
		t.Errorf("default mh table %d, want 4093", s.(Sizer).MaxDests())
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		sched string
		names []string
		want  Flags
		err   string // substring; "" = no error
	}{
		{"sh", []string{"sh-fallback", "sh-port"}, FlagSched1 | FlagSched2, ""},
		{"sh", []string{"sh-fallback, sh-port"}, FlagSched1 | FlagSched2, ""},
		{"mh", []string{"mh-port"}, FlagSched2, ""},
		{"mh", []string{"flag-1", "flag-3"}, FlagSched1 | FlagSched3, ""},
		{"rr", []string{"flag-2"}, FlagSched2, ""},
		{"rr", nil, 0, ""},
		{"wrr", []string{"sh-port"}, 0, "sh-port is a flag of the sh scheduler, not of wrr"},
		{"sh", []string{"mh-fallback"}, 0, "mh-fallback is a flag of the mh scheduler, not of sh"},
		{"sh", []string{"sh-fallbak"}, 0, `unknown flag "sh-fallbak"`},
		{"bogus", []string{"flag-1"}, 0, `unknown scheduler "bogus"`},
	}
	for _, tc := range tests {
		got, err := ParseFlags(tc.sched, tc.names)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseFlags(%s, %q) = %b, %v; want %b", tc.sched, tc.names, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseFlags(%s, %q) error %v, want one with %q", tc.sched, tc.names, err, tc.err)
		}
	}
	for _, sched := range []string{"sh", "mh", "rr"} {
		for f := range Flags(8) {
			if back, err := ParseFlags(sched, FlagNames(sched, f)); err != nil || back != f {
				t.Errorf("%s %b: FlagNames %v parses back to %b, %v", sched, f, FlagNames(sched, f), back, err)
			}
		}
	}
	if got := strings.Join(FlagNames("sh", FlagSched1|FlagSched2), ","); got != "sh-fallback,sh-port" {
		t.Errorf("FlagNames(sh) = %s", got)
	}
	if got := strings.Join(FlagNames("wlc", FlagSched1|FlagSched3), ","); got != "flag-1,flag-3" {
		t.Errorf("FlagNames(wlc) = %s", got)
	}
}

// TestPoolErrors: bad input is refused with the documented errors, never a panic.
func TestPoolErrors(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	p := NewPool(newSched(t, "wrr", Options{}))
	if err := p.Add(NewDest(0, a, 80, -1, 0, 0)); !errors.Is(err, ErrWeight) {
		t.Errorf("negative weight: %v", err)
	}
	if err := p.Add(NewDest(0, a, 80, 1, 3, 4)); !errors.Is(err, ErrThresholds) {
		t.Errorf("l > u: %v", err)
	}
	d := NewDest(0, a, 80, 1, 0, 0)
	if err := p.Add(d); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(NewDest(1, a, 80, 1, 0, 0)); !errors.Is(err, ErrDestExists) {
		t.Errorf("duplicate: %v", err)
	}
	if err := NewPool(nil).Add(d); !errors.Is(err, ErrDestExists) {
		t.Errorf("dest of another pool: %v", err)
	}
	if err := p.Edit(a, 80, -2, 0, 0); !errors.Is(err, ErrWeight) {
		t.Errorf("edit to a negative weight: %v", err)
	}
	if err := p.Edit(a, 80, 1, 1, 2); !errors.Is(err, ErrThresholds) {
		t.Errorf("edit to l > u: %v", err)
	}
	if err := p.Edit(a, 81, 1, 0, 0); !errors.Is(err, ErrNoDest) {
		t.Errorf("edit unknown: %v", err)
	}
	if _, err := p.Delete(a, 81); !errors.Is(err, ErrNoDest) {
		t.Errorf("delete unknown: %v", err)
	}
	if d.Weight() != 1 || d.UpperThreshold() != 0 {
		t.Errorf("a refused edit changed the dest: w %d u %d", d.Weight(), d.UpperThreshold())
	}

	// mh refuses more dests than table slots, on Add and on SetScheduler.
	small := newSched(t, "mh", Options{MHTableSize: 251})
	mp := NewPool(small)
	for i := range 251 {
		if err := mp.Add(mkDest(i, 1)); err != nil {
			t.Fatalf("dest %d of 251: %v", i, err)
		}
	}
	if err := mp.Add(mkDest(251, 1)); !errors.Is(err, ErrTooManyDests) {
		t.Errorf("252nd dest: %v", err)
	}
	if len(mp.Dests()) != 251 || mp.Schedule(anyPkt) == nil {
		t.Errorf("the refused add changed the pool")
	}
	big := NewPool(newSched(t, "rr", Options{}))
	for i := range 252 {
		if err := big.Add(mkDest(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := big.SetScheduler(newSched(t, "mh", Options{MHTableSize: 251})); !errors.Is(err, ErrTooManyDests) {
		t.Errorf("SetScheduler(mh 251) with 252 dests: %v", err)
	}
	if big.Scheduler().Name() != "rr" {
		t.Errorf("the refused SetScheduler replaced the scheduler")
	}
}

func TestRevive(t *testing.T) {
	d := NewDest(0, netip.MustParseAddr("10.0.0.1"), 80, 1, 2, 0)
	p := addPool(t, newSched(t, "rr", Options{}), d)
	conns(d, 0, 2)
	if !d.Overloaded() {
		t.Fatal("not OVERLOADed")
	}
	// A live dest ignores Revive.
	d.Revive(5, 9, 0)
	if d.Weight() != 1 || !d.Overloaded() {
		t.Fatalf("Revive changed a listed dest: w %d OVL %v", d.Weight(), d.Overloaded())
	}
	del(t, p, d)
	// Re-added from the trash with the same threshold: OVERLOAD stays (kernel
	// compares with the old u), counters survive.
	d.Revive(3, 2, 0)
	if err := p.Add(d); err != nil {
		t.Fatal(err)
	}
	if !d.Overloaded() || d.InactConns() != 2 || d.Weight() != 3 || d.LastWeight() != 3 {
		t.Errorf("re-add, same u: OVL %v inact %d w %d lw %d", d.Overloaded(), d.InactConns(), d.Weight(), d.LastWeight())
	}
	if p.Schedule(anyPkt) != nil {
		t.Errorf("an OVERLOADed dest was picked")
	}
	del(t, p, d)
	d.Revive(0, 3, 0) // a raised u clears
	if err := p.Add(d); err != nil {
		t.Fatal(err)
	}
	if d.Overloaded() || d.LastWeight() != 0 {
		t.Errorf("re-add, raised u: OVL %v lw %d", d.Overloaded(), d.LastWeight())
	}
}

// TestConcurrent: decisions, connection accounting and administration from several
// goroutines (run it with -race): the Pool lock serialises the schedulers, the dest
// counters and flags are atomics. The goroutines start together (a barrier), and the
// checks hold for every interleaving: each decision is a dest of the pool or nil,
// every connection's Bind/Activate/Unbind nets to zero whichever goroutine ran when,
// and the list order and weights are what the one administrator goroutine's
// sequence of Delete/Add/Edit leaves, since the workers never change them.
func TestConcurrent(t *testing.T) {
	for _, n := range Names() {
		t.Run(n, func(t *testing.T) {
			ds := make([]*Dest, 6)
			known := map[*Dest]bool{}
			for i := range ds {
				ds[i] = NewDest(uint32(i), netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80, int32(1+i%3), 4, 2)
				known[ds[i]] = true
			}
			p := listPool(t, newSched(t, n, Options{}), ds...)
			// The model: the list and weights after the administrator's sequence.
			wantList, wantWeight := slices.Clone(ds), map[*Dest]int32{}
			for _, d := range ds {
				wantWeight[d] = d.Weight()
			}
			for i := range 100 {
				d := ds[i%len(ds)]
				wantWeight[d] = int32(i % 4)
				if i%7 == 0 {
					wantList = slices.DeleteFunc(wantList, func(x *Dest) bool { return x == d })
					wantList = slices.Insert(wantList, 0, d) // Add inserts at the head
				}
			}

			start := make(chan struct{})
			var wg sync.WaitGroup
			var foreign atomic.Int32 // decisions that are not a dest of the pool
			for g := range 2 {
				wg.Go(func() {
					<-start
					for i := range 300 {
						pk := pkt4("192.0.2.1", "198.51.100.1", uint16(i), int64(i)*sec)
						pk.Src[3], pk.Dst[3] = byte(i+g), byte(i*3)
						if d := p.Schedule(pk); d != nil {
							if !known[d] {
								foreign.Add(1)
								continue
							}
							d.Bind(false)
							d.Activate()
							d.Unbind(false, true)
						}
					}
				})
			}
			wg.Go(func() {
				<-start
				for i := range 100 {
					d := ds[i%len(ds)]
					if i%7 == 0 {
						if _, err := p.Delete(d.Addr(), d.Port()); err != nil {
							t.Errorf("Delete(%s): %v", name(d), err)
							continue
						}
						d.Revive(int32(i%4), 4, 2)
						if err := p.Add(d); err != nil {
							t.Errorf("Add(%s): %v", name(d), err)
						}
						continue
					}
					if err := p.Edit(d.Addr(), d.Port(), int32(i%4), 4, 2); err != nil {
						t.Errorf("Edit(%s): %v", name(d), err)
					}
				}
			})
			close(start)
			wg.Wait()

			if n := foreign.Load(); n != 0 {
				t.Errorf("%d decisions returned a dest that is not in the pool", n)
			}
			if got, want := names(p.Dests()), names(wantList); got != want {
				t.Errorf("list %s, want %s", got, want)
			}
			for _, d := range ds {
				if got, want := d.Weight(), wantWeight[d]; got != want {
					t.Errorf("%s: weight %d, want %d", name(d), got, want)
				}
				if !d.Available() {
					t.Errorf("%s: not AVAILABLE after its last Add", name(d))
				}
				if a, in, pe := d.ActiveConns(), d.InactConns(), d.PersistConns(); a != 0 || in != 0 || pe != 0 {
					t.Errorf("%s: counters active %d, inactive %d, persistent %d after every connection ended; want 0",
						name(d), a, in, pe)
				}
			}
		})
	}
}
