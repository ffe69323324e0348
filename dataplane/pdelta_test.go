package dataplane

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDeltaDifferential runs random puts and deletions, often of keys never
// seen before, on an index builder and a counted address set builder against
// plain maps, freezing after a random number of changes (fewer and more than
// a delta holds, so that generations are published with partial deltas and
// across folds). Every published generation must still answer as the maps did
// when it was frozen: lookups of present and absent keys, the services it
// lists, the builder's own lookups and count.
func TestDeltaDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	type gen struct {
		x     svcIndex
		m     map[svcKey]*service
		s     addrSet
		addrs map[netip.Addr]int
	}
	var (
		x      svcIndexBuilder
		ab     addrSetBuilder
		m      = map[svcKey]*service{}
		addrs  = map[netip.Addr]int{}
		gens   []gen
		fresh  uint16
		partly int // generations published with deltas
	)
	keyOf := func(port uint16) svcKey {
		k := svcKey{proto: 6, port: port}
		k.addr[0] = 198
		return k
	}
	addrOf := func(port uint16) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(port >> 8), byte(port)}) }
	anyKey := func() uint16 { // a known port most of the time, else one never used
		if fresh > 0 && rng.IntN(4) != 0 {
			return uint16(rng.IntN(int(fresh)))
		}
		fresh++
		return fresh - 1
	}
	for round := range 300 {
		ops := rng.IntN(deltaBulk) // a command's few changes
		if rng.IntN(8) == 0 {
			ops = rng.IntN(2 * deltaMax) // a restore's or reload's
		}
		for range ops {
			p := anyKey()
			k := keyOf(p)
			if rng.IntN(3) == 0 {
				x.del(k)
				delete(m, k)
				a := addrOf(p % 97) // shared addresses: counted holders
				ab.remove(a)
				if addrs[a] > 1 {
					addrs[a]--
				} else {
					delete(addrs, a)
				}
				continue
			}
			svc := &service{id: uint32(round), key: k}
			x.put(svc)
			m[k] = svc
			a := addrOf(p % 97)
			ab.add(a)
			addrs[a]++
		}
		if x.len() != len(m) {
			t.Fatalf("round %d: builder counts %d services, map has %d", round, x.len(), len(m))
		}
		for p := range fresh {
			if k := keyOf(p); x.get(k) != m[k] {
				t.Fatalf("round %d: builder get(%d) = %v, want %v", round, p, x.get(k), m[k])
			}
		}
		g := gen{x.freeze(), maps.Clone(m), ab.freeze(), maps.Clone(addrs)}
		if len(g.x.d.ents) != 0 && len(g.s.d.ents) != 0 {
			partly++
		}
		gens = append(gens, g)
		for i, g := range gens[max(0, len(gens)-20):] {
			for p := range fresh + 1 {
				k := keyOf(p)
				if got := g.x.get(&k); got != g.m[k] {
					t.Fatalf("round %d: index frozen %d rounds before: get(%d) = %v, want %v", round, len(gens)-1-i, p, got, g.m[k])
				}
				a := addrOf(p)
				r := rawAddr(a)
				if got := g.s.contains(&r, false); got != (g.addrs[a] > 0) {
					t.Fatalf("round %d: set frozen %d rounds before: contains(%s) = %v, want %v", round, len(gens)-1-i, a, got, !got)
				}
			}
			n := 0
			g.x.each(func(svc *service) {
				n++
				if g.m[svc.key] != svc {
					t.Fatalf("round %d: a frozen index lists %+v, which its map does not hold", round, svc.key)
				}
			})
			if n != len(g.m) {
				t.Fatalf("round %d: a frozen index lists %d services, its map holds %d", round, n, len(g.m))
			}
		}
	}
	if partly < 100 || fresh < 400 {
		t.Fatalf("%d generations with deltas, %d keys: the test did not exercise the deltas", partly, fresh)
	}
}

// TestDeltaCancel checks that a service added and removed again between two
// generations writes nothing of the paged tables (no page, directory or
// directory list copied: gvs adm -A then -D at 10,000 services touches no cold
// line of them), and that both generations answer as they should.
func TestDeltaCancel(t *testing.T) {
	var x svcIndexBuilder
	var vips addrSetBuilder
	for i := range 10_000 {
		k := svcKey{proto: 6, port: 80, addr: [16]byte{198, 18, byte(64 + i/250), byte(1 + i%250)}}
		x.put(&service{id: uint32(i), key: k})
		vips.add(netip.AddrFrom4([4]byte{198, 18, byte(64 + i/250), byte(1 + i%250)}))
	}
	x.b.fold()
	vips.b.fold()
	before, vipsBefore := x.freeze(), vips.freeze()
	k := svcKey{proto: 6, port: 80, addr: [16]byte{198, 18, 200, 1}}
	a := netip.AddrFrom4([4]byte{198, 18, 200, 1})
	svc := &service{id: 10_000, key: k}
	x.put(svc)
	vips.add(a)
	added, vipsAdded := x.freeze(), vips.freeze()
	x.del(k)
	vips.remove(a)
	after, vipsAfter := x.freeze(), vips.freeze()
	r := rawAddr(a)
	if before.get(&k) != nil || added.get(&k) != svc || after.get(&k) != nil ||
		vipsBefore.contains(&r, false) || !vipsAdded.contains(&r, false) || vipsAfter.contains(&r, false) {
		t.Fatal("the generations do not answer as added, then removed")
	}
	if &after.dirs[0] != &before.dirs[0] || &vipsAfter.big.dirs[0] != &vipsBefore.big.dirs[0] {
		t.Fatal("an add and its removal copied the tables' directory lists")
	}
	if len(after.d.ents) != 0 || len(vipsAfter.d.ents) != 0 {
		t.Fatalf("deltas of %d services and %d addresses after the add was removed, want none", len(after.d.ents), len(vipsAfter.d.ents))
	}
}

// TestDeltaFold checks that a full delta is folded into the table (a
// generation's delta holds the adds since the last fold, fewer than deltaMax),
// and that a generation of many adds folds them.
func TestDeltaFold(t *testing.T) {
	var x svcIndexBuilder
	x.put(&service{key: svcKey{proto: 17}})
	x.freeze() // a table without slots folds its first delta
	for i := range 5 * deltaMax {
		x.put(&service{id: uint32(i), key: svcKey{proto: 6, port: uint16(i)}})
		if g := x.freeze(); len(g.d.ents) != (i+1)%deltaMax {
			t.Fatalf("after %d adds the delta holds %d services, want %d", i+1, len(g.d.ents), (i+1)%deltaMax)
		}
	}
	// A generation of deltaBulk adds folds them all, and what the delta held.
	x.put(&service{key: svcKey{proto: 6, port: 1000}})
	x.freeze()
	for i := range deltaBulk {
		x.put(&service{key: svcKey{proto: 6, port: uint16(2000 + i)}})
	}
	if g := x.freeze(); len(g.d.ents) != 0 || x.len() != 5*deltaMax+2+deltaBulk {
		t.Fatalf("a generation of %d adds left a delta of %d, %d services", deltaBulk, len(g.d.ents), x.len())
	}
}

// TestDeltaRace publishes generations of an index and a VIP set while a reader
// goroutine looks them up: services that are never removed must always be
// found, and every service found must be the one stored under its key. Run
// with -race, it checks that no generation is written after its publication.
func TestDeltaRace(t *testing.T) {
	type gen struct {
		x svcIndex
		s addrSet
	}
	var (
		x    svcIndexBuilder
		vips addrSetBuilder
		pub  atomic.Pointer[gen]
		done atomic.Bool
		wg   sync.WaitGroup
	)
	key := func(i int) svcKey {
		return svcKey{proto: 6, port: uint16(i), addr: [16]byte{198, 18, byte(i >> 8), byte(i)}}
	}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
	const stable, churn = 200, 600
	for i := range stable {
		x.put(&service{id: uint32(i), key: key(i)})
		vips.add(addr(i))
	}
	pub.Store(&gen{x.freeze(), vips.freeze()})
	wg.Add(1)
	var errs []string
	go func() {
		defer wg.Done()
		for n := 0; !done.Load() || n < 10; n++ {
			g := pub.Load()
			for i := range stable + churn {
				k := key(i)
				svc := g.x.get(&k)
				r := rawAddr(addr(i))
				in := g.s.contains(&r, false)
				if i < stable && (svc == nil || !in) || svc != nil && svc.key != k || svc != nil && !in {
					errs = append(errs, "a generation answered wrongly")
					return
				}
			}
		}
	}()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		i := stable + rng.IntN(churn)
		if x.get(key(i)) != nil {
			x.del(key(i))
			vips.remove(addr(i))
		} else {
			x.put(&service{id: uint32(i), key: key(i)})
			vips.add(addr(i))
		}
		pub.Store(&gen{x.freeze(), vips.freeze()})
	}
	done.Store(true)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
}

// TestDeltaSharedArray checks that a generation of an add allocates nothing for
// the delta (it holds the builder's array up to its length), and that a
// removal from the delta after a freeze leaves the generations before it as
// they were.
func TestDeltaSharedArray(t *testing.T) {
	var x svcIndexBuilder
	for i := range 100 {
		x.put(&service{id: uint32(i), key: svcKey{proto: 6, port: uint16(i)}})
	}
	x.b.fold()
	x.freeze()
	var gens []svcIndex
	i := 0
	allocs := testing.AllocsPerRun(deltaMax-2, func() {
		x.put(&service{id: uint32(1000 + i), key: svcKey{proto: 6, port: uint16(1000 + i)}})
		i++
		gens = append(gens[:0], x.freeze())
	})
	// The service itself and nothing else: the index's pages are untouched.
	if allocs > 1 {
		t.Fatalf("%.1f allocations a generation of an add, want at most 1 (the service)", allocs)
	}
	g := x.freeze()
	n := len(g.d.ents)
	if n == 0 {
		t.Fatal("the adds folded")
	}
	first := g.d.ents[0].svc
	x.del(first.key) // swaps the last entry into its place: in a copy
	after := x.freeze()
	if g.d.ents[0].svc != first || len(g.d.ents) != n || g.get(&first.key) != first {
		t.Fatal("a removal from the delta wrote a published generation's delta")
	}
	if after.get(&first.key) != nil || len(after.d.ents) != n-1 {
		t.Fatal("the removal is not in the next generation")
	}
}
