package conntrack

import (
	"fmt"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

func TestAllocsHotPath(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, rsAddr, 8080, 1)
	var c, tpl Conn
	k := tcpKey(client, 40000, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
	tk := tcpKey("198.51.100.0", 0, vip, 443)
	v.tbl.InsertTemplate(&tk, d, 8080, time.Hour, 0, &tpl)
	k2 := tcpKey(client, 40001, vip, 443)
	v.tbl.Insert(&k2, d, 8080, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
	r2 := c.Ref
	now := int64(0)
	cases := []struct {
		name string
		fn   func()
	}{
		{"In", func() { now++; v.tbl.In(&k, fACK, now, &c) }},
		{"In controlled", func() { now++; v.tbl.In(&k2, fACK, now, &c) }},
		{"In miss", func() { k3 := k; k3.CPort = 1; v.tbl.In(&k3, fSYN, now, &c) }},
		{"InRef", func() {
			now++
			if v.tbl.InRef(r2, &k2, fACK, now, &c) != Hit {
				t.Fatal("InRef missed")
			}
		}},
		{"Out", func() {
			now++
			v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40000, fACK, now, &c)
		}},
		{"Template", func() { now++; v.tbl.Template(&tk, now, &tpl) }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: %v allocs", tc.name, n)
		}
	}
}

// TestAllocsInsertExpire: after warm-up, inserting and expiring allocates nothing.
func TestAllocsInsertExpire(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Max = 10000; c.Tick = 100 * time.Millisecond })
	d := v.addDest(1, rsAddr, 53, 1)
	keys := make([]Key, 4096)
	for i := range keys {
		keys[i] = udpKey(fmt.Sprintf("198.51.%d.%d", i/200, i%200+1), 5353, vip, 53)
	}
	to := DefaultTimeouts()
	to.UDP = 5 * time.Second
	v.tbl.SetTimeouts(to)
	var c Conn
	now, i := int64(0), 0
	churn := func() {
		now += 10 * int64(time.Millisecond)
		v.tbl.Insert(&keys[i%len(keys)], d, 53, ipvs.NAT, 0, 0, 0, now, &c)
		i++
		v.tbl.Expire(now, 0)
	}
	for range 3 * len(keys) { // warm-up: slabs reach their steady size
		churn()
	}
	if n := testing.AllocsPerRun(5000, churn); n != 0 {
		t.Errorf("Insert+Expire: %v allocs", n)
	}
	if v.tbl.Len() > 600 {
		t.Fatalf("len %d: not expiring", v.tbl.Len())
	}
}
