package conntrack

import (
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// A trace step: one packet of a flow and what must hold after it.
type step struct {
	op      string // "ins" (In, then Insert on a miss), "in", "out"
	at      int64  // seconds
	flags   uint8
	want    Result // result of In/Out ("ins": of the final call)
	state   State
	timeout int64  // seconds
	cnt     counts // the dest's counters after the packet
}

const (
	client = "198.51.100.7"
	vip    = "192.0.2.10"
	rsAddr = "10.0.0.5"
)

// runTrace plays steps on one TCP flow client:40000 -> vip:80 => rs:8080 with method m.
func runTrace(t *testing.T, v *env, d *sched.Dest, m ipvs.Method, steps []step) {
	t.Helper()
	k := tcpKey(client, 40000, vip, 80)
	for n, s := range steps {
		var c Conn
		now := s.at * sec
		var r Result
		switch s.op {
		case "ins":
			r = v.tbl.In(&k, s.flags, now, &c)
			if r == Miss {
				r = v.tbl.Insert(&k, d, 8080, m, 0, 0, s.flags, now, &c)
			}
		case "in":
			r = v.tbl.In(&k, s.flags, now, &c)
		case "out":
			src := raw(rsAddr)
			sport := uint16(8080)
			if m != ipvs.NAT {
				src, sport = raw(vip), 80
			}
			r = v.tbl.Out(protoTCP, false, src, sport, raw(client), 40000, s.flags, now, &c)
		}
		if r != s.want {
			t.Fatalf("packet %d (%s %#x): result %v, want %v", n+1, s.op, s.flags, r, s.want)
		}
		if r == Hit {
			if c.State != s.state || c.Timeout != time.Duration(s.timeout)*time.Second {
				t.Errorf("packet %d: state %v timeout %v, want %v %ds", n+1, c.State, c.Timeout, s.state, s.timeout)
			}
			if c.Expires != now+s.timeout*sec {
				t.Errorf("packet %d: expires %d, want %d", n+1, c.Expires, now+s.timeout*sec)
			}
			if c.DAddr != raw(rsAddr) || c.DPort != 8080 || c.Method != m {
				t.Errorf("packet %d: conn %+v", n+1, c)
			}
		}
		if got := countsOf(d); got != s.cnt {
			t.Errorf("packet %d: counters %+v, want %+v", n+1, got, s.cnt)
		}
	}
}

// TestTraceTCP plays the TCP traces of docs/ipvs-semantics.md §12.12.
func TestTraceTCP(t *testing.T) {
	act, inact := counts{1, 0, 0}, counts{0, 1, 0}
	tests := []struct {
		name   string
		method ipvs.Method
		mode   int
		steps  []step
	}{
		{"NAT", ipvs.NAT, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"out", 1, fSYNACK, Hit, StateSynRecv, 60, act},
			{"in", 2, fACK, Hit, StateEstablished, 900, act},
			{"in", 3, fPSHACK, Hit, StateEstablished, 900, act},
			{"in", 4, fFINACK, Hit, StateCloseWait, 60, inact},
			{"out", 5, fACK, Hit, StateCloseWait, 60, inact},
			{"out", 6, fFINACK, Hit, StateTimeWait, 120, inact},
			{"in", 7, fACK, Hit, StateTimeWait, 120, inact},
		}},
		{"NAT server closes first", ipvs.NAT, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"out", 1, fSYNACK, Hit, StateSynRecv, 60, act},
			{"in", 2, fACK, Hit, StateEstablished, 900, act},
			{"out", 3, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 4, fACK, Hit, StateFinWait, 120, inact},
			{"in", 5, fFINACK, Hit, StateTimeWait, 120, inact},
			{"out", 6, fACK, Hit, StateTimeWait, 120, inact},
		}},
		{"NAT server resets", ipvs.NAT, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"out", 1, fRSTACK, Hit, StateClose, 10, inact},
		}},
		{"DR reuse mode 1", ipvs.DR, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"in", 1, fACK, Hit, StateEstablished, 900, act},
			{"in", 2, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 3, fACK, Hit, StateFinWait, 120, inact},
			{"in", 4, fSYN, Hit, StateSynRecv, 60, act}, // same conn, same RS
			{"in", 5, fACK, Hit, StateEstablished, 900, act},
			{"in", 6, fRST, Hit, StateClose, 10, inact},
			{"in", 7, fNone, Hit, StateClose, 10, inact},
		}},
		{"TUN reuse mode 1", ipvs.TUN, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"in", 1, fACK, Hit, StateEstablished, 900, act},
			{"in", 2, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 3, fACK, Hit, StateFinWait, 120, inact},
			{"in", 4, fSYN, Hit, StateSynRecv, 60, act},
		}},
		{"DR reuse mode 2", ipvs.DR, 2, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"in", 1, fACK, Hit, StateEstablished, 900, act},
			{"in", 2, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 3, fACK, Hit, StateFinWait, 120, inact},
			// The FW conn is expired (still counted until Expire) and the SYN rescheduled.
			{"in", 4, fSYN, Miss, 0, 0, inact},
		}},
		{"DR reuse mode 3", ipvs.DR, 3, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"in", 1, fACK, Hit, StateEstablished, 900, act},
			{"in", 2, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 4, fSYN, Miss, 0, 0, inact},
			{"ins", 4, fSYN, Hit, StateSynRecv, 60, counts{1, 1, 0}},
		}},
		{"NAT FW not reused with mode 2 (saw output)", ipvs.NAT, 2, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"out", 1, fSYNACK, Hit, StateSynRecv, 60, act},
			{"in", 2, fACK, Hit, StateEstablished, 900, act},
			{"out", 3, fFINACK, Hit, StateFinWait, 120, inact},
			{"in", 4, fSYN, Hit, StateSynRecv, 60, act},
		}},
		{"DR output packet clears NOOUTPUT", ipvs.DR, 1, []step{
			{"ins", 0, fSYN, Hit, StateSynRecv, 60, act},
			{"in", 1, fACK, Hit, StateEstablished, 900, act},
			{"out", 2, fACK, Hit, StateEstablished, 900, act},
			// INPUT table now (not INPUT-ONLY): ES + fin -> CW.
			{"in", 3, fFINACK, Hit, StateCloseWait, 60, inact},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t, func(c *Config) { c.ConnReuseMode = tc.mode })
			d := v.addDest(1, rsAddr, 8080, 1)
			runTrace(t, v, d, tc.method, tc.steps)
			checkCounts(t, v.tbl, v.dests)
		})
	}
}

// TestNoOutputFlag checks the flags §1.2/§6.3 add at creation.
func TestNoOutputFlag(t *testing.T) {
	for _, m := range []ipvs.Method{ipvs.NAT, ipvs.Local, ipvs.TUN, ipvs.DR} {
		v := newEnv(t, nil)
		d := v.addDest(1, rsAddr, 8080, 1)
		k := tcpKey(client, 1, vip, 80)
		var c Conn
		v.tbl.Insert(&k, d, 8080, m, FlagTemplate|FlagAssured, 0, fACK, 0, &c)
		wantNoOut := m != ipvs.NAT
		if (c.Flags&FlagNoOutput != 0) != wantNoOut || c.Flags&(FlagTemplate|FlagAssured) != 0 {
			t.Errorf("%v: flags %#x", m, c.Flags)
		}
		// NONE + ack -> ES (sloppy creation path): active.
		if c.State != StateEstablished || c.Flags&FlagInactive != 0 || countsOf(d) != (counts{1, 0, 0}) {
			t.Errorf("%v: %v flags %#x counts %+v", m, c.State, c.Flags, countsOf(d))
		}
	}
	// A bypass connection has no dest, so neither INACTIVE nor NOOUTPUT.
	v := newEnv(t, nil)
	k := tcpKey(client, 1, vip, 80)
	var c Conn
	if r := v.tbl.Insert(&k, nil, 0, ipvs.Bypass, 0, 0, fSYN, 0, &c); r != Hit || c.HasDest || c.Flags != 0 || c.DAddr != ([16]byte{}) {
		t.Errorf("bypass: %v %+v", r, c)
	}
}

// TestReuseAndNodest plays docs/ipvs-semantics.md §12.13.
func TestReuseAndNodest(t *testing.T) {
	k := tcpKey(client, 40000, vip, 80)
	var c Conn

	t.Run("TW reused mode 1", func(t *testing.T) {
		v := newEnv(t, nil)
		d1 := v.addDest(1, rsAddr, 8080, 1)
		d2 := v.addDest(2, "10.0.0.6", 8080, 1)
		v.tbl.Insert(&k, d1, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
		v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40000, fSYNACK, 0, &c)
		v.tbl.In(&k, fACK, 1*sec, &c)
		v.tbl.In(&k, fFINACK, 2*sec, &c)
		v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40000, fFINACK, 3*sec, &c)
		if c.State != StateTimeWait {
			t.Fatalf("state %v", c.State)
		}
		old := c.Ref
		if r := v.tbl.In(&k, fSYN, 4*sec, &c); r != Miss {
			t.Fatalf("SYN on TW: %v", r)
		}
		// Old conn invisible at once but counted until the next Expire.
		if r := v.tbl.In(&k, fACK, 4*sec, &c); r != Miss {
			t.Fatalf("ACK after reschedule: %v", r)
		}
		if countsOf(d1) != (counts{0, 1, 0}) {
			t.Fatalf("old conn not counted: %+v", countsOf(d1))
		}
		if r := v.tbl.Insert(&k, d2, 8080, ipvs.NAT, 0, 0, fSYN, 4*sec, &c); r != Hit || c.Ref == old {
			t.Fatalf("insert: %v", r)
		}
		if v.tbl.Len() != 2 {
			t.Fatalf("len %d", v.tbl.Len())
		}
		if n := v.tbl.Expire(4*sec, 0); n != 1 {
			t.Fatalf("expired %d", n)
		}
		if countsOf(d1) != (counts{}) || countsOf(d2) != (counts{1, 0, 0}) || v.tbl.Len() != 1 {
			t.Fatalf("after expire: %+v %+v len %d", countsOf(d1), countsOf(d2), v.tbl.Len())
		}
		if r := v.tbl.In(&k, fACK, 5*sec, &c); r != Hit || c.Dest != 2 || c.State != StateEstablished {
			t.Fatalf("new conn: %v %+v", r, c)
		}
	})

	t.Run("CLOSE reused, mode 0 not", func(t *testing.T) {
		for _, mode := range []int{0, 1} {
			v := newEnv(t, func(c *Config) { c.ConnReuseMode = mode })
			d := v.addDest(1, rsAddr, 8080, 1)
			v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
			v.tbl.In(&k, fACK, 1*sec, &c)
			v.tbl.In(&k, fRST, 1*sec, &c) // ES + rst -> CL
			r := v.tbl.In(&k, fSYN, 2*sec, &c)
			if want := map[int]Result{0: Hit, 1: Miss}[mode]; r != want {
				t.Errorf("mode %d: %v, want %v", mode, r, want)
			}
		}
	})

	t.Run("persistent conn not expected", func(t *testing.T) {
		v := newEnv(t, nil)
		d := v.addDest(1, rsAddr, 8080, 1)
		tk := tcpKey("198.51.100.0", 0, vip, 80)
		var tpl Conn
		v.tbl.InsertTemplate(&tk, d, 8080, 300*time.Second, 0, &tpl)
		v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
		v.tbl.In(&k, fRST, 1*sec, &c) // SR + rst = SR for INPUT; make it CLOSE via OUT rst
		v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40000, fRST, 1*sec, &c)
		if c.State != StateClose || c.Control != tpl.Ref {
			t.Fatalf("state %v control %v", c.State, c.Control)
		}
		if r := v.tbl.In(&k, fSYN, 2*sec, &c); r != Hit || c.State != StateSynRecv || c.Dest != 1 {
			t.Fatalf("SYN on controlled CL conn: %v %v", r, c.State)
		}
	})

	t.Run("expire_nodest_conn weight 0", func(t *testing.T) {
		v := newEnv(t, func(c *Config) { c.ExpireNodestConn = true })
		d := v.addDest(1, rsAddr, 8080, 1)
		v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
		v.tbl.In(&k, fACK, 1*sec, &c)
		v.setWeight(d, 0)
		if r := v.tbl.In(&k, fACK, 2*sec, &c); r != Hit || c.State != StateEstablished {
			t.Fatalf("ACK on quiescent dest: %v", r)
		}
		if r := v.tbl.In(&k, fSYN, 3*sec, &c); r != Miss {
			t.Fatalf("SYN on quiescent dest with expire_nodest_conn: %v", r)
		}
		if countsOf(d) != (counts{1, 0, 0}) {
			t.Fatalf("counts %+v", countsOf(d))
		}
		v.tbl.Expire(3*sec, 0)
		if countsOf(d) != (counts{}) || v.tbl.Len() != 0 {
			t.Fatalf("after expire: %+v", countsOf(d))
		}
	})

	t.Run("weight 0 without expire_nodest_conn keeps conn", func(t *testing.T) {
		v := newEnv(t, nil)
		d := v.addDest(1, rsAddr, 8080, 1)
		v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
		v.tbl.In(&k, fACK, 1*sec, &c)
		v.setWeight(d, 0)
		if r := v.tbl.In(&k, fSYN, 2*sec, &c); r != Hit || c.State != StateEstablished {
			t.Fatalf("%v %v", r, c.State)
		}
	})

	t.Run("dest deleted, expire_nodest_conn 0", func(t *testing.T) {
		v := newEnv(t, nil)
		d := v.addDest(1, rsAddr, 8080, 1)
		v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
		v.tbl.In(&k, fACK, 1*sec, &c) // ES, expires 901
		v.delDest(d)
		for _, at := range []int64{2, 100, 900} {
			if r := v.tbl.In(&k, fACK, at*sec, &c); r != DropNoDest || c.Expires != 901*sec {
				t.Fatalf("at %d: %v expires %d", at, r, c.Expires)
			}
			if r := v.tbl.In(&k, fSYN, at*sec, &c); r != DropNoDest {
				t.Fatalf("SYN at %d: %v", at, r)
			}
		}
		v.tbl.Expire(900*sec, 0)
		if v.tbl.Len() != 1 || countsOf(d) != (counts{1, 0, 0}) {
			t.Fatalf("expired early")
		}
		if r := v.tbl.In(&k, fACK, 901*sec, &c); r != Miss {
			t.Fatalf("at expiry: %v", r)
		}
		v.tbl.Expire(901*sec, 0)
		if v.tbl.Len() != 0 || countsOf(d) != (counts{}) {
			t.Fatalf("not expired: len %d %+v", v.tbl.Len(), countsOf(d))
		}
	})

	t.Run("dest deleted, expire_nodest_conn 1", func(t *testing.T) {
		for _, flags := range []uint8{fSYN, fACK} {
			v := newEnv(t, func(c *Config) { c.ExpireNodestConn = true })
			d := v.addDest(1, rsAddr, 8080, 1)
			v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
			v.tbl.In(&k, fACK, 1*sec, &c)
			v.delDest(d)
			if r := v.tbl.In(&k, flags, 2*sec, &c); r != Miss {
				t.Fatalf("%#x: %v", flags, r)
			}
			if r := v.tbl.In(&k, fACK, 2*sec, &c); r != Miss {
				t.Fatalf("second packet: %v", r)
			}
			v.tbl.Expire(2*sec, 0)
			if v.tbl.Len() != 0 || countsOf(d) != (counts{}) {
				t.Fatalf("len %d %+v", v.tbl.Len(), countsOf(d))
			}
		}
		// UDP: rescheduled too.
		v := newEnv(t, func(c *Config) { c.ExpireNodestConn = true })
		d := v.addDest(1, rsAddr, 53, 1)
		uk := udpKey(client, 5353, vip, 53)
		v.tbl.Insert(&uk, d, 53, ipvs.NAT, 0, 0, 0, 0, &c)
		v.delDest(d)
		if r := v.tbl.In(&uk, 0, 1*sec, &c); r != Miss {
			t.Fatalf("udp: %v", r)
		}
	})

	t.Run("ExpireDest", func(t *testing.T) {
		v := newEnv(t, func(c *Config) { c.ExpireNodestConn = true })
		d1 := v.addDest(1, rsAddr, 8080, 1)
		d2 := v.addDest(2, "10.0.0.6", 8080, 1)
		var tpl, tpl2 Conn
		tk := tcpKey("198.51.100.0", 0, vip, 443)
		v.tbl.InsertTemplate(&tk, d1, 8080, 300*time.Second, 0, &tpl)
		tk2 := tcpKey("203.0.113.0", 0, vip, 443)
		v.tbl.InsertTemplate(&tk2, d2, 8080, 300*time.Second, 0, &tpl2)
		for p := range uint16(5) {
			kk := tcpKey(client, 1000+p, vip, 443)
			v.tbl.Insert(&kk, d1, 8080, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
			kk = tcpKey("203.0.113.9", 1000+p, vip, 443)
			v.tbl.Insert(&kk, d2, 8080, ipvs.NAT, 0, tpl2.Ref, fSYN, 0, &c)
		}
		v.tbl.ExpireDest(1, sec) // still available: nothing
		if v.tbl.Len() != 12 {
			t.Fatalf("len %d", v.tbl.Len())
		}
		v.delDest(d1)
		v.tbl.ExpireDest(1, sec)
		if v.tbl.Len() != 6 || countsOf(d1) != (counts{}) || countsOf(d2) != (counts{5, 0, 1}) {
			t.Fatalf("len %d %+v %+v", v.tbl.Len(), countsOf(d1), countsOf(d2))
		}
		checkCounts(t, v.tbl, v.dests)
	})
}

// TestTemplates plays docs/ipvs-semantics.md §12.14 and the template rules of §5.5/§6.4.
func TestTemplates(t *testing.T) {
	const vip443 = "192.0.2.10"
	tplKey := tcpKey("198.51.100.0", 0, vip443, 443)
	persist := 300 * time.Second

	t.Run("same RS within timeout", func(t *testing.T) {
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 8443, 1)
		var tpl, c Conn
		if v.tbl.Template(&tplKey, 0, &tpl) {
			t.Fatal("template in empty table")
		}
		if res := v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl); res != Hit {
			t.Fatal(res)
		}
		if tpl.Flags != FlagTemplate || tpl.State != StateNone || tpl.Timeout != persist ||
			tpl.Expires != 300*sec || tpl.DAddr != raw(rsAddr) || tpl.DPort != 8443 {
			t.Fatalf("template %+v", tpl)
		}
		k1 := tcpKey("198.51.100.77", 40000, vip443, 443)
		v.tbl.Insert(&k1, r, 8443, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
		if c.Control != tpl.Ref || countsOf(r) != (counts{1, 0, 1}) {
			t.Fatalf("conn %+v counts %+v", c, countsOf(r))
		}
		var got Conn
		if !v.tbl.Template(&tplKey, 100*sec, &got) || got.Ref != tpl.Ref || got.DAddr != raw(rsAddr) {
			t.Fatalf("template lookup %+v", got)
		}
		if got.Expires != 400*sec || got.NControl != 1 {
			t.Fatalf("template timer not restarted: %+v", got)
		}
		k2 := tcpKey("198.51.100.99", 50000, vip443, 443)
		v.tbl.Insert(&k2, r, 8443, ipvs.NAT, 0, got.Ref, fSYN, 100*sec, &c)
		v.tbl.Get(tpl.Ref, &got)
		if got.NControl != 2 || got.Expires != 400*sec {
			t.Fatalf("template %+v", got)
		}
		checkCounts(t, v.tbl, v.dests)
	})

	t.Run("ASSURED", func(t *testing.T) {
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 8443, 1)
		var tpl, c Conn
		v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl)
		k1 := tcpKey("198.51.100.77", 40000, vip443, 443)
		v.tbl.Insert(&k1, r, 8443, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
		v.tbl.Get(tpl.Ref, &tpl)
		if tpl.Flags&FlagAssured != 0 {
			t.Fatal("assured too early")
		}
		v.tbl.In(&k1, fACK, sec, &c)
		v.tbl.Get(tpl.Ref, &tpl)
		if tpl.Flags&FlagAssured == 0 {
			t.Fatal("ES did not assure the template")
		}
		// UDP: an output packet assures.
		utk := udpKey("198.51.100.0", 0, vip443, 53)
		var utpl Conn
		v.tbl.InsertTemplate(&utk, r, 53, persist, 0, &utpl)
		uk := udpKey("198.51.100.77", 5000, vip443, 53)
		v.tbl.Insert(&uk, r, 53, ipvs.NAT, 0, utpl.Ref, 0, 0, &c)
		v.tbl.In(&uk, 0, sec, &c)
		v.tbl.Get(utpl.Ref, &utpl)
		if utpl.Flags&FlagAssured != 0 {
			t.Fatal("UDP input assured")
		}
		if res := v.tbl.Out(protoUDP, false, raw(rsAddr), 53, raw("198.51.100.77"), 5000, 0, 2*sec, &c); res != Hit {
			t.Fatal(res)
		}
		v.tbl.Get(utpl.Ref, &utpl)
		if utpl.Flags&FlagAssured == 0 || c.State != StateUDP || c.Timeout != 300*time.Second {
			t.Fatalf("UDP out: %+v %+v", utpl, c)
		}
	})

	t.Run("neutralised when dest deleted or quiescent", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			quiescent bool
			change    func(v *env, d *sched.Dest)
			valid     bool
		}{
			{"deleted", false, func(v *env, d *sched.Dest) { v.delDest(d) }, false},
			{"weight 0", false, func(v *env, d *sched.Dest) { v.setWeight(d, 0) }, true},
			{"weight 0 expire_quiescent_template", true, func(v *env, d *sched.Dest) { v.setWeight(d, 0) }, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := newEnv(t, func(c *Config) { c.ExpireQuiescentTemplate = tc.quiescent })
				r := v.addDest(1, rsAddr, 8443, 1)
				var tpl, got Conn
				v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl)
				tc.change(v, r)
				if ok := v.tbl.Template(&tplKey, 10*sec, &got); ok != tc.valid {
					t.Fatalf("Template = %v, want %v", ok, tc.valid)
				}
				v.tbl.Get(tpl.Ref, &got)
				if tc.valid {
					if got.Key.VPort != 443 || got.Expires != 310*sec {
						t.Fatalf("%+v", got)
					}
					return
				}
				if got.Key.VPort != 0xffff || got.DPort != 0xffff || got.Expires != 300*sec {
					t.Fatalf("not neutralised / timer touched: %+v", got)
				}
				// A new template can be created beside it; both live until expiry.
				if res := v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 10*sec, &got); res != Hit {
					t.Fatal(res)
				}
				if v.tbl.Len() != 2 {
					t.Fatalf("len %d", v.tbl.Len())
				}
				v.tbl.Expire(300*sec, 0)
				if v.tbl.Len() != 1 {
					t.Fatalf("neutralised template not expired: len %d", v.tbl.Len())
				}
			})
		}
	})

	t.Run("kept alive while controlling", func(t *testing.T) {
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 8443, 1)
		var tpl, c, got Conn
		v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl)
		k1 := tcpKey("198.51.100.77", 40000, vip443, 443)
		v.tbl.Insert(&k1, r, 8443, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
		v.tbl.In(&k1, fACK, 1*sec, &c) // ES until 901
		for now := int64(0); now <= 2000; now += 10 {
			v.tbl.Expire(now*sec, 0)
			alive := v.tbl.Get(tpl.Ref, &got)
			switch {
			case now < 300:
				if !alive || got.Expires != 300*sec {
					t.Fatalf("t=%d: %v %+v", now, alive, got)
				}
			case now < 960:
				// Re-armed every 60 s with a 60 s timeout: 360, 420, ..., 960.
				want := (300 + 60*((now-300)/60+1)) * sec
				if !alive || got.Expires != want || got.Timeout != time.Minute {
					t.Fatalf("t=%d: %v expires %d want %d (timeout %v)", now, alive, got.Expires/sec, want/sec, got.Timeout)
				}
			default:
				if alive {
					t.Fatalf("t=%d: template outlived its conn: %+v", now, got)
				}
			}
			if now >= 910 && now < 960 && v.tbl.Len() != 1 {
				t.Fatalf("t=%d: len %d", now, v.tbl.Len())
			}
			if now >= 960 && v.tbl.Len() != 0 {
				t.Fatalf("t=%d: len %d", now, v.tbl.Len())
			}
		}
		if countsOf(r) != (counts{}) {
			t.Fatalf("counts %+v", countsOf(r))
		}
	})

	t.Run("template found after expiry while controlling", func(t *testing.T) {
		// Lookups do not depend on Expire having run: a template past its time that
		// controls a conn is re-armed (60 s) and valid.
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 8443, 1)
		var tpl, c, got Conn
		v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl)
		k1 := tcpKey("198.51.100.77", 40000, vip443, 443)
		v.tbl.Insert(&k1, r, 8443, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
		v.tbl.In(&k1, fACK, 1*sec, &c)
		if !v.tbl.Template(&tplKey, 400*sec, &got) || got.Timeout != time.Minute || got.Expires != 460*sec {
			t.Fatalf("%+v", got)
		}
		// A template that controls nobody is dead at its expiry time.
		tk2 := tcpKey("203.0.113.0", 0, vip443, 443)
		v.tbl.InsertTemplate(&tk2, r, 8443, persist, 0, &got)
		if v.tbl.Template(&tk2, 300*sec, &got) {
			t.Fatal("expired template found")
		}
	})

	t.Run("forced delete drops unassured template", func(t *testing.T) {
		for _, assured := range []bool{false, true} {
			v := newEnv(t, func(c *Config) { c.Timeouts = DefaultTimeouts() })
			r := v.addDest(1, rsAddr, 8443, 1)
			var tpl, c Conn
			v.tbl.InsertTemplate(&tplKey, r, 8443, persist, 0, &tpl)
			k1 := tcpKey("198.51.100.77", 40000, vip443, 443)
			v.tbl.Insert(&k1, r, 8443, ipvs.NAT, 0, tpl.Ref, fSYN, 0, &c)
			if assured {
				v.tbl.In(&k1, fACK, 0, &c)
			}
			// A zero CLOSE timeout makes the RST'd conn expire with timeout 0, as a
			// forced delete does in the kernel.
			to := DefaultTimeouts()
			to.TCP[StateClose] = 0
			v.tbl.SetTimeouts(to)
			v.tbl.Out(protoTCP, false, raw(rsAddr), 8443, raw("198.51.100.77"), 40000, fRST, sec, &c)
			if c.State != StateClose || c.Timeout != 0 {
				t.Fatalf("%+v", c)
			}
			v.tbl.Expire(sec, 0)
			want := 1
			if !assured {
				want = 0
			}
			if v.tbl.Len() != want {
				t.Errorf("assured=%v: len %d, want %d", assured, v.tbl.Len(), want)
			}
		}
	})

	t.Run("fwmark template compares 32-bit mark", func(t *testing.T) {
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 0, 1)
		fk := Key{Proto: 0, CAddr: raw("198.51.100.0"), VAddr: [16]byte{0, 0, 0, 7}}
		var tpl Conn
		v.tbl.InsertTemplate(&fk, r, 0, persist, 0, &tpl)
		look := fk
		look.VAddr[8] = 0xaa // bytes past the mark are ignored
		if !v.tbl.Template(&look, sec, &tpl) {
			t.Fatal("fwmark template not found")
		}
		look.VAddr[3] = 8
		if v.tbl.Template(&look, sec, &tpl) {
			t.Fatal("other mark matched")
		}
	})

	t.Run("one-packet conns", func(t *testing.T) {
		v := newEnv(t, nil)
		r := v.addDest(1, rsAddr, 53, 1)
		utk := udpKey("198.51.100.0", 0, vip443, 53)
		var tpl, c Conn
		v.tbl.InsertTemplate(&utk, r, 53, persist, 0, &tpl)
		uk := udpKey("198.51.100.77", 5000, vip443, 53)
		if res := v.tbl.Insert(&uk, r, 53, ipvs.NAT, FlagOnePacket, tpl.Ref, 0, 50*sec, &c); res != Hit ||
			c.Ref != 0 || c.Flags&FlagOnePacket == 0 || c.State != StateUDP || c.Control != tpl.Ref {
			t.Fatalf("%v %+v", res, c)
		}
		if v.tbl.Len() != 1 || countsOf(r) != (counts{0, 0, 1}) {
			t.Fatalf("len %d counts %+v", v.tbl.Len(), countsOf(r))
		}
		v.tbl.Get(tpl.Ref, &tpl)
		if tpl.Expires != 350*sec || tpl.NControl != 0 {
			t.Fatalf("template %+v", tpl)
		}
		if res := v.tbl.In(&uk, 0, 51*sec, &c); res != Miss {
			t.Fatalf("ops conn stored: %v", res)
		}
		// ONE_PACKET is dropped for TCP (§6.3).
		k := tcpKey(client, 1, vip, 80)
		v.tbl.Insert(&k, r, 80, ipvs.NAT, FlagOnePacket, 0, fSYN, 0, &c)
		if c.Ref == 0 || c.Flags&FlagOnePacket != 0 {
			t.Fatalf("tcp ops: %+v", c)
		}
	})
}

// TestNoCPort checks the §6.2 NO_CPORT rule and the cport-0 retry.
func TestNoCPort(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	k0 := tcpKey(client, 0, vip, 80)
	if res := v.tbl.Insert(&k0, d, 8080, ipvs.NAT, FlagNoCPort, 0, fSYN, 0, &c); res != Hit || c.Flags&FlagNoCPort == 0 {
		t.Fatal(res)
	}
	k := tcpKey(client, 40000, vip, 80)
	if res := v.tbl.In(&k, fACK, sec, &c); res != Hit || c.Key.CPort != 0 || c.State != StateEstablished {
		t.Fatalf("retry with cport 0: %v %+v", res, c)
	}
	// A full entry wins over the NO_CPORT one.
	v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, sec, &c)
	if res := v.tbl.In(&k, fACK, 2*sec, &c); res != Hit || c.Key.CPort != 40000 {
		t.Fatalf("%v %+v", res, c)
	}
	// A cport-0 lookup does not match a non-NO_CPORT entry with cport 0.
	v2 := newEnv(t, nil)
	d2 := v2.addDest(1, rsAddr, 8080, 1)
	v2.tbl.Insert(&k0, d2, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
	if res := v2.tbl.In(&k0, fACK, sec, &c); res != Miss {
		t.Fatalf("cport 0 matched a normal entry: %v", res)
	}
}

// TestOutMatch checks the §6.2 out-lookup: MASQ matches the real server, others the VIP.
func TestOutMatch(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, rsAddr, 8080, 1)
	var c Conn
	k := tcpKey(client, 40000, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
	cases := []struct {
		src   string
		sport uint16
		want  Result
	}{
		{rsAddr, 8080, Hit},
		{rsAddr, 80, Miss},
		{vip, 80, Miss},
		{"10.0.0.6", 8080, Miss},
	}
	for _, tc := range cases {
		if res := v.tbl.Out(protoTCP, false, raw(tc.src), tc.sport, raw(client), 40000, fSYNACK, sec, &c); res != tc.want {
			t.Errorf("NAT reply from %s:%d: %v, want %v", tc.src, tc.sport, res, tc.want)
		}
	}
	if res := v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40001, fACK, sec, &c); res != Miss {
		t.Errorf("wrong client port matched")
	}
	k2 := tcpKey(client, 40002, vip, 80)
	v.tbl.Insert(&k2, d, 8080, ipvs.DR, 0, 0, fSYN, 0, &c)
	if res := v.tbl.Out(protoTCP, false, raw(vip), 80, raw(client), 40002, fSYNACK, sec, &c); res != Hit || c.Flags&FlagNoOutput != 0 {
		t.Errorf("DR reply via VIP: %v %+v", res, c)
	}
	if res := v.tbl.Out(protoTCP, false, raw(rsAddr), 8080, raw(client), 40002, fACK, sec, &c); res != Miss {
		t.Errorf("DR reply via RS address matched")
	}
	// IPv6.
	d6 := v.addDest(2, "2001:db8::5", 8080, 1)
	k6 := tcpKey("2001:db8:1::7", 40000, "2001:db8:2::10", 80)
	v.tbl.Insert(&k6, d6, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
	if c.DAddr != raw("2001:db8::5") {
		t.Errorf("v6 daddr %x", c.DAddr)
	}
	if res := v.tbl.Out(protoTCP, true, raw("2001:db8::5"), 8080, raw("2001:db8:1::7"), 40000, fSYNACK, sec, &c); res != Hit {
		t.Errorf("v6 out: %v", res)
	}
	if res := v.tbl.In(&k6, fACK, sec, &c); res != Hit || c.State != StateEstablished {
		t.Errorf("v6 in: %v", res)
	}
}

// TestLookupNoSideEffects: Lookup and LookupOut (ICMP errors) find connections like In
// and Out but change neither state nor timer.
func TestLookupNoSideEffects(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, rsAddr, 8080, 1)
	var c, got Conn
	k := tcpKey(client, 40000, vip, 80)
	v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, 0, fSYN, 0, &c)
	if !v.tbl.Lookup(&k, 10*sec, &got) || got.State != StateSynRecv || got.Expires != 60*sec {
		t.Fatalf("Lookup: %+v", got)
	}
	if !v.tbl.LookupOut(protoTCP, false, raw(rsAddr), 8080, raw(client), 40000, 10*sec, &got) ||
		got.Ref != c.Ref || got.Flags != c.Flags || got.Expires != 60*sec {
		t.Fatalf("LookupOut: %+v", got)
	}
	if v.tbl.LookupOut(protoTCP, false, raw(vip), 80, raw(client), 40000, 10*sec, &got) {
		t.Fatal("LookupOut matched the VIP for a NAT conn")
	}
	if v.tbl.Lookup(&k, 60*sec, &got) {
		t.Fatal("Lookup found an expired conn")
	}
	if n := testing.AllocsPerRun(100, func() { v.tbl.Lookup(&k, 10*sec, &got) }); n != 0 {
		t.Fatalf("Lookup allocates %v", n)
	}
}
