package conntrack

import (
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestPrefetchRef: a prefetch at any Ref, one of a live connection or one that cannot
// be valid (none, a shard past the table's, a slab index past a shard's first chunk,
// where the shard's later chunks may be changing under its lock), reads nothing and
// changes nothing: the connection steps as before. Fails if PrefetchRef indexes past
// the first chunk or a shard that is not there.
func TestPrefetchRef(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Shards = 4 })
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	k := tcpKey(client, 40000, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.DR, 0, 0, fSYN, 0, &c)
	si, _, _ := v.tbl.split(c.Ref)
	chunk := uint32(len(v.tbl.shards[si].first))
	for _, r := range []Ref{
		c.Ref, 0, ^Ref(0),
		v.tbl.ref(si, chunk), v.tbl.ref(si, chunk+1), v.tbl.ref(si, v.tbl.idxMask),
	} {
		v.tbl.PrefetchRef(r)
	}
	var g Conn
	if got := v.tbl.InRef(c.Ref, &k, fACK, sec, &g); got != Hit || g.State != StateEstablished {
		t.Fatalf("after the prefetches, the first ACK: %v %+v", got, g)
	}
}
