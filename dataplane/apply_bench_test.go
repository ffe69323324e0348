package dataplane

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// BenchmarkApplyOneChange measures a new generation for a table of n services of
// which one changes (its real server's weight, back and forth): Apply of the whole
// table, as a reload gives it, and ApplyDelta of the one service, as gvs adm does.
func BenchmarkApplyOneChange(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		table := make([]ipvs.Service, n)
		for i := range table {
			vip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			table[i] = ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip, 80)), Scheduler: "rr",
				RealServers: []ipvs.RealServer{{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 80), Weight: 1, Method: ipvs.DR}}}
		}
		for _, delta := range []bool{false, true} {
			name := "Apply"
			if delta {
				name = "ApplyDelta"
			}
			b.Run(fmt.Sprintf("%s/services=%d", name, n), func(b *testing.B) {
				d, err := New(DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				if err := d.Apply(table); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					t := table
					t[n/2].RealServers = []ipvs.RealServer{t[n/2].RealServers[0]}
					t[n/2].RealServers[0].Weight = int32(2 + i%2)
					if delta {
						err = d.ApplyDelta(t[n/2:n/2+1], nil)
					} else {
						err = d.Apply(t)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
