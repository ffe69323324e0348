package conntrack

import (
	"testing"
	"unsafe"

	"github.com/gvs-lb/gvs/ipvs"
)

// slabBytes is the memory of every shard's slab chunks.
func slabBytes(tbl *Table) int {
	n := 0
	for si := range tbl.shards {
		s := &tbl.shards[si]
		s.mu.Lock()
		n += len(s.chunks) * int(s.chunkMask+1) * int(unsafe.Sizeof(entry{}))
		s.mu.Unlock()
	}
	return n
}

// slabBound is the most the slabs may hold: every shard's bound (slabRoomLocked),
// rounded up to whole chunks.
func slabBound(tbl *Table) int {
	n := 0
	for si := range tbl.shards {
		s := &tbl.shards[si]
		chunk := int64(s.chunkMask + 1)
		ns := int64(len(tbl.shards))
		limit := max(2*((tbl.max.Load()+ns-1)/ns), 4*chunk)
		n += int((limit+chunk-1)/chunk*chunk) * int(unsafe.Sizeof(entry{}))
	}
	return n
}

// TestSlabBoundAfterFlood (docs/defense.md §9): floods that fill the table to
// conn_max grow the slabs to about conn_max entries; after each drains they are kept
// and reused, so fresh floods add only what the hash spreads unevenly, and the
// slabs never pass the bound of twice conn_max entries.
func TestSlabBoundAfterFlood(t *testing.T) {
	const max = 200_000
	v := newEnv(t, func(c *Config) { c.Max, c.Shards = max, 256 })
	v.tbl.initClock(0)
	d := v.addDest(1, rsAddr, 8080, 1)
	p := &onePicker{d, ipvs.DR}
	var c Conn
	empty := slabBytes(v.tbl)
	var first int
	now := sec
	for round := range 5 {
		for i := range max {
			k := spoofKey(protoTCP, i, 80)
			k.CAddr[0] = byte(10 + round)
			if r := v.tbl.InOrInsert(&k, fSYN, now, p, &c); r != Created {
				t.Fatalf("round %d, %d: %v", round, i, r)
			}
		}
		full := slabBytes(v.tbl)
		if round == 0 {
			first = full
		}
		t.Logf("flood %d: slabs %d bytes (%.1f B/entry at conn_max)", round, full, float64(full)/max)
		if full > slabBound(v.tbl) || full > first*11/10 {
			t.Fatalf("flood %d: slabs %d bytes, first %d, bound %d", round, full, first, slabBound(v.tbl))
		}
		// Drained: every SYN_RECV entry expires after 60 s; nothing is returned.
		now += 62 * sec
		if n := v.tbl.Expire(now, 0); n != max || v.tbl.Len() != 0 || slabBytes(v.tbl) != full {
			t.Fatalf("expired %d, len %d, slabs %d", n, v.tbl.Len(), slabBytes(v.tbl))
		}
	}
	t.Logf("slabs: %d bytes empty; bound %d", empty, slabBound(v.tbl))
}

// TestSlabBoundTargetedFlood: a flood whose flows all hash to one shard fills that
// shard's slab to its bound and no further; with the unconfirmed budget on, the
// shard's own unconfirmed entries make room for its new ones; with it off, new
// entries of that shard are refused, counted; other shards are unaffected.
func TestSlabBoundTargetedFlood(t *testing.T) {
	for _, budget := range []int{0, UnconfirmedOff} {
		v := newEnv(t, func(c *Config) { c.Max, c.Shards, c.UnconfirmedMax = 20000, 64, budget })
		v.tbl.initClock(0)
		d := v.addDest(1, rsAddr, 8080, 1)
		p := &onePicker{d, ipvs.DR}
		var c Conn
		s0 := &v.tbl.shards[0]
		created, refused := 0, 0
		for i := 0; created+refused < 2000; i++ {
			k := spoofKey(protoTCP, i, 80)
			if v.tbl.shardOf(v.tbl.hash(k.Proto, false, &k.CAddr, k.CPort)) != 0 {
				continue
			}
			switch v.tbl.InOrInsert(&k, fSYN, sec, p, &c) {
			case Created:
				created++
			case Full:
				refused++
			}
		}
		chunk := int(s0.chunkMask + 1)
		limit := max(2*((20000+63)/64), 4*chunk)
		usable := limit - 1 // slab index 0 is never used
		if got := len(s0.chunks) * chunk; got > (limit+chunk-1)/chunk*chunk {
			t.Fatalf("budget %d: shard 0 slab %d entries, bound %d", budget, got, limit)
		}
		st := v.tbl.Unconfirmed()
		if budget == 0 && (refused != 0 || st.Evicted != uint64(2000-usable)) {
			t.Fatalf("budget on: refused %d, %+v", refused, st)
		}
		if budget == UnconfirmedOff && (refused != 2000-usable || st.SlabRefused != uint64(refused)) {
			t.Fatalf("budget off: refused %d, %+v", refused, st)
		}
		k := tcpKey("203.0.113.9", 1000, vip, 80)
		if v.tbl.shardOf(v.tbl.hash(k.Proto, false, &k.CAddr, k.CPort)) != 0 {
			if r := v.tbl.InOrInsert(&k, fSYN, sec, p, &c); r != Created {
				t.Fatalf("another shard's client: %v", r)
			}
		}
		checkCounts(t, v.tbl, v.dests)
	}
}
