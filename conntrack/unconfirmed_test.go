package conntrack

import (
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// onePicker picks one dest for every new connection, in DR or NAT.
type onePicker struct {
	d *sched.Dest
	m ipvs.Method
}

func (p *onePicker) Pick(*Key) (*sched.Dest, uint16, ipvs.Method, Flags) {
	return p.d, p.d.Port(), p.m, 0
}

// spoofKey is the i-th spoofed client: 198.18.0.0/15 by i, one port each.
func spoofKey(proto uint8, i int, vport uint16) Key {
	var k Key
	k.Proto = proto
	k.CAddr[0], k.CAddr[1], k.CAddr[2], k.CAddr[3] = 198, 18+byte(i>>16&1), byte(i>>8), byte(i)
	k.CPort = uint16(1024 + i>>17)
	k.VAddr = raw(vip)
	k.VPort = vport
	return k
}

// unconfEnv is a table with the budget on (newEnv turns it off).
func unconfEnv(t *testing.T, max, total, perSvc, shards int) (*env, *sched.Dest) {
	t.Helper()
	v := newEnv(t, func(c *Config) {
		c.Max, c.Shards = max, shards
		c.UnconfirmedMax, c.UnconfirmedPerService = total, perSvc
	})
	v.tbl.initClock(0) // InOrInsert does In alone until the clock is set
	return v, v.addDest(1, rsAddr, 8080, 1)
}

// listLen walks every shard's unconfirmed list both ways and checks its links.
func listLen(t *testing.T, tbl *Table) int {
	t.Helper()
	n := 0
	for si := range tbl.shards {
		s := &tbl.shards[si]
		s.mu.Lock()
		prev := uint32(0)
		for i := s.uhead; i != 0; i = s.at(i).unext {
			e := s.at(i)
			if e.uprev != prev || e.flags&(fUnconf|fLive) != fUnconf|fLive || e.flags&FlagTemplate != 0 {
				s.mu.Unlock()
				t.Fatalf("shard %d entry %d: uprev %d want %d, flags %#x", si, i, e.uprev, prev, e.flags)
			}
			prev = i
			n++
		}
		if s.utail != prev {
			s.mu.Unlock()
			t.Fatalf("shard %d: tail %d, last %d", si, s.utail, prev)
		}
		s.mu.Unlock()
	}
	if got := tbl.Unconfirmed().Unconfirmed; got != n {
		t.Fatalf("counter %d, lists %d", got, n)
	}
	return n
}

func TestUnconfEvictsOldest(t *testing.T) {
	v, d := unconfEnv(t, 100, 10, 10, 1)
	p := &onePicker{d, ipvs.DR}
	var c Conn
	for i := range 10 {
		k := spoofKey(protoTCP, i, 80)
		if r := v.tbl.InOrInsert(&k, fSYN, int64(i)*sec, p, &c); r != Created {
			t.Fatalf("%d: %v", i, r)
		}
	}
	for i := 10; i < 25; i++ {
		k := spoofKey(protoTCP, i, 80)
		if r := v.tbl.InOrInsert(&k, fSYN, int64(i)*sec, p, &c); r != Created {
			t.Fatalf("%d: %v", i, r)
		}
		// The oldest (i-10) went, the next oldest is still there.
		old, next := spoofKey(protoTCP, i-10, 80), spoofKey(protoTCP, i-9, 80)
		if r := v.tbl.In(&old, fACK, int64(i)*sec, &c); r != Miss {
			t.Fatalf("%d: oldest %v", i, r)
		}
		if r := v.tbl.In(&next, fNone, int64(i)*sec, &c); r != Hit {
			t.Fatalf("%d: next %v", i, r)
		}
	}
	st := v.tbl.Unconfirmed()
	if st.Evicted != 15 || st.Unconfirmed != 10 || v.tbl.Len() != 10 || st.Refused != 0 {
		t.Fatalf("%+v len %d", st, v.tbl.Len())
	}
	if n := listLen(t, v.tbl); n != 10 {
		t.Fatal(n)
	}
	checkCounts(t, v.tbl, v.dests)
}

// TestUnconfConfirmedNeverEvicted: at Max, only unconfirmed entries make room; a
// table of confirmed entries refuses.
func TestUnconfConfirmedNeverEvicted(t *testing.T) {
	for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT} {
		t.Run(m.String(), func(t *testing.T) {
			v, d := unconfEnv(t, 30, 30, 30, 4)
			p := &onePicker{d, m}
			var c Conn
			now := sec
			confirm := func(k *Key) {
				t.Helper()
				switch {
				case k.Proto == protoUDP && m == ipvs.NAT:
					// A reply does not confirm: a server answers spoofed sources too.
					if r := v.tbl.Out(protoUDP, false, raw(rsAddr), 8080, k.CAddr, k.CPort, 0, now, &c); r != Hit {
						t.Fatalf("udp reply: %v", r)
					}
					if listLen(t, v.tbl) == 0 {
						t.Fatal("a UDP reply confirmed the flow")
					}
					if r := v.tbl.In(k, 0, now, &c); r != Hit {
						t.Fatalf("udp second datagram: %v", r)
					}
				case k.Proto == protoUDP:
					if r := v.tbl.In(k, 0, now, &c); r != Hit {
						t.Fatalf("udp second datagram: %v", r)
					}
				default:
					if m == ipvs.NAT {
						if r := v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, k.CAddr, k.CPort, fSYNACK, now, &c); r != Hit {
							t.Fatalf("syn-ack: %v", r)
						}
					}
					if r := v.tbl.In(k, fACK, now, &c); r != Hit || c.State != StateEstablished {
						t.Fatalf("ack: %v %v", r, c.State)
					}
				}
			}
			// 10 TCP and 10 UDP real clients, confirmed; 10 spoofed SYNs.
			var real []Key
			for i := range 20 {
				k := spoofKey(protoTCP, 100000+i, 80)
				if i >= 10 {
					k = spoofKey(protoUDP, 100000+i, 53)
				}
				fl := uint8(fSYN)
				if k.Proto == protoUDP {
					fl = 0
				}
				if r := v.tbl.InOrInsert(&k, fl, now, p, &c); r != Created {
					t.Fatalf("real %d: %v", i, r)
				}
				real = append(real, k)
			}
			for i := range real {
				confirm(&real[i])
			}
			if n := listLen(t, v.tbl); n != 0 {
				t.Fatalf("%d unconfirmed after confirming all", n)
			}
			// A flood of 1,000 spoofed SYNs, the table full after the first 10.
			for i := range 1000 {
				k := spoofKey(protoTCP, i, 80)
				r := v.tbl.InOrInsert(&k, fSYN, now, p, &c)
				if r != Created {
					t.Fatalf("spoof %d: %v (%+v)", i, r, v.tbl.Unconfirmed())
				}
			}
			for i := range real {
				if r := v.tbl.In(&real[i], fACK, now, &c); r != Hit {
					t.Fatalf("real %d evicted: %v", i, r)
				}
			}
			if st := v.tbl.Unconfirmed(); st.Evicted != 990 || v.tbl.Len() != 30 {
				t.Fatalf("%+v len %d", st, v.tbl.Len())
			}
			// Confirm the 10 left: nothing unconfirmed, the next SYN is refused.
			var left []Key
			v.tbl.Each(func(c *Conn) bool {
				if c.Key.Proto == protoTCP && c.Key.CAddr[1] == 18 {
					left = append(left, c.Key)
				}
				return true
			})
			if len(left) != 10 {
				t.Fatalf("%d spoofed entries left", len(left))
			}
			for i := range left {
				confirm(&left[i])
			}
			k := spoofKey(protoTCP, 5000, 80)
			if r := v.tbl.InOrInsert(&k, fSYN, now, p, &c); r != Full {
				t.Fatalf("full of confirmed: %v", r)
			}
			checkCounts(t, v.tbl, v.dests)
			listLen(t, v.tbl)
		})
	}
}

// TestUnconfPerService: one service's flood evicts its own entries; other
// services' unconfirmed entries are not touched; a service at its cap whose oldest
// entry is beyond the svcProbe oldest of the shard is refused, counted.
func TestUnconfPerService(t *testing.T) {
	v, d := unconfEnv(t, 100, 30, 4, 1)
	p := &onePicker{d, ipvs.DR}
	var c Conn
	// Services B..E (UDP ports 1001..1004), 4 entries each: the 16 oldest.
	var others []Key
	for i := range svcProbe {
		k := spoofKey(protoUDP, 500+i, uint16(1001+i%4))
		if r := v.tbl.InOrInsert(&k, 0, 0, p, &c); r != Created {
			t.Fatal(i, r)
		}
		others = append(others, k)
	}
	for i := range 4 {
		k := spoofKey(protoTCP, i, 80)
		if r := v.tbl.InOrInsert(&k, fSYN, 0, p, &c); r != Created {
			t.Fatal(i, r)
		}
	}
	// Service A at its cap, its oldest is 17th: refused.
	k := spoofKey(protoTCP, 4, 80)
	if r := v.tbl.InOrInsert(&k, fSYN, 0, p, &c); r != Full {
		t.Fatal(r)
	}
	if st := v.tbl.Unconfirmed(); st.Refused != 1 || st.Evicted != 0 {
		t.Fatalf("%+v", st)
	}
	// One of B confirmed (second datagram, DR): A's oldest is now within reach.
	if r := v.tbl.In(&others[0], 0, sec, &c); r != Hit {
		t.Fatal(r)
	}
	if r := v.tbl.InOrInsert(&k, fSYN, sec, p, &c); r != Created {
		t.Fatal(r)
	}
	if st := v.tbl.Unconfirmed(); st.Evicted != 1 || st.Unconfirmed != 15+4 {
		t.Fatalf("%+v", st)
	}
	a0 := spoofKey(protoTCP, 0, 80)
	if r := v.tbl.In(&a0, fACK, sec, &c); r != Miss {
		t.Fatal(r)
	}
	for i := range others[1:] {
		if r := v.tbl.In(&others[1+i], 0, sec, &c); r != Hit {
			t.Fatalf("another service's entry %d: %v", i, r)
		}
	}
	// Another service still gets its entries while A is at its cap.
	for i := range 4 {
		k := spoofKey(protoTCP, 1000+i, 443)
		if r := v.tbl.InOrInsert(&k, fSYN, sec, p, &c); r != Created {
			t.Fatal(i, r)
		}
	}
	if st := v.tbl.Unconfirmed(); st.Evicted != 1 || st.Unconfirmed != 4+4 {
		t.Fatalf("%+v", st)
	}
	listLen(t, v.tbl)
	checkCounts(t, v.tbl, v.dests)
}

// TestUnconfTemplateGoesWithEviction: an unassured template whose only connection is
// evicted is dropped with it; an ASSURED one stays.
func TestUnconfTemplateGoesWithEviction(t *testing.T) {
	v, d := unconfEnv(t, 100, 2, 2, 1)
	var tpl, tpl2, c Conn
	tk := tcpKey("203.0.113.0", 0, vip, 443)
	if r := v.tbl.InsertTemplate(&tk, d, 8080, time.Hour, 0, &tpl); r != Hit {
		t.Fatal(r)
	}
	k := tcpKey("203.0.113.7", 1000, vip, 443)
	if r := v.tbl.Insert(&k, d, 8080, ipvs.DR, 0, tpl.Ref, fSYN, 0, &c); r != Hit {
		t.Fatal(r)
	}
	tk2 := tcpKey("203.0.114.0", 0, vip, 443)
	v.tbl.InsertTemplate(&tk2, d, 8080, time.Hour, 0, &tpl2)
	k2 := tcpKey("203.0.114.7", 1000, vip, 443)
	v.tbl.Insert(&k2, d, 8080, ipvs.DR, 0, tpl2.Ref, fSYN, 0, &c)
	// Two more unconfirmed connections evict both; the first template was never
	// assured, the second is made ASSURED by an ESTABLISHED connection of its own.
	k3 := tcpKey("203.0.114.8", 1000, vip, 443)
	v.tbl.Insert(&k3, d, 8080, ipvs.DR, 0, tpl2.Ref, fSYN, 0, &c)
	v.tbl.In(&k3, fACK, 0, &c) // confirmed, assures tpl2
	for i := range 2 {
		k := spoofKey(protoTCP, i, 80)
		if r := v.tbl.Insert(&k, d, 8080, ipvs.DR, 0, 0, fSYN, sec, &c); r != Hit {
			t.Fatal(r)
		}
	}
	st := v.tbl.Unconfirmed()
	if st.Evicted != 2 || st.EvictedTpl != 1 {
		t.Fatalf("%+v", st)
	}
	if v.tbl.Template(&tk, sec, &c) {
		t.Fatal("unassured template kept")
	}
	if !v.tbl.Template(&tk2, sec, &c) || c.NControl != 1 {
		t.Fatalf("assured template: %+v", c)
	}
	checkCounts(t, v.tbl, v.dests)
}

// TestUnconfSYNFlood: 20,000 spoofed SYNs into conn_max 20,000 (then 40,000 more)
// leave room for a real client's handshake, and a confirmed connection survives.
func TestUnconfSYNFlood(t *testing.T) {
	for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT} {
		t.Run(m.String(), func(t *testing.T) {
			v := newEnv(t, func(c *Config) { c.Max, c.Shards, c.UnconfirmedMax = 20000, 256, 0 })
			d := v.addDest(1, rsAddr, 8080, 1)
			v.tbl.initClock(0)
			p := &onePicker{d, m}
			var c Conn
			now := sec
			est := tcpKey("198.19.255.1", 40000, vip, 80)
			handshake := func(k *Key) {
				t.Helper()
				if r := v.tbl.InOrInsert(k, fSYN, now, p, &c); r != Created {
					t.Fatalf("real SYN: %v (%+v, len %d)", r, v.tbl.Unconfirmed(), v.tbl.Len())
				}
				if m == ipvs.NAT {
					v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, k.CAddr, k.CPort, fSYNACK, now, &c)
				}
				if r := v.tbl.In(k, fACK, now, &c); r != Hit || c.State != StateEstablished {
					t.Fatalf("real ACK: %v %v", r, c.State)
				}
			}
			handshake(&est)
			refused := 0
			for i := range 60000 {
				k := spoofKey(protoTCP, i, 80)
				if v.tbl.InOrInsert(&k, fSYN, now, p, &c) != Created {
					refused++
				}
				if i == 19999 || i == 59999 {
					rk := tcpKey("198.19.255.2", uint16(i), vip, 80)
					handshake(&rk)
				}
				if i%1000 == 0 {
					now += 10 * int64(time.Millisecond)
				}
			}
			st := v.tbl.Unconfirmed()
			total, _ := DefaultUnconfirmed(20000)
			// The flood is one service: its cap (a quarter) bounds it.
			if refused != 0 || st.Unconfirmed > total || v.tbl.Len() > 20000 || st.Evicted < 60000-5000 {
				t.Fatalf("refused %d, %+v, len %d", refused, st, v.tbl.Len())
			}
			if r := v.tbl.In(&est, fPSHACK, now, &c); r != Hit {
				t.Fatalf("established connection: %v", r)
			}
			listLen(t, v.tbl)
			checkCounts(t, v.tbl, v.dests)
		})
	}
}

// TestUnconfSettings: the caps are validated and resolved.
func TestUnconfSettings(t *testing.T) {
	v, _ := unconfEnv(t, 100, 0, 0, 1)
	if st := v.tbl.Unconfirmed(); st.Max != 50 || st.PerService != 25 {
		t.Fatalf("%+v", st)
	}
	for _, s := range []Settings{
		{Max: 100, UnconfirmedMax: 101},
		{Max: 100, UnconfirmedMax: 10, UnconfirmedPerService: 11},
		{Max: 100, UnconfirmedMax: -2},
		{Max: 100, UnconfirmedPerService: -1},
		{Max: 100, UnconfirmedMax: UnconfirmedOff, UnconfirmedPerService: 3},
	} {
		if err := v.tbl.Set(s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := v.tbl.Set(Settings{Max: 100, UnconfirmedMax: UnconfirmedOff}); err != nil {
		t.Fatal(err)
	}
	if st := v.tbl.Unconfirmed(); st.Max != 0 {
		t.Fatalf("off: %+v", st)
	}
	if err := v.tbl.Set(Settings{Max: 100, UnconfirmedMax: 8}); err != nil {
		t.Fatal(err)
	}
	if st := v.tbl.Unconfirmed(); st.Max != 8 || st.PerService != 8 {
		t.Fatalf("%+v", st)
	}
}

// TestAllocsEvict: a new connection that evicts allocates nothing.
func TestAllocsEvict(t *testing.T) {
	v, d := unconfEnv(t, 1000, 100, 100, 16)
	p := &onePicker{d, ipvs.DR}
	var c Conn
	i := 0
	var k Key // InOrInsert's k leaks to the Picker: the Director keeps it in its worker
	fn := func() {
		k = spoofKey(protoTCP, i, 80)
		i++
		if r := v.tbl.InOrInsert(&k, fSYN, sec, p, &c); r != Created && r != Full {
			t.Fatal(r)
		}
	}
	for range 5000 {
		fn()
	}
	if n := testing.AllocsPerRun(2000, fn); n != 0 {
		t.Fatalf("%v allocs", n)
	}
	if v.tbl.Unconfirmed().Evicted == 0 {
		t.Fatal("no eviction")
	}
}

// TestUnconfConcurrent: goroutines flood fresh addresses, confirm some, expire;
// the lists, counters and dest counts stay consistent (run with -race).
func TestUnconfConcurrent(t *testing.T) {
	v, d := unconfEnv(t, 4000, 1000, 600, 8)
	p := &onePicker{d, ipvs.DR}
	const workers, per = 4, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c Conn
			for i := range per {
				k := spoofKey(protoTCP, w*per+i, uint16(80+i%3))
				now := int64(i) * int64(time.Millisecond)
				if v.tbl.InOrInsert(&k, fSYN, now, p, &c) == Created && i%7 == 0 {
					v.tbl.In(&k, fACK, now, &c)
				}
				if i%500 == 0 && w == 0 {
					v.tbl.Expire(now, 1000)
				}
			}
		}()
	}
	wg.Wait()
	st := v.tbl.Unconfirmed()
	if st.Unconfirmed > 1000+workers || v.tbl.Len() > 4000 || st.Evicted == 0 {
		t.Fatalf("%+v len %d", st, v.tbl.Len())
	}
	listLen(t, v.tbl)
	checkCounts(t, v.tbl, v.dests)
	v.tbl.Flush()
	if n := listLen(t, v.tbl); n != 0 || v.tbl.Len() != 0 {
		t.Fatal(n, v.tbl.Len())
	}
}

// svcRecount checks every per-service unconfirmed counter against the entries on the
// shards' lists, by svcSlot of each entry's own service.
func svcRecount(t *testing.T, tbl *Table) {
	t.Helper()
	var want [svcSlots]int32
	for si := range tbl.shards {
		s := &tbl.shards[si]
		s.mu.Lock()
		for i := s.uhead; i != 0; i = s.at(i).unext {
			e := s.at(i)
			want[svcSlot(e.proto, &e.vaddr, e.vport)]++
		}
		s.mu.Unlock()
	}
	for slot := range want {
		if got := tbl.svcUnconf[slot].Load(); got != want[slot] {
			t.Fatalf("service slot %d: counter %d, lists %d", slot, got, want[slot])
		}
	}
}

// TestUnconfServiceCounters: InOrInsert and Insert compute a new connection's service
// slot once, for admitLocked and the list's counter; the counter must be that of the
// entry's own service, which confirming it (recomputed from the entry) decrements.
func TestUnconfServiceCounters(t *testing.T) {
	v, d := unconfEnv(t, 1000, 1000, 1000, 4)
	p := &onePicker{d, ipvs.DR}
	var c Conn
	var keys []Key
	for i := range 40 {
		proto, vport := uint8(protoTCP), uint16(80+i%3)
		if i%4 == 3 {
			proto, vport = protoUDP, 53
		}
		k := spoofKey(proto, i, vport)
		if i%2 == 0 {
			if r := v.tbl.InOrInsert(&k, fSYN, 0, p, &c); r != Created {
				t.Fatal(i, r)
			}
		} else if r := v.tbl.Insert(&k, d, d.Port(), ipvs.DR, 0, 0, fSYN, 0, &c); r != Hit {
			t.Fatal(i, r)
		}
		keys = append(keys, k)
	}
	if n := listLen(t, v.tbl); n != 40 {
		t.Fatalf("%d unconfirmed, want 40", n)
	}
	svcRecount(t, v.tbl)
	// Confirmed (TCP established, UDP's second datagram): every counter back to 0.
	for i := range keys {
		if r := v.tbl.In(&keys[i], fACK, sec, &c); r != Hit {
			t.Fatal(i, r)
		}
	}
	if n := listLen(t, v.tbl); n != 0 {
		t.Fatalf("%d unconfirmed, want 0", n)
	}
	svcRecount(t, v.tbl)
	checkCounts(t, v.tbl, v.dests)
}
