package dataplane

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
	"unsafe"
)

// TestSvcIndex checks the index against a Go map: every stored key is found, and
// keys that differ from a stored one in a single field are not.
func TestSvcIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 4, 5, 17, 200} { // the generator below has 266 distinct keys
		m := map[svcKey]*service{}
		for len(m) < n {
			k := svcKey{proto: []uint8{6, 17}[rng.IntN(2)], v6: rng.IntN(2) == 1, port: uint16(rng.IntN(4))}
			if rng.IntN(8) == 0 {
				k = svcKey{mark: uint32(rng.IntN(5)), v6: k.v6}
			} else {
				k.addr[15] = byte(rng.IntN(8)) // few distinct values: many near-collisions
				k.addr[0] = byte(rng.IntN(2))
			}
			m[k] = &service{id: uint32(len(m))}
		}
		x := newSvcIndex(m)
		if int(x.slots()) < 2*n {
			t.Fatalf("n=%d: %d slots", n, x.slots())
		}
		for k, svc := range m {
			if got := x.get(&k); got != svc {
				t.Fatalf("n=%d: get(%+v) = %v, want %v", n, k, got, svc)
			}
			for _, mut := range []func(*svcKey){
				func(k *svcKey) { k.port++ },
				func(k *svcKey) { k.proto ^= 1 },
				func(k *svcKey) { k.v6 = !k.v6 },
				func(k *svcKey) { k.addr[15] += 100 },
				func(k *svcKey) { k.mark += 1000 },
			} {
				k2 := k
				mut(&k2)
				if got := x.get(&k2); got != m[k2] {
					t.Fatalf("n=%d: get(%+v) = %v, want %v", n, k2, got, m[k2])
				}
			}
		}
	}
	var empty svcIndex
	if empty.get(&svcKey{port: 80}) != nil {
		t.Fatal("zero index found a service")
	}
}

// TestSvcIndexBuilder runs random puts and deletions on a builder against a Go map,
// freezing now and then: every frozen index must still answer as the map did when
// it was frozen (a later write never reaches a published index), through growth and
// deletions that move entries back. The large case grows the table past one
// directory of pages (2,048 slots), so that writes copy directories too.
func TestSvcIndexBuilder(t *testing.T) {
	t.Run("one directory", func(t *testing.T) { testSvcIndexBuilder(t, 700, 80, 60) })
	t.Run("directories", func(t *testing.T) { testSvcIndexBuilder(t, 8000, 1500, 16) })
}

func testSvcIndexBuilder(t *testing.T, ports, ops, rounds int) {
	rng := rand.New(rand.NewPCG(9, 10))
	type frozen struct {
		x svcIndex
		m map[svcKey]*service
	}
	var x svcIndexBuilder
	m := map[svcKey]*service{}
	var all []frozen
	keyOf := func() svcKey {
		// Few distinct high bytes, so that runs of probes form and cross pages.
		k := svcKey{proto: 6, port: uint16(rng.IntN(ports))}
		k.addr[0] = byte(rng.IntN(3))
		return k
	}
	for round := range rounds {
		for range rng.IntN(ops) {
			k := keyOf()
			if rng.IntN(3) == 0 {
				x.del(k)
				delete(m, k)
				continue
			}
			svc := &service{id: uint32(round), key: k}
			x.put(svc)
			m[k] = svc
		}
		if x.b.len() != len(m) {
			t.Fatalf("round %d: builder counts %d entries, map has %d", round, x.b.len(), len(m))
		}
		if ports > 700 && round == rounds-1 && x.b.base.t.slots() <= pageSize*dirSize {
			t.Fatalf("the table has %d slots: the test never grew it past one directory", x.b.base.t.slots())
		}
		all = append(all, frozen{x.freeze(), maps.Clone(m)})
		for i, f := range all {
			for k, svc := range f.m {
				if got := f.x.get(&k); got != svc {
					t.Fatalf("round %d: index frozen at round %d: get(%v) = %v, want %v", round, i, k.port, got, svc)
				}
			}
			for range 20 {
				k := keyOf()
				if got := f.x.get(&k); got != f.m[k] {
					t.Fatalf("round %d: index frozen at round %d: get(%v) = %v, want %v", round, i, k.port, got, f.m[k])
				}
			}
		}
	}
}

// TestAddrSetBuilder checks the counted address set through the linear and the
// hashed forms: an address stays while one holder is left, and frozen sets keep
// their contents.
func TestAddrSetBuilder(t *testing.T) {
	var b addrSetBuilder
	addr := func(i int) netip.Addr {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	has := func(s *addrSet, a netip.Addr) bool {
		r := rawAddr(a)
		return s.contains(&r, a.Is6())
	}
	for i := range 40 {
		b.add(addr(i))
		b.add(addr(i)) // a second holder
	}
	big := b.freeze()
	if big.small != nil {
		t.Fatal("40 addresses are kept in the linear form")
	}
	for i := range 40 {
		b.remove(addr(i))
	}
	for i := range 40 {
		if !has(&big, addr(i)) {
			t.Fatalf("%s missing from the hashed set", addr(i))
		}
		if i < 30 {
			b.remove(addr(i)) // the last holder
		}
	}
	if has(&big, addr(40)) || has(&big, netip.AddrFrom4([4]byte{198, 19, 0, 0})) {
		t.Fatal("the hashed set holds an address never added")
	}
	small := b.freeze()
	if small.small == nil {
		t.Fatal("10 addresses are not in the linear form")
	}
	for i := range 40 {
		if got := has(&small, addr(i)); got != (i >= 30) {
			t.Fatalf("%s in the set after its holders went: %v, want %v", addr(i), got, i >= 30)
		}
		if !has(&big, addr(i)) {
			t.Fatalf("%s missing from the earlier set after later removals", addr(i))
		}
	}
	// Three holders of one address, a remove of one never added: the set
	// keeps it until the third remove, and keeps no count once it is gone.
	for range 3 {
		b.add(addr(50))
	}
	b.remove(addr(51))
	for n := 3; n > 0; n-- {
		if s := b.freeze(); !has(&s, addr(50)) {
			t.Fatalf("%s gone with %d holders left", addr(50), n)
		}
		b.remove(addr(50))
	}
	for i := 30; i < 40; i++ {
		b.remove(addr(i))
	}
	if s := b.freeze(); has(&s, addr(50)) || len(s.small) != 0 || b.b.len() != 0 || len(b.extra) != 0 {
		t.Fatalf("after every holder went: small %v, %d entries, %d extra counts", s.small, b.b.len(), len(b.extra))
	}
}

// TestPagedTableBuiltWhole checks that a table grown in one generation (a
// restore's, a reload's) keeps its pages in one array and its directories in
// one more: the objects its growth makes do not follow its size.
func TestPagedTableBuiltWhole(t *testing.T) {
	objects := func(slots int) float64 {
		return testing.AllocsPerRun(5, func() {
			var b pagedBuilder[svcSlot]
			b.resize(slots)
		})
	}
	// The directory list, the directories, the pages, and the builder's three
	// lists by page and directory: six, or a few more (the race detector's,
	// the runtime's own), whatever the table's size.
	small, big := objects(1<<10), objects(1<<15)
	if small > 8 || big > 8 {
		t.Fatalf("a table of 1,024 slots made %.0f objects, of 32,768 slots %.0f: want a few, whatever the size", small, big)
	}
}

// TestSvcIndexSameHash checks that the index tells apart keys of the same hash
// (a slot keeps the hash, the service its key): two keys built to collide —
// the mark's bit 0 sits on the address's bit 32 in svcHash — are both found, as
// themselves, and deleting one leaves the other.
func TestSvcIndexSameHash(t *testing.T) {
	a := svcKey{mark: 1, v6: true}
	b := svcKey{v6: true}
	b.addr[4] = 1
	if svcHash(&a) != svcHash(&b) || a == b {
		t.Fatalf("keys %+v and %+v: hashes %#x and %#x, want equal hashes of distinct keys", a, b, svcHash(&a), svcHash(&b))
	}
	sa, sb := &service{id: 1, key: a}, &service{id: 2, key: b}
	var x svcIndexBuilder
	x.put(sa)
	x.put(sb)
	both := x.freeze()
	x.del(a)
	onlyB := x.freeze()
	for _, c := range []struct {
		idx  svcIndex
		k    svcKey
		want *service
	}{{both, a, sa}, {both, b, sb}, {onlyB, a, nil}, {onlyB, b, sb}} {
		if got := c.idx.get(&c.k); got != c.want {
			t.Errorf("get(%+v) = %v, want %v", c.k, got, c.want)
		}
	}
	if x.len() != 1 {
		t.Errorf("%d services after one of two deleted", x.len())
	}
}

// TestSvcSlotSize keeps a slot at 16 bytes: a page of 16 slots is then 4
// cache lines, what each change of a service copies (ptable.go).
func TestSvcSlotSize(t *testing.T) {
	if n := unsafe.Sizeof(svcSlot{}); n != 16 {
		t.Fatalf("svcSlot is %d bytes, want 16", n)
	}
}
