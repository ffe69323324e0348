package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkLookup measures the per-packet lookups of a generation — the service
// index and the VIP set — at a few and at 10,000 services, hits and misses.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		m := map[svcKey]*service{}
		var addrs []netip.Addr
		var keys []svcKey
		for i := range n {
			a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			addrs = append(addrs, a)
			k := svcKey{proto: 6, addr: a.As16(), port: 80}
			m[k] = &service{id: uint32(i)}
			keys = append(keys, k)
		}
		x := newSvcIndex(m)
		set := newAddrSet(addrs)
		raws := make([][16]byte, 0, 256)
		for i := range 256 {
			raws = append(raws, rawAddr(addrs[i*7%n]))
		}
		b.Run(fmt.Sprintf("svcindex/services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			miss := svcKey{proto: 17, port: 53}
			for i := range b.N {
				k := &keys[i*13%n]
				if x.get(k) == nil || x.get(&miss) != nil {
					b.Fatal("lookup")
				}
			}
		})
		// The same index after services added since its last fold, which its
		// delta holds (pdelta.go): one (a gvs adm -A), or one short of a fold.
		// A lookup reads the delta only when the table misses: the miss key's
		// hash is in the full delta's bloom filter, so its lookups there scan
		// the delta.
		for _, nd := range []int{1, deltaMax - 1} {
			var xb svcIndexBuilder
			for _, svc := range m {
				xb.put(svc)
			}
			xb.b.fold()
			xb.freeze()
			var xd svcIndex
			for i := range nd { // one a generation, as gvs adm commands add them
				xb.put(&service{id: uint32(n + i), key: svcKey{proto: 6, addr: [16]byte{198, 19, 0, byte(i)}, port: 80}})
				xd = xb.freeze()
			}
			if len(xd.d.ents) != nd {
				b.Fatalf("a delta of %d services, want %d", len(xd.d.ents), nd)
			}
			b.Run(fmt.Sprintf("svcindex-delta=%d/services=%d", nd, n), func(b *testing.B) {
				b.ReportAllocs()
				miss := svcKey{proto: 17, port: 53}
				for i := range b.N {
					k := &keys[i*13%n]
					if xd.get(k) == nil || xd.get(&miss) != nil {
						b.Fatal("lookup")
					}
				}
			})
		}
		b.Run(fmt.Sprintf("vips/addrs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			miss := rawAddr(netip.MustParseAddr("198.19.0.1"))
			for i := range b.N {
				if !set.contains(&raws[i&255], false) || set.contains(&miss, false) {
					b.Fatal("contains")
				}
			}
		})
	}
}
