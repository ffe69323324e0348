package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The differential test: random administration (add, edit, delete, re-add from the
// trash, rebinding the scheduler), connection accounting (bind, activate, deactivate,
// unbind, with thresholds setting and clearing OVERLOAD) and scheduling, applied to a
// Pool with the real scheduler and to a reference model, pick by pick.

type diffCase struct {
	name  string
	sched string
	opts  Options
	// ref builds the model; setup may adjust the real scheduler (small lblc sizes).
	ref   func(o Options, seed uint64) refModel
	setup func(s Scheduler)
	steps int
	dsts  int // distinct packet destinations (default 16)
}

func seededRand(seed uint64) func(uint32) uint32 {
	r := rand.New(rand.NewPCG(seed, 99))
	return func(n uint32) uint32 {
		if n == 0 {
			return r.Uint32()
		}
		return r.Uint32N(n)
	}
}

// Small lblc/lblcr geometry so the oversize collector and the capacity bound run.
const (
	diffMaxSize  = 12
	diffCapacity = 30
	diffElemCap  = 40
)

func smallCache(c *locCache) {
	c.maxSize, c.capacity, c.elemCap = diffMaxSize, diffCapacity, diffElemCap
}

func diffCases() []diffCase {
	stateless := func(m refModel) func(Options, uint64) refModel {
		return func(Options, uint64) refModel { return m }
	}
	return []diffCase{
		{name: "rr", sched: "rr", ref: func(Options, uint64) refModel { return &refRR{} }},
		{name: "wrr", sched: "wrr", ref: func(Options, uint64) refModel { return &refWRR{} }},
		{name: "lc", sched: "lc", ref: stateless(refLC{})},
		{name: "wlc", sched: "wlc", ref: stateless(refWLC{})},
		{name: "sed", sched: "sed", ref: stateless(refSED{})},
		{name: "nq", sched: "nq", ref: stateless(refNQ{})},
		{name: "fo", sched: "fo", ref: stateless(refFO{})},
		{name: "ovf", sched: "ovf", ref: stateless(refOVF{})},
		{name: "twos", sched: "twos", ref: func(_ Options, seed uint64) refModel { return &refTwoS{rand: seededRand(seed)} }},
		{name: "sh", sched: "sh", ref: func(Options, uint64) refModel { return &refSH{} }},
		{name: "sh-fallback-port", sched: "sh", opts: Options{Flags: FlagSched1 | FlagSched2},
			ref: func(Options, uint64) refModel { return &refSH{fallback: true, port: true} }},
		{name: "dh", sched: "dh", ref: func(Options, uint64) refModel { return &refDH{} }},
		{name: "mh-251", sched: "mh", opts: Options{MHTableSize: 251},
			ref: func(o Options, _ uint64) refModel { return newRefMH(o.Flags, 251) }},
		{name: "mh-251-fallback-port", sched: "mh", opts: Options{MHTableSize: 251, Flags: FlagSched1 | FlagSched2},
			ref: func(o Options, _ uint64) refModel { return newRefMH(o.Flags, 251) }},
		{name: "mh-4093-fallback", sched: "mh", opts: Options{Flags: FlagSched1}, steps: 600,
			ref: func(o Options, _ uint64) refModel { return newRefMH(o.Flags, 4093) }},
		{name: "lblc", sched: "lblc", opts: Options{LBLCExpiration: 20 * time.Minute}, dsts: 64,
			setup: func(s Scheduler) { smallCache(&s.(*lblc).c) },
			ref: func(o Options, _ uint64) refModel {
				return refLBLC{newRefCache(int64(o.LBLCExpiration), diffMaxSize, diffCapacity, diffElemCap)}
			}},
		{name: "lblcr", sched: "lblcr", opts: Options{LBLCRExpiration: 20 * time.Minute}, dsts: 64,
			setup: func(s Scheduler) { smallCache(&s.(*lblcr).c) },
			ref: func(o Options, _ uint64) refModel {
				return refLBLCR{newRefCache(int64(o.LBLCRExpiration), diffMaxSize, diffCapacity, diffElemCap)}
			}},
		{name: "lblcr-default", sched: "lblcr", ref: func(Options, uint64) refModel {
			return refLBLCR{newRefCache(int64(24*time.Hour), locMaxSize, locCapacity, 4*locCapacity)}
		}},
	}
}

func TestDifferential(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(seeds) {
				runDiff(t, tc, seed)
			}
		})
	}
}

// A conn is a connection the test bound to a dest.
type conn struct {
	d                *Dest
	template, active bool
}

// runDiff drives one random scenario and returns its picks (for the determinism test).
func runDiff(t *testing.T, tc diffCase, seed uint64) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	opts := tc.opts
	opts.Rand = seededRand(seed)
	s := newSched(t, tc.sched, opts)
	if tc.setup != nil {
		tc.setup(s)
	}
	ref := tc.ref(opts, seed)
	pool := NewPool(s)
	ref.init(nil)

	var list []*Dest   // the model's list, head first
	var all []*Dest    // every dest ever created (deleted ones sit in the "trash")
	var live []conn    // bound connections
	var log []string   // recent operations, for failure reports
	var trace []string // picks
	now := int64(1e12) // an arbitrary clock origin
	addrs := 12
	steps := orDefault(tc.steps, 3000)

	weight := func() int32 {
		switch r := rng.IntN(20); {
		case r < 3:
			return 0
		case r < 17:
			return int32(1 + rng.IntN(5))
		default:
			return int32(1 + rng.IntN(120))
		}
	}
	thresholds := func() (uint32, uint32) {
		if rng.IntN(10) < 6 {
			return 0, 0
		}
		u := uint32(1 + rng.IntN(6))
		return u, uint32(rng.IntN(int(u) + 1))
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d step %d: %s\nlist %s\nrecent ops:\n  %s", seed, len(log), fmt.Sprintf(format, args...),
			names(list), strings.Join(log[max(0, len(log)-25):], "\n  "))
	}
	checkList := func() {
		t.Helper()
		if got, want := names(pool.Dests()), names(list); got != want {
			fail("pool list %s, model list %s", got, want)
		}
	}
	destOf := func(i int) *Dest {
		for _, d := range all {
			if int(d.ID()) == i {
				return d
			}
		}
		return nil
	}

	for range steps {
		switch op := rng.IntN(100); {
		case op < 10: // add, or re-add from the trash
			i := rng.IntN(addrs)
			d := destOf(i)
			if d != nil && d.Available() {
				continue
			}
			w := weight()
			u, l := thresholds()
			if d == nil {
				addr := netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(1 + i%250)})
				if i%5 == 4 {
					addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
				}
				d = NewDest(uint32(i), addr, uint16(80+i%3), w, u, l)
				all = append(all, d)
			} else {
				d.Revive(w, u, l)
			}
			if err := pool.Add(d); err != nil {
				fail("Add(%s): %v", name(d), err)
			}
			list = append([]*Dest{d}, list...)
			ref.add(list, d)
			log = append(log, fmt.Sprintf("add %s w%d u%d l%d", name(d), w, u, l))
			checkList()
		case op < 15 && len(list) > 0: // edit
			d := list[rng.IntN(len(list))]
			w := weight()
			u, l := thresholds()
			if err := pool.Edit(d.Addr(), d.Port(), w, u, l); err != nil {
				fail("Edit(%s): %v", name(d), err)
			}
			ref.upd(list, d)
			log = append(log, fmt.Sprintf("edit %s w%d u%d l%d", name(d), w, u, l))
		case op < 20 && len(list) > 0: // delete
			at := rng.IntN(len(list))
			d := list[at]
			if _, err := pool.Delete(d.Addr(), d.Port()); err != nil {
				fail("Delete(%s): %v", name(d), err)
			}
			old := list
			list = slices.Delete(slices.Clone(list), at, at+1)
			ref.del(old, list, d)
			log = append(log, "delete "+name(d))
			checkList()
		case op < 35 && len(list) > 0: // a new connection or template on a listed dest
			c := conn{d: list[rng.IntN(len(list))], template: rng.IntN(8) == 0}
			c.d.Bind(c.template)
			live = append(live, c)
			log = append(log, fmt.Sprintf("bind %s tmpl=%v", name(c.d), c.template))
		case op < 47 && len(live) > 0: // a connection becomes active or inactive
			i := rng.IntN(len(live))
			if c := &live[i]; !c.template {
				if c.active {
					c.d.Deactivate()
				} else {
					c.d.Activate()
				}
				c.active = !c.active
				log = append(log, fmt.Sprintf("active %s %v", name(c.d), c.active))
			}
		case op < 57 && len(live) > 0: // a connection expires
			i := rng.IntN(len(live))
			c := live[i]
			c.d.Unbind(c.template, c.active)
			live = slices.Delete(live, i, i+1)
			log = append(log, fmt.Sprintf("unbind %s", name(c.d)))
		case op < 58: // ipvsadm -E: the scheduler is bound again
			if err := pool.SetScheduler(s); err != nil {
				fail("SetScheduler: %v", err)
			}
			ref.init(list)
			log = append(log, "rebind")
		default: // schedule
			switch r := rng.IntN(100); {
			case r < 80:
				now += rng.Int64N(5 * sec)
			case r < 97:
				now += rng.Int64N(20 * 60 * sec)
			default:
				now += rng.Int64N(3 * 86400 * sec)
			}
			pk := randPacket(rng, now, orDefault(tc.dsts, 16))
			got := pool.Schedule(pk)
			want := ref.pick(list, pk)
			log = append(log, fmt.Sprintf("schedule %s → %s", pktString(pk), name(got)))
			if got != want {
				fail("picked %s, model picked %s", name(got), name(want))
			}
			trace = append(trace, name(got))
			if rd, ok := ref.(dumper); ok {
				if got, want := dumpCache(s), rd.dump(); got != want {
					fail("cache differs from the model's\n got: %s\nwant: %s", got, want)
				}
			}
		}
	}
	return trace
}

func orDefault(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func randPacket(rng *rand.Rand, now int64, dsts int) *Packet {
	p := &Packet{Now: now, SrcPort: uint16(1024 + rng.IntN(4)), DstPort: 80}
	switch r := rng.IntN(10); {
	case r < 5:
		p.Protocol = protoTCP
	case r < 8:
		p.Protocol = protoUDP
	case r < 9:
		p.Protocol = protoSCTP
	default:
		p.Protocol = 1
	}
	if rng.IntN(6) == 0 {
		p.IPv6 = true
		p.Src = [16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(rng.IntN(3)), 15: byte(rng.IntN(8))}
		p.Dst = [16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 15: byte(rng.IntN(dsts))}
	} else {
		copy(p.Src[:], []byte{192, 0, 2, byte(rng.IntN(16))})
		copy(p.Dst[:], []byte{198, 51, 100, byte(rng.IntN(dsts))})
	}
	if rng.IntN(10) == 0 {
		p.Src, p.Dst = p.Dst, p.Src
		p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
		p.Inverse = true
	}
	return p
}

func pktString(p *Packet) string {
	a := func(b [16]byte) string {
		if p.IPv6 {
			return netip.AddrFrom16(b).String()
		}
		return netip.AddrFrom4([4]byte(b[:4])).String()
	}
	return fmt.Sprintf("p%d %s:%d→%s:%d inv=%v t=%ds", p.Protocol, a(p.Src), p.SrcPort, a(p.Dst), p.DstPort, p.Inverse, p.Now/sec)
}

// TestDeterministic runs each scenario twice: nothing may depend on map iteration
// order or any other hidden source of randomness.
func TestDeterministic(t *testing.T) {
	for _, tc := range diffCases() {
		tc.steps = 800
		a, b := runDiff(t, tc, 5), runDiff(t, tc, 5)
		if !slices.Equal(a, b) {
			t.Errorf("%s: two identical runs differ", tc.name)
		}
	}
}

// dumper is a model whose cache contents can be compared with the real one's.
type dumper interface{ dump() string }

// dumpCache renders an lblc/lblcr cache: the collector's state, then every entry
// sorted (address, last use, dest or set with its last change).
func dumpCache(s Scheduler) string {
	var c *locCache
	switch s := s.(type) {
	case *lblc:
		c = &s.c
	case *lblcr:
		c = &s.c
	}
	var ents []string
	for b := range c.buckets {
		for i := c.buckets[b]; i >= 0; i = c.ents[i].next {
			e := &c.ents[i]
			var dests []*Dest
			if e.ref >= 0 {
				dests = append(dests, c.refs[e.ref])
			}
			for j := e.set; j >= 0; j = c.elems[j].next {
				dests = append(dests, c.refs[c.elems[j].ref])
			}
			ents = append(ents, fmt.Sprintf("%x/%v@%d→[%s]@%d", e.addr, e.v6, e.lastuse, names(dests), e.lastmod))
		}
	}
	slices.Sort(ents)
	return fmt.Sprintf("entries=%d counter=%d rover=%d next=%d %s", c.entries, c.counter, c.rover, c.next, strings.Join(ents, " "))
}
