package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// genTable is a random table for TestApplyDeltaMatchesApply: services on a few
// shared VIPs (so addresses have several holders), ports 0 and 21 among them, fwmark
// services with match rules, DR and NAT real servers on shared addresses.
func genService(rng *rand.Rand) ipvs.Service {
	vip := netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + rng.IntN(6))})
	var s ipvs.Service
	if rng.IntN(6) == 0 {
		mark := uint32(1 + rng.IntN(4))
		s = ipvs.Service{Key: ipvs.MarkKey(mark, false), Scheduler: "wrr"}
		for range 1 + rng.IntN(2) {
			s.Match = append(s.Match, ipvs.Match{Protocol: ipvs.TCP, Addr: vip, PortLo: 80, PortHi: 80 + uint16(rng.IntN(3))})
		}
	} else {
		port := []uint16{0, 21, 80, 443, 8080}[rng.IntN(5)]
		proto := []ipvs.Protocol{ipvs.TCP, ipvs.UDP}[rng.IntN(2)]
		s = ipvs.Service{Key: ipvs.AddrKey(proto, netip.AddrPortFrom(vip, port)), Scheduler: []string{"rr", "wlc", "sh"}[rng.IntN(3)]}
	}
	for range rng.IntN(4) {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + rng.IntN(8))}), 80)
		if s.Find(ap) >= 0 {
			continue
		}
		s.RealServers = append(s.RealServers, ipvs.RealServer{Addr: ap, Weight: int32(rng.IntN(3)), Method: []ipvs.Method{ipvs.DR, ipvs.NAT}[rng.IntN(2)]})
	}
	return s
}

// genFingerprint is what a snapshot shows the data path for the table it was made
// from: each listed or probed address's membership, the flags, the mark rules, the
// index's answer for every key, the services and dests by id.
// With live, also the dests' weights and availability, which live in the shared
// sched.Dest values and so follow later generations by design.
func genFingerprint(s *snapshot, table []ipvs.Service, live bool) string {
	var b strings.Builder
	probe := func(set *addrSet, a netip.Addr) {
		r := rawAddr(a)
		fmt.Fprintf(&b, "%s=%v ", a, set.contains(&r, a.Is6()))
	}
	for i := range 8 {
		probe(&s.vips, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}))
		probe(&s.natRS, netip.AddrFrom4([4]byte{198, 19, 0, byte(i + 1)}))
	}
	fmt.Fprintf(&b, "\nport0=%v ftp=%v\n", s.hasPort0, s.hasFTP)
	var marks []string
	for _, m := range s.marks {
		marks = append(marks, fmt.Sprintf("%d:%v", m.mark, m.Match))
	}
	slices.Sort(marks)
	fmt.Fprintln(&b, marks)
	for i := range table {
		k := keyOf(&table[i])
		if svc := s.bySvc.get(&k); svc != nil {
			fmt.Fprintf(&b, "%s→%d ", &table[i], svc.id)
		} else {
			fmt.Fprintf(&b, "%s→nil ", &table[i])
		}
	}
	for _, svc := range s.serviceList() {
		fmt.Fprintf(&b, "\nsvc %d %s %s", svc.id, &svc.spec, svc.spec.Scheduler)
		for _, dst := range svc.pool.Dests() {
			fmt.Fprintf(&b, " %s:%d", dst.Addr(), dst.Port())
			if live {
				fmt.Fprintf(&b, " w%d", dst.Weight())
			}
		}
	}
	for id, in := range s.dests {
		fmt.Fprintf(&b, "\ndest %d svc %d %v %x", id, in.svc, in.method, in.addr[:4])
		if live {
			fmt.Fprintf(&b, " %v", in.d.Available())
		}
	}
	return b.String()
}

// TestApplyDeltaMatchesApply makes random changes to a table through ApplyDelta on
// one Director and Apply of the whole table on another: both publish the same
// generation, equal to what the whole table gives a Director built afresh in the
// parts that do not depend on history (addresses, flags, marks, index), and a
// generation, once published, never changes afterwards.
func TestApplyDeltaMatchesApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	full, delta := mustNew(t), mustNew(t)
	var table []ipvs.Service
	type pub struct {
		s     *snapshot
		table []ipvs.Service
		fp    string
	}
	var pubs []pub
	for step := range 150 {
		var upsert []ipvs.Service
		var remove []ipvs.Key
		next := slices.Clone(table)
		for range 1 + rng.IntN(4) {
			s := genService(rng)
			i := slices.IndexFunc(next, func(x ipvs.Service) bool { return x.Key == s.Key })
			switch {
			case i >= 0 && rng.IntN(2) == 0:
				next = slices.Delete(next, i, i+1)
				upsert = slices.DeleteFunc(upsert, func(x ipvs.Service) bool { return x.Key == s.Key })
				remove = append(remove, s.Key)
			case i >= 0:
				next[i] = s
				upsert = slices.DeleteFunc(upsert, func(x ipvs.Service) bool { return x.Key == s.Key })
				upsert = append(upsert, s)
			default:
				next = append(next, s)
				remove = slices.DeleteFunc(remove, func(k ipvs.Key) bool { return k == s.Key })
				upsert = append(upsert, s)
			}
		}
		// Apply creates new services in table order; give ApplyDelta the same.
		slices.SortStableFunc(upsert, func(a, b ipvs.Service) int {
			return slices.IndexFunc(next, func(x ipvs.Service) bool { return x.Key == a.Key }) -
				slices.IndexFunc(next, func(x ipvs.Service) bool { return x.Key == b.Key })
		})
		if err := full.Apply(next); err != nil {
			t.Fatalf("step %d: Apply: %v", step, err)
		}
		if err := delta.ApplyDelta(upsert, remove); err != nil {
			t.Fatalf("step %d: ApplyDelta: %v", step, err)
		}
		table = next
		sf, sd := full.snap.Load(), delta.snap.Load()
		if a, b := genFingerprint(sf, table, true), genFingerprint(sd, table, true); a != b {
			t.Fatalf("step %d: Apply and ApplyDelta differ:\n%s\n---\n%s", step, a, b)
		}
		fresh := mustNew(t)
		if err := fresh.Apply(table); err != nil {
			t.Fatal(err)
		}
		head := func(fp string) string { i := strings.Index(fp, "\nsvc "); i = max(i, 0); return fp[:i] }
		fp := genFingerprint(sd, table, false)
		if a, b := head(genFingerprint(fresh.snap.Load(), table, false)), head(fp); !sameHead(a, b) {
			t.Fatalf("step %d: incremental generation differs from a fresh one:\n%s\n---\n%s", step, b, a)
		}
		if !reflect.DeepEqual(full.Services(), delta.Services()) {
			t.Fatalf("step %d: listings differ", step)
		}
		pubs = append(pubs, pub{sd, table, fp})
		for _, p := range pubs {
			if got := genFingerprint(p.s, p.table, false); got != p.fp {
				t.Fatalf("step %d: generation %d changed after it was published:\n%s\n---\n%s", step, p.s.gen, got, p.fp)
			}
		}
	}
}

// sameHead compares the history-independent parts of two fingerprints, ignoring
// the service ids (a fresh Director numbers its services from 0).
func sameHead(a, b string) bool {
	strip := func(s string) string {
		f := strings.Fields(s)
		for i, w := range f {
			if j := strings.Index(w, "→"); j >= 0 && !strings.HasSuffix(w, "→nil") {
				f[i] = w[:j] + "→some"
			}
		}
		return strings.Join(f, " ")
	}
	return strip(a) == strip(b)
}

func mustNew(t *testing.T) *Director {
	t.Helper()
	d, err := New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestApplyDeltaRefuses checks that a refused delta changes nothing.
func TestApplyDeltaRefuses(t *testing.T) {
	d := mustNew(t)
	svc := rrService(ipvs.DR, 80)
	if err := d.ApplyDelta([]ipvs.Service{svc}, nil); err != nil {
		t.Fatal(err)
	}
	gen := d.Generation()
	bad := svc
	bad.Scheduler = "nope"
	for name, tc := range map[string]struct {
		up  []ipvs.Service
		rm  []ipvs.Key
		msg string
	}{
		"bad scheduler": {up: []ipvs.Service{bad}, msg: "nope"},
		"twice":         {up: []ipvs.Service{svc, svc}, msg: "service defined twice"},
		"both":          {up: []ipvs.Service{svc}, rm: []ipvs.Key{svc.Key}, msg: "both changed and removed"},
	} {
		err := d.ApplyDelta(tc.up, tc.rm)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want one naming %q", name, err, tc.msg)
		}
		if d.Generation() != gen || len(d.Services()) != 1 {
			t.Errorf("%s: a refused delta published generation %d", name, d.Generation())
		}
	}
}
