package conntrack

import (
	"fmt"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// fill inserts n UDP flows (timeout 300 s unless changed) from now on d.
func fillUDP(t *testing.T, v *env, n int, now int64) {
	t.Helper()
	d := v.dests[1]
	var c Conn
	for i := range n {
		k := udpKey(fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), uint16(1000+i%7), vip, 53)
		if r := v.tbl.Insert(&k, d, 53, ipvs.NAT, 0, 0, 0, now, &c); r != Hit {
			t.Fatalf("insert %d: %v", i, r)
		}
	}
}

func TestExpireExactTime(t *testing.T) {
	v := newEnv(t, nil) // Tick 1 s
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	k := tcpKey(client, 1, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c) // SR, 60 s
	if n := v.tbl.Expire(60*sec-1, 0); n != 0 || v.tbl.Len() != 1 {
		t.Fatalf("expired early: %d", n)
	}
	if r := v.tbl.In(&k, fSYN, 60*sec-1, &c); r != Hit { // refresh: 119.999999999
		t.Fatal(r)
	}
	if n := v.tbl.Expire(60*sec, 0); n != 0 {
		t.Fatal("refreshed entry expired")
	}
	exp := c.Expires
	if r := v.tbl.In(&k, fACK, exp, &c); r != Miss {
		t.Fatalf("lookup at now == expires: %v", r)
	}
	// Reaped at the first tick boundary at or after its expiry (120 s).
	if n := v.tbl.Expire(exp, 0); n != 0 {
		t.Fatal("reaped before the tick boundary")
	}
	if n := v.tbl.Expire(120*sec, 0); n != 1 || v.tbl.Len() != 0 || countsOf(d) != (counts{}) {
		t.Fatalf("expired %d len %d %+v", n, v.tbl.Len(), countsOf(d))
	}
}

// TestExpireWholeTick: with expiries on tick boundaries, Expire is exact.
func TestExpireWholeTick(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Tick = 100 * time.Millisecond })
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	for i := range 50 {
		k := tcpKey(client, uint16(1+i), vip, 80)
		v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, int64(i)*sec/10, &c) // expires 60 s + i*100ms
	}
	for i := range 50 {
		at := 60*sec + int64(i)*sec/10
		if n := v.tbl.Expire(at-1, 0); n != 0 {
			t.Fatalf("i=%d: %d expired early", i, n)
		}
		if n := v.tbl.Expire(at, 0); n != 1 {
			t.Fatalf("i=%d: expired %d at its time", i, n)
		}
	}
	if countsOf(d) != (counts{}) {
		t.Fatal(countsOf(d))
	}
}

func TestExpireBudget(t *testing.T) {
	v := newEnv(t, nil)
	v.addDest(1, rsAddr, 53, 1)
	fillUDP(t, v, 1000, 0)
	total, calls := 0, 0
	for v.tbl.Len() > 0 {
		n := v.tbl.Expire(301*sec, 37)
		if n > 37 {
			t.Fatalf("budget exceeded: %d", n)
		}
		total += n
		calls++
		if calls > 100 {
			t.Fatal("no progress")
		}
	}
	if total != 1000 || countsOf(v.dests[1]) != (counts{}) {
		t.Fatalf("total %d %+v", total, countsOf(v.dests[1]))
	}
}

// TestExpireRefile: entries refreshed for far longer than the wheel's horizon are
// re-filed, never lost, and expire on time once idle; a shorter timeout moves an entry
// to an earlier slot.
func TestExpireRefile(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Tick = 10 * time.Millisecond }) // horizon 10.24 s
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	keys := make([]Key, 200)
	for i := range keys {
		keys[i] = tcpKey(client, uint16(1+i), vip, 80)
		v.tbl.Insert(&keys[i], d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
		v.tbl.In(&keys[i], fACK, 0, &c) // ES: 900 s
	}
	now := int64(0)
	for ; now < 2000*sec; now += 7 * sec {
		for i := range keys {
			if r := v.tbl.In(&keys[i], fACK, now, &c); r != Hit {
				t.Fatalf("t=%d key %d lost: %v", now/sec, i, r)
			}
		}
		v.tbl.Expire(now, 0)
	}
	last := now - 7*sec
	// Half close (ES -> CW, 60 s); the rest stay ES (900 s).
	for i := 0; i < len(keys); i += 2 {
		v.tbl.In(&keys[i], fFINACK, last, &c)
	}
	for now = last; now < last+60*sec; now += sec / 2 {
		if n := v.tbl.Expire(now, 0); n != 0 {
			t.Fatalf("early expiry at +%v", time.Duration(now-last))
		}
	}
	if n := v.tbl.Expire(last+60*sec, 0); n != 100 {
		t.Fatalf("CW conns: expired %d at their time", n)
	}
	if n := v.tbl.Expire(last+900*sec-1, 0); n != 0 {
		t.Fatalf("ES early: %d", n)
	}
	if n := v.tbl.Expire(last+900*sec, 0); n != 100 {
		t.Fatalf("ES conns: %d", n)
	}
	if countsOf(d) != (counts{}) || v.tbl.Len() != 0 {
		t.Fatal(countsOf(d), v.tbl.Len())
	}
}

// TestExpireJump: a clock jump far beyond the horizon takes one pass, expires what is
// due and keeps the rest on time.
func TestExpireJump(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Tick = time.Millisecond; c.Shards = 256 })
	d := v.addDest(1, rsAddr, 53, 1)
	fillUDP(t, v, 500, 0) // 300 s
	var tpl, c Conn
	tk := udpKey("203.0.113.0", 0, vip, 53)
	v.tbl.InsertTemplate(&tk, d, 53, 30*24*time.Hour, 0, &tpl)
	start := time.Now()
	if n := v.tbl.Expire(10*24*3600*sec, 0); n != 500 {
		t.Fatalf("expired %d", n)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("jump took %v", el)
	}
	if v.tbl.Len() != 1 || !v.tbl.Get(tpl.Ref, &c) {
		t.Fatal("template lost")
	}
	// After the jump the wheel works normally again.
	k := udpKey(client, 9, vip, 53)
	base := 10 * 24 * 3600 * sec
	v.tbl.Insert(&k, d, 53, ipvs.NAT, 0, 0, 0, base, &c)
	if n := v.tbl.Expire(base+300*sec-1, 0); n != 0 {
		t.Fatal("early")
	}
	if n := v.tbl.Expire(base+300*sec, 0); n != 1 {
		t.Fatal("late")
	}
	if n := v.tbl.Expire(30*24*3600*sec-1, 0); n != 0 {
		t.Fatal("template early")
	}
	if n := v.tbl.Expire(30*24*3600*sec, 0); n != 1 || countsOf(d) != (counts{}) {
		t.Fatalf("template: %d %+v", n, countsOf(d))
	}
	// A jump processed with a small budget over several calls.
	fillUDP(t, v, 300, 30*24*3600*sec)
	total := 0
	for i := 0; v.tbl.Len() > 0; i++ {
		n := v.tbl.Expire(60*24*3600*sec, 7)
		if n > 7 {
			t.Fatal("budget")
		}
		total += n
		if i > 100000 {
			t.Fatal("no progress")
		}
	}
	if total != 300 || countsOf(d) != (counts{}) {
		t.Fatal(total, countsOf(d))
	}
}

// TestExpireClockBase: the wheel anchors at the first time it sees, whatever the
// clock's epoch, and a backwards time does nothing.
func TestExpireClockBase(t *testing.T) {
	for _, base := range []int64{0, -5000 * sec, 1_700_000_000 * sec} {
		v := newEnv(t, nil)
		d := v.addDest(1, rsAddr, 53, 1)
		fillUDP(t, v, 10, base)
		if n := v.tbl.Expire(base-100*sec, 0); n != 0 {
			t.Fatal("backwards")
		}
		if n := v.tbl.Expire(base+299*sec, 0); n != 0 {
			t.Fatal("early")
		}
		if n := v.tbl.Expire(base+300*sec, 0); n != 10 || countsOf(d) != (counts{}) {
			t.Fatalf("base %d: %d", base, n)
		}
	}
}

func TestCap(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Max = 100 })
	d := v.addDest(1, rsAddr, 53, 1)
	fillUDP(t, v, 99, 0)
	var tpl, c Conn
	tk := udpKey("203.0.113.0", 0, vip, 53)
	if r := v.tbl.InsertTemplate(&tk, d, 53, time.Hour, 0, &tpl); r != Hit {
		t.Fatal(r)
	}
	k := udpKey(client, 1, vip, 53)
	if r := v.tbl.Insert(&k, d, 53, ipvs.NAT, 0, tpl.Ref, 0, sec, &c); r != Full {
		t.Fatalf("insert at Max: %v", r)
	}
	if r := v.tbl.InsertTemplate(&tk, d, 53, time.Hour, sec, &c); r != Full {
		t.Fatalf("template at Max: %v", r)
	}
	v.tbl.Get(tpl.Ref, &c)
	if c.NControl != 0 || c.Expires != 3600*sec {
		t.Fatalf("Full touched the template: %+v", c)
	}
	// Existing entries are untouched and still work.
	k0 := udpKey("198.51.0.1", 1000, vip, 53)
	if r := v.tbl.In(&k0, 0, sec, &c); r != Hit {
		t.Fatal(r)
	}
	// One-packet conns are not stored, so they pass at Max.
	if r := v.tbl.Insert(&k, d, 53, ipvs.NAT, FlagOnePacket, 0, 0, sec, &c); r != Hit {
		t.Fatal(r)
	}
	if v.tbl.Len() != 100 || countsOf(d) != (counts{0, 99, 1}) {
		t.Fatal(v.tbl.Len(), countsOf(d))
	}
	v.tbl.Expire(300*sec, 0) // all but k0 (refreshed at 1 s) and the template
	if v.tbl.Len() != 2 {
		t.Fatal(v.tbl.Len())
	}
	if r := v.tbl.Insert(&k, d, 53, ipvs.NAT, 0, 0, 0, 300*sec, &c); r != Hit {
		t.Fatalf("after expiry: %v", r)
	}
}

func TestFlush(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, rsAddr, 53, 1)
	fillUDP(t, v, 50, 0)
	var tpl, c Conn
	tk := udpKey("203.0.113.0", 0, vip, 53)
	v.tbl.InsertTemplate(&tk, d, 53, time.Hour, 0, &tpl)
	for i := range 5 {
		k := udpKey("203.0.113.5", uint16(i+1), vip, 53)
		v.tbl.Insert(&k, d, 53, ipvs.NAT, 0, tpl.Ref, 0, 0, &c)
	}
	v.tbl.Flush()
	if v.tbl.Len() != 0 || walkLen(v.tbl) != 0 || countsOf(d) != (counts{}) {
		t.Fatal(v.tbl.Len(), countsOf(d))
	}
	// Usable afterwards, and Expire has nothing stale to trip over.
	fillUDP(t, v, 10, sec)
	if n := v.tbl.Expire(400*sec, 0); n != 10 {
		t.Fatal(n)
	}
}

func TestWalk(t *testing.T) {
	v := newEnv(t, nil)
	v.addDest(1, rsAddr, 53, 1)
	fillUDP(t, v, 30, 0)
	if n := walkLen(v.tbl); n != 30 {
		t.Fatal(n)
	}
	n := 0
	v.tbl.Each(func(c *Conn) bool {
		if c.DAddr != raw(rsAddr) || c.State != StateUDP || c.Method != ipvs.NAT {
			t.Errorf("%+v", c)
		}
		// Walk runs fn without locks: calling back into the table is fine.
		var x Conn
		if !v.tbl.Get(c.Ref, &x) || x.Key != c.Key {
			t.Errorf("Get(%v)", c.Ref)
		}
		n++
		return n < 10
	})
	if n != 10 {
		t.Fatal(n)
	}
}

func TestNewErrors(t *testing.T) {
	ok := DefaultConfig(10)
	for _, mod := range []func(*Config){
		func(c *Config) { c.Max = 0 },
		func(c *Config) { c.Shards = 3 },
		func(c *Config) { c.Shards = 8192 },
		func(c *Config) { c.Max = 1 << 30; c.Shards = 256 },
		func(c *Config) { c.Tick = -1 },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	if _, err := New(ok); err != nil {
		t.Error(err)
	}
}
