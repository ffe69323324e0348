package conntrack

import (
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestInRef steps a connection by its Ref as In steps it, and answers Miss, changing
// nothing, when the Ref no longer names the key's live connection: expired, its slot
// reused by another connection, a template, an entry made without a client port for
// a key with one, or no Ref at all.
func TestInRef(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Shards = 1 }) // one shard: a freed slot is the next one taken
	d := v.addDest(1, rsAddr, 8080, 1)
	var c, g Conn
	k := tcpKey(client, 40000, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.DR, 0, 0, fSYN, 0, &c)
	r := c.Ref
	if r == 0 || c.State != StateSynRecv {
		t.Fatalf("insert: %+v", c)
	}
	step := func(ref Ref, k *Key, flags uint8, now int64, want Result, state State) {
		t.Helper()
		c = Conn{}
		if got := v.tbl.InRef(ref, k, flags, now, &c); got != want {
			t.Fatalf("InRef(%#x, cport %d, %#x) at %v: %v, want %v", ref, k.CPort, flags, time.Duration(now), got, want)
		}
		if want == Hit && (c.State != state || c.Ref != ref || c.Key != *k || c.DAddr != raw(rsAddr) || c.Expires != now+int64(c.Timeout)) {
			t.Fatalf("InRef(%#x, %#x): %+v, want state %v", ref, flags, c, state)
		}
	}
	step(r, &k, fACK, sec, Hit, StateEstablished)
	if got := countsOf(d); got != (counts{act: 1}) {
		t.Fatalf("after the ACK: %+v", got)
	}
	step(r, &k, fFINACK, 2*sec, Hit, StateFinWait)
	if got := countsOf(d); got != (counts{inact: 1}) {
		t.Fatalf("after the FIN: %+v", got)
	}
	checkCounts(t, v.tbl, v.dests)

	// Another key, a client port without a connection: Miss.
	other := k
	other.CPort++
	step(r, &other, fACK, 3*sec, Miss, 0)
	step(0, &k, fACK, 3*sec, Miss, 0)

	// Expired (FIN_WAIT lasts 120 s): Miss, and the entry is as it was.
	exp := 2*sec + 120*sec
	step(r, &k, fACK, exp, Miss, 0)
	if !v.tbl.Get(r, &g) || g.State != StateFinWait || g.Expires != exp {
		t.Fatalf("expired entry changed: %+v", g)
	}

	// The slot reused by another connection: Miss for the old key, which leaves the
	// new connection alone; its own key steps it.
	v.tbl.Expire(exp+2*sec, 0)
	k2 := tcpKey(client, 40001, vip, 80)
	v.tbl.Insert(&k2, d, 8080, ipvs.DR, 0, 0, fSYN, exp+2*sec, &c)
	if c.Ref != r {
		t.Fatalf("the freed slot %#x was not reused: %#x", r, c.Ref)
	}
	step(r, &k, fACK, exp+3*sec, Miss, 0)
	if !v.tbl.Get(r, &g) || g.Key != k2 || g.State != StateSynRecv || g.Expires != exp+2*sec+60*sec {
		t.Fatalf("a stale ref changed another connection: %+v", g)
	}
	step(r, &k2, fACK, exp+3*sec, Hit, StateEstablished)

	// A template is no connection of its key.
	tk := tcpKey(client, 0, vip, 443)
	v.tbl.InsertTemplate(&tk, d, 8080, time.Hour, exp, &g)
	step(g.Ref, &tk, fACK, exp+3*sec, Miss, 0)

	// An entry made without a client port is In's second lookup's, not InRef's.
	kn := udpKey(client, 0, vip, 53)
	v.tbl.Insert(&kn, d, 53, ipvs.DR, FlagNoCPort, 0, 0, exp, &g)
	withPort := kn
	withPort.CPort = 5353
	step(g.Ref, &withPort, 0, exp+sec, Miss, 0)
	step(g.Ref, &kn, 0, exp+sec, Hit, StateUDP)
	checkCounts(t, v.tbl, v.dests)
}
