package conntrack

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// benchTable returns a table with Max n and one dest.
func benchTable(tb testing.TB, n int) (*Table, *sched.Dest) {
	tb.Helper()
	d := sched.NewDest(1, netip.MustParseAddr(rsAddr), 8080, 1, 0, 0)
	p := sched.NewPool(nil)
	if err := p.Add(d); err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig(n)
	cfg.UnconfirmedMax = n // the population is never confirmed: budget it all
	cfg.UnconfirmedPerService = n
	tbl, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return tbl, d
}

// flowKey is the i-th benchmark flow: clients 10.0.0.0/8 (by i>>4), 16 ports each.
func flowKey(i uint32) Key {
	var k Key
	k.Proto = protoTCP
	c := i >> 4
	k.CAddr[0], k.CAddr[1], k.CAddr[2], k.CAddr[3] = 10, byte(c>>16), byte(c>>8), byte(c)
	k.CPort = uint16(1024 + i&15)
	k.VAddr[0], k.VAddr[1], k.VAddr[2], k.VAddr[3] = 192, 0, 2, 10
	k.VPort = 80
	return k
}

// populate inserts n established NAT flows at time 0.
func populate(tb testing.TB, tbl *Table, d *sched.Dest, n int) {
	tb.Helper()
	var c Conn
	for i := range uint32(n) {
		k := flowKey(i)
		if r := tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c); r != Hit {
			tb.Fatalf("insert %d: %v", i, r)
		}
		tbl.In(&k, fACK, 0, &c)
	}
}

// BenchmarkIn: In on an established entry. small: 1000 flows, one looked up
// repeatedly; 1M: random access over 1,000,000 live flows.
func BenchmarkIn(b *testing.B) {
	b.Run("small", func(b *testing.B) {
		tbl, d := benchTable(b, 1000)
		populate(b, tbl, d, 1000)
		k := flowKey(500)
		var c Conn
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			tbl.In(&k, fACK, int64(i), &c)
		}
	})
	b.Run("1M", func(b *testing.B) {
		const n = 1 << 20
		tbl, d := benchTable(b, n)
		populate(b, tbl, d, n)
		keys := make([]Key, 1<<16) // random flows, precomputed outside the timer
		x := uint32(2463534242)
		for j := range keys {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			keys[j] = flowKey(x & (n - 1))
		}
		var c Conn
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if tbl.In(&keys[i&(len(keys)-1)], fACK, int64(i), &c) != Hit {
				b.Fatal("miss")
			}
		}
	})
}

func BenchmarkOut(b *testing.B) {
	tbl, d := benchTable(b, 1000)
	populate(b, tbl, d, 1000)
	k := flowKey(500)
	var c Conn
	src := raw(rsAddr)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tbl.Out(protoTCP, false, src, 8080, k.CAddr, k.CPort, fACK, int64(i), &c)
	}
}

// BenchmarkChurn: a steady state of about 50,000 UDP flows: each iteration inserts a
// new flow (5 s timeout, 0.1 ms apart) and advances Expire.
func BenchmarkChurn(b *testing.B) {
	tbl, d := benchTable(b, 65536)
	to := DefaultTimeouts()
	to.UDP = 5 * time.Second
	tbl.SetTimeouts(to)
	var c Conn
	step := int64(100 * time.Microsecond)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := flowKey(uint32(i))
		k.Proto = protoUDP
		now := int64(i) * step
		if tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, 0, now, &c) != Hit {
			b.Fatal("full")
		}
		tbl.Expire(now, 0)
	}
}

// BenchmarkMemory reports the heap used per connection with 1,000,000 live flows.
func BenchmarkMemory(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(bytesPerConn(b, 1_000_000), "bytes/conn")
	}
}

// bytesPerConn measures the heap growth of a table holding n flows, per flow.
func bytesPerConn(tb testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tbl, d := benchTable(tb, n)
	populate(tb, tbl, d, n)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if tbl.Len() != n {
		tb.Fatal(tbl.Len())
	}
	runtime.KeepAlive(tbl)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
