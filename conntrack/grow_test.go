package conntrack

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// bucketsInUse returns the number of buckets shard si has in use.
func bucketsInUse(tbl *Table, si int) int {
	return int(tbl.shards[si].bmask.Load()) + 1
}

// TestBucketsGrow fills a table of one shard, and one of eight, far past their
// first buckets, with connections and templates, IPv4 and IPv6, and checks that the
// buckets doubled with each shard's peak and stopped at its share of Max, that every
// entry is still found (In, Template, Out, Each) after each doubling, and that
// removing them all (Flush) leaves nothing behind.
func TestBucketsGrow(t *testing.T) {
	for _, shards := range []int{1, 8} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) { testBucketsGrow(t, shards) })
	}
}

func testBucketsGrow(t *testing.T, shards int) {
	v := newEnv(t, func(c *Config) { c.Max = 1 << 12; c.Shards = shards })
	share := (1 << 12) / shards
	d := v.addDest(1, "10.0.0.1", 8080, 1)
	for si := range shards {
		if got := bucketsInUse(v.tbl, si); got != wordsPerLine {
			t.Fatalf("new shard %d has %d buckets in use, want %d", si, got, wordsPerLine)
		}
	}
	keys := make([]Key, 0, 3000)
	now := int64(time.Second)
	var c Conn
	for i := range 3000 {
		var k Key
		switch i % 3 {
		case 0:
			k = tcpKey(fmt.Sprintf("198.18.%d.%d", i/250, i%250), uint16(1024+i), vip, 80)
		case 1:
			k = tcpKey(fmt.Sprintf("2001:db8::%x", i), uint16(1024+i), "2001:db8:1::10", 80)
		default:
			k = udpKey(fmt.Sprintf("198.19.%d.%d", i/250, i%250), 0, vip, 0) // a template's key
		}
		if i%3 == 2 {
			if r := v.tbl.InsertTemplate(&k, d, 8080, time.Hour, now, &c); r != Hit {
				t.Fatalf("InsertTemplate %d: %v", i, r)
			}
		} else if r := v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, now, &c); r != Hit {
			t.Fatalf("Insert %d: %v", i, r)
		}
		keys = append(keys, k)
		// A shard doubles its buckets once it has held more entries than half of
		// them: 8 entries keep the first line of 16, the 9th doubles it.
		if shards == 1 && (i == 7 || i == 8) {
			if got, want := bucketsInUse(v.tbl, 0), map[int]int{7: 16, 8: 32}[i]; got != want {
				t.Fatalf("%d entries in one shard: %d buckets in use, want %d", i+1, got, want)
			}
		}
		// Every doubling keeps every entry so far reachable: check at each power
		// of two, where the buckets have just doubled.
		if n := i + 1; n&(n-1) == 0 || n == 3000 {
			for j, k := range keys {
				if !found(v.tbl, &k, j%3 == 2, now) {
					t.Fatalf("after %d inserts entry %d (%v) is not found", n, j, k)
				}
			}
		}
	}
	// 3,000 entries: more than half of every shard's share of Max (at eight
	// shards, 375 a shard on average), so each doubled up to its share.
	for si := range shards {
		if got := bucketsInUse(v.tbl, si); got != share {
			t.Errorf("3,000 entries in %d shards: shard %d has %d buckets in use, want %d", shards, si, got, share)
		}
	}
	// NAT replies find their connections through the same buckets.
	k := keys[0]
	if r := v.tbl.Out(protoTCP, false, raw("10.0.0.1"), 8080, k.CAddr, k.CPort, fACK, now, &c); r != Hit {
		t.Errorf("Out for %v after growth: %v", k, r)
	}
	n := 0
	v.tbl.Each(func(*Conn) bool { n++; return true })
	if n != len(keys) {
		t.Errorf("Each saw %d entries, want %d", n, len(keys))
	}
	v.tbl.Flush()
	if l := v.tbl.Len(); l != 0 {
		t.Errorf("Len after Flush: %d", l)
	}
	for si := range shards {
		for b := range uint64(bucketsInUse(v.tbl, si)) {
			if head := *v.tbl.headOf(si, v.tbl.shards[si].bmask.Load(), b); head != 0 {
				t.Fatalf("bucket %d of shard %d still heads chain %d after Flush", b, si, head)
			}
		}
		if got := bucketsInUse(v.tbl, si); got != share {
			t.Errorf("after Flush: shard %d has %d buckets in use, want %d (they never shrink)", si, got, share)
		}
	}
}

// found looks k up as a connection or, with tpl, as a template.
func found(tbl *Table, k *Key, tpl bool, now int64) bool {
	var c Conn
	if tpl {
		return tbl.Template(k, now, &c)
	}
	return tbl.In(k, fACK, now, &c) == Hit
}

// TestBucketsGrowKeepOrder checks that a doubling keeps the order of a chain: of two
// connections with the same key, the newer one (the head) is still the one found.
// The older one is a connection in TIME_WAIT that a SYN may replace under
// conn_reuse_mode; both are live, so only the chain's order decides. BucketsSmall
// holds until the buckets leave the small block, and stays false from then on.
func TestBucketsGrowKeepOrder(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Max = 1 << 12; c.Shards = 1 })
	d1 := v.addDest(1, "10.0.0.1", 8080, 1)
	d2 := v.addDest(2, "10.0.0.2", 8080, 1)
	now := int64(time.Second)
	var c Conn
	k := tcpKey("198.18.0.1", 1000, vip, 80)
	if r := v.tbl.Insert(&k, d1, 8080, ipvs.DR, 0, 0, fSYN, now, &c); r != Hit {
		t.Fatalf("first Insert: %v", r)
	}
	if r := v.tbl.Insert(&k, d2, 8080, ipvs.DR, 0, 0, fSYN, now, &c); r != Hit {
		t.Fatalf("second Insert: %v", r)
	}
	if r := v.tbl.In(&k, fACK, now, &c); r != Hit || c.Dest != 2 {
		t.Fatalf("before growth: %v, dest %d; want the newer entry (dest 2)", r, c.Dest)
	}
	// After every growth (a reversal undone by the next doubling would pass a check
	// made only at the end). The buckets double up to smallBuckets, then go to the
	// shard's whole share of Max (4,096) at once.
	var sizes []int
	for i := range 1000 {
		before := bucketsInUse(v.tbl, 0)
		k2 := tcpKey(fmt.Sprintf("198.19.%d.%d", i/250, i%250), 2000, vip, 80)
		if r := v.tbl.Insert(&k2, d1, 8080, ipvs.DR, 0, 0, fSYN, now, &c); r != Hit {
			t.Fatalf("Insert %d: %v", i, r)
		}
		nb := bucketsInUse(v.tbl, 0)
		if got, want := v.tbl.BucketsSmall(), nb <= smallBuckets; got != want {
			t.Fatalf("%d buckets in use: BucketsSmall %v, want %v", nb, got, want)
		}
		if nb == before {
			continue
		}
		sizes = append(sizes, nb)
		if r := v.tbl.In(&k, fACK, now, &c); r != Hit || c.Dest != 2 {
			t.Fatalf("after growing to %d buckets: %v, dest %d; want the newer entry (dest 2)", nb, r, c.Dest)
		}
	}
	if want := []int{32, 64, 128, 256, 4096}; !slices.Equal(sizes, want) {
		t.Errorf("1,002 entries: the buckets grew to %v, want %v", sizes, want)
	}
	v.tbl.Flush() // the buckets never shrink, so they stay big
	if v.tbl.BucketsSmall() {
		t.Error("BucketsSmall after a Flush of grown buckets")
	}
}

// TestPrefetchWhileGrowing runs Prefetch, which reads a shard's bucket mask without
// its lock, against inserts of fresh connections that double the buckets of a
// one-shard table again and again, and lookups of them. Run with -race: a plain read
// of the mask (or of a replaced bucket slice) would be reported.
func TestPrefetchWhileGrowing(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Max = 1 << 14; c.Shards = 1 })
	d := v.addDest(1, "10.0.0.1", 8080, 1)
	const n = 12000
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = tcpKey(fmt.Sprintf("198.18.%d.%d", i/250, i%250), uint16(1024+i%50000), vip, 80)
	}
	var inserted atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the inserter: fresh keys only
		defer wg.Done()
		defer close(done)
		var c Conn
		for i := range keys {
			if r := v.tbl.Insert(&keys[i], d, 8080, ipvs.DR, 0, 0, fSYN, int64(time.Second), &c); r != Hit {
				t.Errorf("Insert %d: %v", i, r)
				return
			}
			inserted.Store(int64(i + 1))
		}
	}()
	go func() { // the batch prefetch of a worker, and its lookups
		defer wg.Done()
		var c Conn
		for j := 0; ; j++ {
			select {
			case <-done:
				return
			default:
			}
			k := &keys[j%n]
			v.tbl.Prefetch([]uint64{v.tbl.Hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)})
			if m := inserted.Load(); m > 0 {
				k := &keys[j%int(m)]
				if r := v.tbl.In(k, fACK, int64(time.Second), &c); r != Hit {
					t.Errorf("In of inserted key %v: %v", k, r)
					return
				}
			}
		}
	}()
	wg.Wait()
	if got := bucketsInUse(v.tbl, 0); got != 1<<14 {
		t.Errorf("%d entries in one shard of Max %d: %d buckets in use", n, 1<<14, got)
	}
}
