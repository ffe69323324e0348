package conntrack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

func remoteOf(k Key, daddr string, dport uint16, flags Flags, st State, timeout time.Duration) *Remote {
	return &Remote{Key: k, DAddr: raw(daddr), DPort: dport, Method: ipvs.DR, Flags: flags, State: st, Timeout: timeout}
}

// walkAll collects every entry and its metadata with Walk, max entries per call.
func walkAll(t *testing.T, tbl *Table, max int, now int64) ([]Conn, []SyncMeta) {
	t.Helper()
	var cs []Conn
	var ms []SyncMeta
	cur := uint64(0)
	for n := 0; ; n++ {
		if n > 1<<20 {
			t.Fatal("Walk never reached the end")
		}
		next, done := tbl.Walk(cur, max, now, func(c *Conn, m *SyncMeta) bool {
			cs, ms = append(cs, *c), append(ms, *m)
			return false
		})
		if done {
			return cs, ms
		}
		if next <= cur {
			t.Fatalf("cursor went from %#x to %#x", cur, next)
		}
		cur = next
	}
}

func TestUpsertCreateUpdate(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 80, 1)
	k := tcpKey("198.18.0.1", 1000, "198.18.0.100", 80)
	now := 10 * sec
	if !v.tbl.Upsert(remoteOf(k, "198.18.1.1", 80, FlagNoOutput, StateEstablished, 900*time.Second), d, 3, now) {
		t.Fatal("Upsert refused a new entry")
	}
	if got := countsOf(d); got != (counts{act: 1}) {
		t.Fatalf("counters %+v after an active record, want 1 active", got)
	}
	var c Conn
	if !v.tbl.Lookup(&k, now, &c) || c.State != StateEstablished || c.Timeout != 900*time.Second ||
		c.Expires != now+900*sec || !c.HasDest || c.Dest != 1 || c.DPort != 80 || c.Method != ipvs.DR ||
		c.Flags != FlagNoOutput || c.Sync.Origin != 3 {
		t.Fatalf("entry %+v", c)
	}
	// An inactive record for the same server moves the counters and refreshes the timer.
	now += 5 * sec
	v.tbl.Upsert(remoteOf(k, "198.18.1.1", 80, FlagNoOutput|FlagInactive, StateFinWait, 0), d, 4, now)
	if got := countsOf(d); got != (counts{inact: 1}) {
		t.Fatalf("counters %+v after an inactive record, want 1 inactive", got)
	}
	if !v.tbl.Lookup(&k, now, &c) || c.State != StateFinWait || c.Timeout != 120*time.Second ||
		c.Expires != now+120*sec || c.Sync.Origin != 4 {
		t.Fatalf("entry after update %+v (want FIN_WAIT, the state's 120 s, origin 4)", c)
	}
	st := v.tbl.SyncStats()
	if st.Created != 1 || st.Updated != 1 || v.tbl.Len() != 1 {
		t.Fatalf("stats %+v len %d", st, v.tbl.Len())
	}
	checkCounts(t, v.tbl, v.dests)
	// It expires on the record's timer and unbinds.
	v.tbl.Expire(now+121*sec, 1<<20)
	if v.tbl.Len() != 0 || countsOf(d) != (counts{}) {
		t.Fatalf("after expiry: len %d counters %+v", v.tbl.Len(), countsOf(d))
	}
}

func TestUpsertReplaceAndIgnore(t *testing.T) {
	v := newEnv(t, nil)
	d1 := v.addDest(1, "198.18.1.1", 80, 1)
	d2 := v.addDest(2, "198.18.1.2", 80, 1)
	k := tcpKey("198.18.0.1", 1000, "198.18.0.100", 80)
	now := 10 * sec
	v.tbl.Upsert(remoteOf(k, "198.18.1.1", 80, FlagNoOutput, StateEstablished, 0), d1, 1, now)
	// An inactive record naming another server is a stale expiry message: ignored.
	v.tbl.Upsert(remoteOf(k, "198.18.1.2", 80, FlagNoOutput|FlagInactive, StateFinWait, 0), d2, 1, now+sec)
	var c Conn
	if !v.tbl.Lookup(&k, now+sec, &c) || c.Dest != 1 || c.State != StateEstablished {
		t.Fatalf("the inactive record changed the entry: %+v", c)
	}
	// An active one replaces it.
	v.tbl.Upsert(remoteOf(k, "198.18.1.2", 80, FlagNoOutput, StateEstablished, 0), d2, 2, now+2*sec)
	if !v.tbl.Lookup(&k, now+2*sec, &c) || c.Dest != 2 || c.Sync.Origin != 2 {
		t.Fatalf("the active record did not replace the entry: %+v", c)
	}
	v.tbl.Expire(now+2*sec, 1<<20)
	if v.tbl.Len() != 1 || countsOf(d1) != (counts{}) || countsOf(d2) != (counts{act: 1}) {
		t.Fatalf("len %d, d1 %+v, d2 %+v", v.tbl.Len(), countsOf(d1), countsOf(d2))
	}
	st := v.tbl.SyncStats()
	if st.IgnoredInactive != 1 || st.Replaced != 1 || st.Created != 2 {
		t.Fatalf("stats %+v", st)
	}
	checkCounts(t, v.tbl, v.dests)
}

func TestUpsertUnbound(t *testing.T) {
	v := newEnv(t, nil)
	k := tcpKey("198.18.0.1", 1000, "198.18.0.100", 80)
	k2 := tcpKey("198.18.0.2", 1000, "198.18.0.100", 80)
	now := 10 * sec
	v.tbl.Upsert(remoteOf(k, "198.18.1.9", 8080, FlagNoOutput|FlagInactive, StateFinWait, 0), nil, 1, now)
	v.tbl.Upsert(remoteOf(k2, "198.18.1.9", 8080, FlagNoOutput, StateEstablished, 0), nil, 1, now)
	if st := v.tbl.SyncStats(); st.Unbound != 2 {
		t.Fatalf("unbound %d, want 2", st.Unbound)
	}
	cs, _ := walkAll(t, v.tbl, 10, now)
	if len(cs) != 2 || cs[0].DAddr != raw("198.18.1.9") || cs[0].DPort != 8080 || cs[0].HasDest {
		t.Fatalf("walk of unbound entries: %+v", cs)
	}
	// A dest on another port binds nothing; the right one binds both.
	other := v.addDest(2, "198.18.1.9", 80, 1)
	if n := v.tbl.BindUnbound(raw("198.18.0.100"), 80, protoTCP, other); n != 0 {
		t.Fatalf("bound %d to the wrong port", n)
	}
	d := v.addDest(1, "198.18.1.9", 8080, 1)
	if n := v.tbl.BindUnbound(raw("198.18.0.100"), 80, protoTCP, d); n != 2 {
		t.Fatalf("bound %d, want 2", n)
	}
	if got := countsOf(d); got != (counts{act: 1, inact: 1}) {
		t.Fatalf("counters %+v after binding", got)
	}
	if st := v.tbl.SyncStats(); st.Unbound != 0 || st.Bound != 2 {
		t.Fatalf("stats %+v", st)
	}
	checkCounts(t, v.tbl, v.dests)

	// A local packet for an unbound connection schedules a new one in its place.
	k3 := tcpKey("198.18.0.3", 1000, "198.18.0.100", 80)
	v.tbl.Upsert(remoteOf(k3, "198.18.1.77", 80, FlagNoOutput, StateEstablished, 0), nil, 1, now)
	var c Conn
	if r := v.tbl.In(&k3, fACK, now+sec, &c); r != Miss {
		t.Fatalf("In on an unbound entry: %v, want Miss", r)
	}
	if r := v.tbl.Insert(&k3, d, 8080, ipvs.DR, 0, 0, fACK, now+sec, &c); r != Hit {
		t.Fatalf("Insert after the miss: %v", r)
	}
	v.tbl.Expire(now+sec, 1<<20)
	if st := v.tbl.SyncStats(); st.Unbound != 0 || st.Rescheduled != 1 || v.tbl.Len() != 3 {
		t.Fatalf("stats %+v len %d", st, v.tbl.Len())
	}
	checkCounts(t, v.tbl, v.dests)
}

func TestUpsertConnMax(t *testing.T) {
	v := newEnv(t, func(c *Config) { c.Max = 4 })
	d := v.addDest(1, "198.18.1.1", 80, 1)
	now := 10 * sec
	for i := range 4 {
		if !v.tbl.Upsert(remoteOf(tcpKey("198.18.0.1", uint16(1000+i), "198.18.0.100", 80), "198.18.1.1", 80, 0, StateEstablished, 0), d, 1, now) {
			t.Fatalf("record %d refused below conn_max", i)
		}
	}
	if v.tbl.Upsert(remoteOf(tcpKey("198.18.0.1", 2000, "198.18.0.100", 80), "198.18.1.1", 80, 0, StateEstablished, 0), d, 1, now) {
		t.Fatal("a record was accepted at conn_max")
	}
	// Updates of existing entries still pass at conn_max.
	if !v.tbl.Upsert(remoteOf(tcpKey("198.18.0.1", 1000, "198.18.0.100", 80), "198.18.1.1", 80, FlagInactive, StateTimeWait, 0), d, 1, now) {
		t.Fatal("an update was refused at conn_max")
	}
	if st := v.tbl.SyncStats(); st.Refused != 1 || v.tbl.Len() != 4 {
		t.Fatalf("stats %+v len %d", st, v.tbl.Len())
	}
	if v.tbl.Upsert(remoteOf(tcpKey("198.18.0.1", 1000, "198.18.0.100", 80), "198.18.1.1", 80, 0, StateEstablished, 0), d, 0, now) {
		t.Fatal("origin 0 was accepted")
	}
	checkCounts(t, v.tbl, v.dests)
}

func TestUpsertTemplate(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 0, 1)
	tk := Key{Proto: protoTCP, CAddr: raw("198.18.0.0"), VAddr: raw("198.18.0.100"), VPort: 80}
	now := 10 * sec
	origin := func() uint8 {
		_, ms := walkAll(t, v.tbl, 10, now)
		if len(ms) != 1 {
			t.Fatalf("%d entries", len(ms))
		}
		return ms[0].Origin
	}
	v.tbl.Upsert(&Remote{Key: tk, DAddr: raw("198.18.1.1"), Flags: FlagTemplate, Timeout: 300 * time.Second}, d, 1, now)
	if o := origin(); o != 1 {
		t.Fatalf("origin %d after the record, want 1", o)
	}
	// The first local use of a received template adopts it.
	var c Conn
	if !v.tbl.Template(&tk, now, &c) || c.Dest != 1 || c.Timeout != 300*time.Second || c.Flags&FlagAssured != 0 ||
		!c.Sync.Adopted || c.Sync.Origin != 0 || origin() != 0 {
		t.Fatalf("template %+v", c)
	}
	v.tbl.Upsert(&Remote{Key: tk, DAddr: raw("198.18.1.1"), Flags: FlagTemplate | FlagAssured}, d, 2, now)
	if o := origin(); o != 2 {
		t.Fatalf("origin %d after a second record, want 2", o)
	}
	if !v.tbl.Template(&tk, now, &c) || c.Flags&FlagAssured == 0 || c.Timeout != 3*time.Minute || !c.Sync.Adopted {
		t.Fatalf("template after an ASSURED v0 record %+v", c)
	}
	if !v.tbl.Template(&tk, now, &c) || c.Sync.Adopted || v.tbl.SyncStats().Adopted != 2 {
		t.Fatalf("a template adopted twice: %+v, stats %+v", c.Sync, v.tbl.SyncStats())
	}
	if got := countsOf(d); got != (counts{pers: 1}) {
		t.Fatalf("counters %+v", got)
	}
	checkCounts(t, v.tbl, v.dests)
}

func TestAdoptionAndSyncRules(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 80, 1)
	rules := ipvssync.DefaultRules()
	v.tbl.SetSyncRules(&rules)
	now := 10 * sec
	// A received entry is adopted by the first local packet.
	k := tcpKey("198.18.0.1", 1000, "198.18.0.100", 80)
	v.tbl.Upsert(remoteOf(k, "198.18.1.1", 80, 0, StateEstablished, 0), d, 7, now)
	var c Conn
	if r := v.tbl.In(&k, fACK, now+sec, &c); r != Hit || !c.Sync.Adopted || c.Sync.Origin != 0 {
		t.Fatalf("first local packet: %v %+v", r, c.Sync)
	}
	if r := v.tbl.In(&k, fACK, now+2*sec, &c); r != Hit || c.Sync.Adopted {
		t.Fatalf("second local packet adopted again: %+v", c.Sync)
	}
	_, ms := walkAll(t, v.tbl, 1, now+2*sec)
	if len(ms) != 1 || ms[0].Origin != 0 || ms[0].LastActive != now+2*sec {
		t.Fatalf("meta %+v", ms)
	}
	if st := v.tbl.SyncStats(); st.Adopted != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A local connection is sent at its third packet (ESTABLISHED) and every 50th
	// after, and at once when it leaves ESTABLISHED.
	k2 := tcpKey("198.18.0.2", 1000, "198.18.0.100", 80)
	if r := v.tbl.Insert(&k2, d, 80, ipvs.DR, 0, 0, fSYN, now, &c); r != Hit || c.Sync.Send || c.Sync.Pkts != 1 {
		t.Fatalf("SYN: %v %+v", r, c.Sync)
	}
	var sent []uint32
	for p := uint32(2); p <= 104; p++ {
		if v.tbl.In(&k2, fACK, now, &c) != Hit {
			t.Fatal("miss")
		}
		if c.Sync.Send {
			sent = append(sent, c.Sync.Pkts)
		}
	}
	if len(sent) != 3 || sent[0] != 3 || sent[1] != 53 || sent[2] != 103 {
		t.Fatalf("sent at packets %v, want [3 53 103]", sent)
	}
	if v.tbl.In(&k2, fFINACK, now, &c) != Hit || c.State != StateFinWait || !c.Sync.Send {
		t.Fatalf("FIN: %+v", c)
	}
	_, ms = walkAll(t, v.tbl, 100, now)
	if len(ms) != 2 {
		t.Fatalf("walk: %d entries", len(ms))
	}
}

func TestWalkCursor(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 80, 1)
	now := 10 * sec
	var c Conn
	// Established (confirmed) connections: one still unconfirmed has no room for a
	// last send (sync.go).
	open := func(k Key) {
		v.tbl.Insert(&k, d, 80, ipvs.DR, 0, 0, fSYN, now, &c)
		if v.tbl.In(&k, fACK, now, &c) != Hit || c.State != StateEstablished {
			t.Fatalf("%+v not established", k)
		}
	}
	for i := range 300 {
		open(tcpKey("198.18.0.1", uint16(1000+i), "198.18.0.100", 80))
	}
	// A pass in steps of 7, inserting 10 entries and removing one between steps,
	// visits no entry twice and every entry that lived through the pass.
	seen := map[Key]int{}
	cur, added := uint64(0), 0
	for steps := 0; ; steps++ {
		if steps > 10000 {
			t.Fatal("no end")
		}
		next, done := v.tbl.Walk(cur, 7, now, func(c *Conn, m *SyncMeta) bool {
			seen[c.Key]++
			return c.Key.CPort%2 == 0
		})
		if done {
			break
		}
		cur = next
		for j := 0; j < 10 && added < 200; j++ {
			open(tcpKey("198.18.0.2", uint16(1000+added), "198.18.0.100", 80))
			added++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%v visited %d times", k, n)
		}
	}
	for i := range 300 {
		if k := tcpKey("198.18.0.1", uint16(1000+i), "198.18.0.100", 80); seen[k] != 1 {
			t.Fatalf("%v not visited", k)
		}
	}
	// The sent ones have LastSync; limits of 0 return at once.
	_, ms := walkAll(t, v.tbl, 50, now+sec)
	cs, _ := walkAll(t, v.tbl, 50, now+sec)
	for i := range ms {
		sent := seen[cs[i].Key] == 1 && cs[i].Key.CPort%2 == 0
		if (ms[i].LastSync == now) != sent {
			t.Fatalf("%+v: LastSync %d, sent %v", cs[i].Key, ms[i].LastSync, sent)
		}
	}
	if next, done := v.tbl.Walk(5, 0, now, func(*Conn, *SyncMeta) bool { return false }); next != 5 || done {
		t.Fatalf("max 0: %#x %v", next, done)
	}
}

// BenchmarkUpsert is the receiver's cost per record: new entries (each a fresh
// connection, the table recycled every 4,096) and updates of one entry.
func BenchmarkUpsert(b *testing.B) {
	tbl, err := New(DefaultConfig(1 << 16))
	if err != nil {
		b.Fatal(err)
	}
	d := sched.NewDest(1, netip.MustParseAddr("198.18.1.1"), 80, 1, 0, 0)
	r := &Remote{Key: tcpKey("198.19.0.1", 1000, "198.18.0.100", 80), DAddr: raw("198.18.1.1"), DPort: 80, Method: ipvs.DR,
		Flags: FlagNoOutput, State: StateEstablished, Timeout: 900 * time.Second}
	b.Run("create", func(b *testing.B) {
		b.ReportAllocs()
		now := 10 * sec
		for i := range b.N {
			if i%4096 == 0 {
				b.StopTimer()
				tbl.Flush()
				b.StartTimer()
			}
			r.Key.CAddr[2], r.Key.CAddr[3], r.Key.CPort = byte(i>>16), byte(i>>8), uint16(i)
			if !tbl.Upsert(r, d, 1, now) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		b.ReportAllocs()
		now := 10 * sec
		for range b.N {
			now++
			if !tbl.Upsert(r, d, 1, now) {
				b.Fatal("refused")
			}
		}
	})
}

// TestRebind checks Rebind: it asks the resolver about each unbound entry, with the
// entry's own key (the packet's port for a port-0 service, the mark for a fwmark
// template) and the server its record named, binds those it resolves, and leaves the
// others unbound.
func TestRebind(t *testing.T) {
	v := newEnv(t, nil)
	now := 10 * sec
	conns := []Key{tcpKey("198.18.0.1", 1000, "198.18.0.100", 443), tcpKey("198.18.0.2", 1000, "198.18.0.100", 8443)}
	for _, k := range conns {
		v.tbl.Upsert(remoteOf(k, "198.18.1.9", 0, FlagNoOutput, StateEstablished, 0), nil, 1, now)
	}
	tpl := Key{Proto: 0, CAddr: raw("198.18.0.0"), VAddr: [16]byte{0, 0, 0, 7}}
	v.tbl.Upsert(&Remote{Key: tpl, DAddr: raw("198.18.1.9"), Flags: FlagTemplate}, nil, 1, now)
	lost := tcpKey("198.18.0.3", 1000, "198.18.0.100", 443)
	v.tbl.Upsert(remoteOf(lost, "198.18.1.66", 0, FlagNoOutput, StateEstablished, 0), nil, 1, now)
	if st := v.tbl.SyncStats(); st.Unbound != 4 {
		t.Fatalf("unbound %d, want 4", st.Unbound)
	}
	d := v.addDest(1, "198.18.1.9", 0, 1)
	if n := v.tbl.Rebind(func(*Key, [16]byte, uint16) *sched.Dest { return nil }); n != 0 {
		t.Fatalf("bound %d entries the resolver did not resolve", n)
	}
	var asked []Key
	n := v.tbl.Rebind(func(k *Key, daddr [16]byte, dport uint16) *sched.Dest {
		asked = append(asked, *k)
		if daddr == d.RawAddr() && dport == d.Port() {
			return d
		}
		return nil
	})
	if n != 3 || len(asked) != 4 {
		t.Fatalf("bound %d (want 3), resolver asked about %d entries (want 4)", n, len(asked))
	}
	for _, k := range append(conns, tpl) {
		if !slices.Contains(asked, k) {
			t.Errorf("the resolver was not asked about %+v with its own key", k)
		}
	}
	if got := countsOf(d); got != (counts{act: 2, pers: 1}) {
		t.Errorf("counters %+v after binding two connections and a template", got)
	}
	if st := v.tbl.SyncStats(); st.Unbound != 1 || st.Bound != 3 {
		t.Errorf("stats %+v, want 1 unbound, 3 bound", st)
	}
	checkCounts(t, v.tbl, v.dests)
}

// randomRules returns valid sync rules: a threshold alone or with a period, a refresh
// period a third of the time, any retries, persist mode a quarter of the time.
func randomRules(rng *rand.Rand) ipvssync.Rules {
	rules := ipvssync.Rules{Retries: uint8(rng.IntN(4)), PersistMode: rng.IntN(4) == 0}
	if rng.IntN(2) == 0 {
		rules.Period = 1 + uint32(rng.IntN(60))
		rules.Threshold = uint32(rng.IntN(int(rules.Period)))
	} else {
		rules.Threshold = uint32(rng.IntN(6))
	}
	if rng.IntN(3) == 0 {
		rules.RefreshPeriod = time.Duration(1+rng.IntN(20)) * time.Second
	}
	return rules
}

// TestCountRefusesOnlyWhatNeededRefuses is a differential test of the table's shortcut
// past Rules.Needed: for random rules (threshold, period, refresh period, retries,
// persist mode), entries (TCP, UDP and SCTP, any state, templates, one-packet,
// controlled), counts and sender states, whenever countRefuses says no send, Needed
// says no send too and leaves the state as it was; and the shortcut decides a good
// part of the refusals (a third here, with states and flags drawn at random; in a
// short flow's life, every table packet but the sends).
func TestCountRefusesOnlyWhatNeededRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 5))
	refused, short := 0, 0
	for trial := range 200000 {
		rules := randomRules(rng)
		e := &entry{proto: []uint8{protoTCP, protoUDP, ipvssync.ProtoSCTP}[rng.IntN(3)],
			state: State(rng.IntN(13)), timeout: uint32(rng.IntN(900_000))}
		if rng.IntN(8) == 0 {
			e.flags |= FlagTemplate
		}
		if rng.IntN(8) == 0 {
			e.flags |= FlagOnePacket
		}
		if rng.IntN(4) == 0 {
			e.control = Ref(1 + rng.IntN(100))
		}
		now := int64(time.Hour) + rng.Int64N(int64(time.Hour))
		r := syncRec{pkts: uint32(rng.IntN(0x10000)), oldState: uint8(rng.IntN(13)), retries: uint8(rng.IntN(4))}
		if rng.IntN(4) == 0 {
			r.pkts = uint32(rng.IntN(130))
		}
		if rng.IntN(2) == 0 {
			r.lastSync = now - rng.Int64N(int64(30*time.Second))
		}
		var cs ipvssync.ConnState
		r.connState(e, &cs)
		before := cs
		var nc ipvssync.Conn
		neededConn(e, &nc)
		sent := rules.Needed(&nc, &cs, r.pkts, now)
		if !sent {
			refused++
		}
		if countRefuses(&rules, e, &r) {
			short++
			if sent || cs != before {
				t.Fatalf("trial %d: rules %+v, entry %+v, sync %+v: the shortcut refuses, Needed sends (state %+v → %+v)",
					trial, rules, *e, r, before, cs)
			}
		}
	}
	if short < refused/4 {
		t.Fatalf("the shortcut decided %d of the %d refusals", short, refused)
	}
}

// TestCountOnlyMatchesTheGeneralStep is a differential test of syncStepLocked's short
// path (countOnlyLocked) against its general one: for random rules, local entries
// with any packed sync state and last send, whenever the short path takes a packet,
// the entry and the answer's sync side are what the general path leaves.
func TestCountOnlyMatchesTheGeneralStep(t *testing.T) {
	v := newEnv(t, nil)
	tbl := v.tbl
	tbl.syncEpoch.Store(int64(time.Hour))
	rng := rand.New(rand.NewPCG(14, 7))
	taken := 0
	for trial := range 100000 {
		rules := randomRules(rng)
		tbl.syncRules.Store(&syncPlan{Rules: rules}) // not local: the countOnly path
		e := &entry{proto: []uint8{protoTCP, protoUDP}[rng.IntN(2)], state: State(rng.IntN(NumStates)),
			timeout: uint32(rng.IntN(900_000))}
		if rng.IntN(8) == 0 {
			e.flags |= FlagTemplate
		}
		r := syncRec{pkts: uint32(rng.IntN(0x10000)), oldState: uint8(rng.IntN(NumStates)), retries: uint8(rng.IntN(4))}
		if rng.IntN(2) == 0 {
			r.pkts = uint32(rng.IntN(130))
		}
		if rng.IntN(2) == 0 {
			r.lastSync = int64(time.Hour) + int64(1+rng.IntN(1000))*tbl.tick
		}
		tbl.storeSync(e, &r)
		e2 := *e
		now := int64(2 * time.Hour)
		var c1, c2 Conn
		if !tbl.countOnlyLocked(&rules, e, e.uprev, &c1) {
			if *e != e2 || c1.Sync != (SyncInfo{}) {
				t.Fatalf("trial %d: the short path declined but changed the entry or the answer", trial)
			}
			continue
		}
		taken++
		tbl.syncCountLocked(&e2, &Fold{}, now, &c2)
		if *e != e2 || c1.Sync != c2.Sync {
			t.Fatalf("trial %d: rules %+v, sync %+v: the short path left %+v and %+v, the general one %+v and %+v",
				trial, rules, r, *e, c1.Sync, e2, c2.Sync)
		}
	}
	if taken < 10000 {
		t.Fatalf("the short path took %d of 100,000 packets", taken)
	}
}

// TestLocalStepMatchesTheGeneralStep is a differential test of syncStepLocked's plan
// path against its general one (syncCountLocked, which asks Rules.Needed): for
// random local rules, TCP and UDP entries in any state, controlled
// or not, any packed sync state (counts across the 16-bit wrap, last sends or none)
// and any fold from a flow cache (packets, a send before or after the table's last
// one), both leave the same entry and the same answer's sync side.
func TestLocalStepMatchesTheGeneralStep(t *testing.T) {
	v := newEnv(t, nil)
	tbl := v.tbl
	tbl.syncEpoch.Store(int64(time.Hour))
	rng := rand.New(rand.NewPCG(14, 11))
	var sends, forced, folded, wrapped int
	var memo tickMemo
	for trial := range 300000 {
		rules := randomRules(rng)
		rules.RefreshPeriod, rules.PersistMode = 0, false
		p := newSyncPlan(&rules)
		tbl.syncRules.Store(p)
		e := &entry{proto: protoTCP, state: State(rng.IntN(NumStates)), timeout: uint32(rng.IntN(900_000))}
		if rng.IntN(3) == 0 {
			e.proto, e.state = protoUDP, StateUDP
		}
		if rng.IntN(4) == 0 {
			e.control = Ref(1 + rng.IntN(100))
		}
		r := syncRec{pkts: uint32(rng.IntN(0x10000)), oldState: uint8(rng.IntN(16)), retries: uint8(rng.IntN(4))}
		switch rng.IntN(4) {
		case 0:
			r.pkts = uint32(rng.IntN(130))
		case 1:
			r.pkts = 0xffff - uint32(rng.IntN(200))
		}
		if rng.IntN(2) == 0 {
			r.lastSync = int64(time.Hour) + int64(1+rng.IntN(1000))*tbl.tick
		}
		if rng.IntN(3) == 0 {
			r.oldState = uint8(e.state) // last sent in its state: only the count decides
		}
		tbl.storeSync(e, &r)
		now := int64(time.Hour) + 1001*tbl.tick + rng.Int64N(int64(time.Second))
		var f Fold
		switch rng.IntN(4) {
		case 0:
			f.Pkts = uint32(rng.IntN(200))
		case 1:
			f.Pkts = uint32(rng.IntN(0x30000))
		}
		if rng.IntN(2) == 0 {
			f.Sent = int64(time.Hour) + rng.Int64N(1002*tbl.tick)
			if r.lastSync != 0 && rng.IntN(4) == 0 {
				f.Sent = r.lastSync // a send the table recorded too: the fold's state wins
			}
			f.State = State(rng.IntN(NumStates))
			folded++
		}
		if (r.pkts+f.Pkts+1)&0xffff < r.pkts {
			wrapped++
		}
		c1 := stepAsGeneral(t, tbl, e, f, now, &memo, func() string {
			return fmt.Sprintf("trial %d: rules %+v, entry state %d, sync %+v, fold %+v", trial, rules, e.state, r, f)
		})
		if c1.Sync.Send {
			sends++
			if e.proto == protoTCP && uint8(e.state) != r.oldState {
				forced++
			}
		}
	}
	if sends < 10000 || forced < 2000 || folded < 100000 || wrapped < 1000 {
		t.Fatalf("too few cases: %d sends, %d with a state change, %d folds, %d counts across the wrap", sends, forced, folded, wrapped)
	}
}

// TestSyncPlanBits checks the plan of the kernel's default rules: TCP is sent in
// ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and TIME_WAIT, and a change to any of them
// but ESTABLISHED is forced; rules with a refresh period or persist mode are not local.
func TestSyncPlanBits(t *testing.T) {
	p := newSyncPlan(&ipvssync.Rules{Threshold: 3, Period: 50})
	want := uint32(1<<StateEstablished | 1<<StateFinWait | 1<<StateClose | 1<<StateCloseWait | 1<<StateTimeWait)
	if !p.local || p.sendsTCP != want || p.forcedTCP != want&^(1<<StateEstablished) || !p.sendsUDP {
		t.Fatalf("the kernel's defaults: plan %+v, want sends %#x, forced %#x", p, want, want&^(1<<StateEstablished))
	}
	if p := newSyncPlan(&ipvssync.Rules{Threshold: 3, Period: 50, RefreshPeriod: time.Second}); p.local {
		t.Fatal("a refresh period: the plan is not local")
	}
	if p := newSyncPlan(&ipvssync.Rules{Threshold: 3, Period: 50, PersistMode: true}); p.local {
		t.Fatal("persist mode: the plan is not local")
	}
}

// TestSyncStepDispatchMatchesTheGeneralStep is a differential test of
// syncStepLocked's dispatch: for random rules (local or not), entries of TCP, UDP,
// SCTP and another protocol, templates and one-packet connections among them, in any
// state, with any count, old state and fold (a quarter of them just confirmed: the
// packed word 0), the step leaves the entry and the answer as the general path
// (syncCountLocked) does, whichever path it takes.
func TestSyncStepDispatchMatchesTheGeneralStep(t *testing.T) {
	v := newEnv(t, nil)
	tbl := v.tbl
	tbl.syncEpoch.Store(int64(time.Hour))
	rng := rand.New(rand.NewPCG(15, 12))
	var sends, other, quiet int
	var memo tickMemo
	for trial := range 200000 {
		rules := randomRules(rng)
		if rng.IntN(2) == 0 {
			rules.RefreshPeriod, rules.PersistMode = 0, false
		}
		tbl.syncRules.Store(newSyncPlan(&rules))
		e := &entry{proto: []uint8{protoTCP, protoUDP, ipvssync.ProtoSCTP, 47}[rng.IntN(4)],
			state: State(rng.IntN(NumStates)), timeout: uint32(rng.IntN(900_000))}
		if e.proto == protoUDP && rng.IntN(2) == 0 {
			e.state = StateUDP // as the table keeps a UDP connection (the quiet bit is its state's)
		}
		switch rng.IntN(6) {
		case 0:
			e.flags |= FlagTemplate
		case 1:
			e.flags |= FlagOnePacket
		}
		r := syncRec{pkts: uint32(rng.IntN(130)), oldState: uint8(rng.IntN(NumStates)), retries: uint8(rng.IntN(4))}
		confirming := rng.IntN(4) == 0
		if confirming { // the packed word 0: just confirmed (syncPlan.quiet)
			r.pkts, r.oldState, r.retries = 0, 0, 0
		}
		if rng.IntN(2) == 0 {
			r.lastSync = int64(time.Hour) + int64(1+rng.IntN(1000))*tbl.tick
		}
		tbl.storeSync(e, &r)
		now := int64(time.Hour) + 1001*tbl.tick + rng.Int64N(int64(time.Second))
		var f Fold
		if rng.IntN(2) == 0 {
			f.Pkts = uint32(rng.IntN(100))
		}
		if rng.IntN(3) == 0 {
			f.Sent, f.State = int64(time.Hour)+rng.Int64N(1002*tbl.tick), State(rng.IntN(NumStates))
		}
		if confirming && f == (Fold{}) && e.flags == 0 && (e.proto == protoTCP || e.proto == protoUDP) {
			quiet++
		}
		c1 := stepAsGeneral(t, tbl, e, f, now, &memo, func() string {
			return fmt.Sprintf("trial %d: rules %+v, proto %d, flags %#x, state %d, sync %+v, fold %+v",
				trial, rules, e.proto, e.flags, e.state, r, f)
		})
		if c1.Sync.Send {
			sends++
			if e.proto != protoTCP && e.proto != protoUDP || e.flags != 0 {
				other++
			}
		}
	}
	if sends < 20000 || other < 10000 || quiet < 5000 {
		t.Fatalf("too few cases: %d sends, %d of them of SCTP, another protocol, a template or a one-packet connection; %d confirming packets of TCP or UDP with nothing folded",
			sends, other, quiet)
	}
}

// stepAsGeneral runs syncStepLocked on e with fold f and fails unless it leaves e and
// the answer as the general path (syncCountLocked) does on a copy; it returns the
// step's answer.
func stepAsGeneral(t *testing.T, tbl *Table, e *entry, f Fold, now int64, memo *tickMemo, what func() string) Conn {
	t.Helper()
	e2, f2 := *e, f
	var c1, c2 Conn
	c1.tick = *memo // a worker's Conn: the tick of its last send (memoTick)
	tbl.syncStepLocked(e, &f, now, &c1)
	*memo = c1.tick
	tbl.syncCountLocked(&e2, &f2, now, &c2)
	if *e != e2 || c1.Sync != c2.Sync {
		t.Fatalf("%s: the step left %+v and %+v, the general path %+v and %+v", what(), *e, c1.Sync, e2, c2.Sync)
	}
	return c1
}

// TestDividerDivides holds divider to the division: for ticks of 1 ns to beyond an
// hour (powers of two, their neighbours, the default 100 ms, random ones) and
// dividends from 0 to 2^63-1 (multiples of the divisor and their neighbours, random
// ones), div is d / n. Fails with m rounded down, or s one larger.
func TestDividerDivides(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 2))
	ns := []uint64{1, 2, 3, 5, 7, 1000, uint64(time.Millisecond), uint64(100 * time.Millisecond), uint64(time.Hour), 1<<62 + 1}
	for k := 1; k < 63; k++ {
		ns = append(ns, 1<<k-1, 1<<k, 1<<k+1)
	}
	for range 200 {
		ns = append(ns, 1+rng.Uint64N(uint64(2*time.Hour)), 1+rng.Uint64N(1<<62))
	}
	for _, n := range ns {
		v := newDivider(n)
		ds := []uint64{0, 1, n - 1, n, n + 1, 1<<63 - 1, (1<<63 - 1) / n * n, (1<<63-1)/n*n - 1}
		for range 200 {
			q := rng.Uint64N((1<<63-1)/n + 1)
			ds = append(ds, q*n, q*n+n-1, rng.Uint64N(1<<63), rng.Uint64N(1<<40))
		}
		for _, d := range ds {
			if d >= 1<<63 {
				continue
			}
			if got := v.div(d); got != d/n {
				t.Fatalf("%d / %d: divider %+v gives %d, want %d", d, n, v, got, d/n)
			}
		}
	}
}

// TestTickMemoIsSyncTick holds the plan path's tick of a send (a Conn's tickMemo,
// filled by memoTick) to syncTick: for ticks of 1 ns to an hour, a Conn that sends
// at times walking across tick boundaries (a tick's first and last ns and their
// neighbours, times before the epoch, random ones), the tick read from the memo when
// it holds the time, else worked out by memoTick, is syncTick's; a memo one table
// filled holds nothing for another table with the same tick and epoch. Fails with
// the span's test inclusive at its end, without the table's id, or with the span
// started a tick late.
func TestTickMemoIsSyncTick(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 7))
	for _, tick := range []time.Duration{1, 7, time.Millisecond, 100 * time.Millisecond, time.Second, time.Hour} {
		var tbls [2]*Table
		for i := range tbls {
			tb, err := New(Config{Max: 16, Shards: 1, Tick: tick})
			if err != nil {
				t.Fatal(err)
			}
			tb.syncEpoch.Store(int64(time.Hour))
			tbls[i] = tb
		}
		var c Conn
		hits := 0
		now := int64(time.Hour) - 3*int64(tick)
		for step := range 2000 {
			switch rng.IntN(6) {
			case 0: // a tick's first ns, or its last
				now = int64(time.Hour) + rng.Int64N(4)*int64(tick) - rng.Int64N(2)
			case 1:
				now++
			case 2:
				now--
			case 3:
				now += int64(tick)
			case 4:
				now = int64(time.Hour) - rng.Int64N(3*int64(tick)+1)
			default:
				now += rng.Int64N(2 * int64(tick))
			}
			tb := tbls[rng.IntN(len(tbls))]
			want := tb.syncTick(now)
			got := c.tick.w
			if c.tick.holds(tb, now) {
				hits++
			} else {
				got = tb.memoTick(now, &c)
			}
			if got != want {
				t.Fatalf("tick %v, step %d, now %d: the memo gives tick %d, syncTick %d (memo %+v)", tick, step, now, got, want, c.tick)
			}
			if other := tbls[0]; c.tick.holds(other, now) && other != tb || c.tick.holds(tbls[1], now) && tbls[1] != tb {
				t.Fatalf("tick %v, step %d: a memo of table %d holds now for the other table", tick, step, tb.id)
			}
		}
		if hits < 100 {
			t.Fatalf("tick %v: the memo held only %d times in 2000", tick, hits)
		}
	}
}

// TestSyncSendRecordsItsTime: a send the plan decides on a table packet (inLocked,
// through In) records its time in the entry, whether the Conn's tick memo holds the
// send's tick or not, and a fold that moves the last send records the fold's send
// (the sweeper and bulk pushes read it: SyncMeta.LastSync).
func TestSyncSendRecordsItsTime(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 80, 1)
	rules := ipvssync.DefaultRules()
	v.tbl.SetSyncRules(&rules)
	tick := v.tbl.tick
	last := func(at int64) int64 {
		t.Helper()
		_, ms := walkAll(t, v.tbl, 10, at)
		if len(ms) != 1 {
			t.Fatalf("walk: %d entries", len(ms))
		}
		return ms[0].LastSync
	}
	tickOf := func(ns int64) int64 { return v.tbl.lastSyncOf(v.tbl.syncTick(ns)) }
	k := tcpKey("198.18.0.2", 1000, "198.18.0.100", 80)
	now := 10 * sec
	var c Conn
	if r := v.tbl.Insert(&k, d, 80, ipvs.DR, 0, 0, fSYN, now, &c); r != Hit {
		t.Fatalf("SYN: %v", r)
	}
	in := func(flags uint8, at int64, fold Fold) {
		t.Helper()
		c.Sync.Fold = fold
		if v.tbl.In(&k, flags, at, &c) != Hit {
			t.Fatal("miss")
		}
	}
	in(fACK, now, Fold{})
	in(fACK, now, Fold{}) // the third packet: sent, the memo empty
	if !c.Sync.Send || last(now) != tickOf(now) || last(now) == 0 {
		t.Fatalf("third packet: send %v, last send %d, want %d", c.Sync.Send, last(now), tickOf(now))
	}
	// The 53rd, three ticks on: the memo holds another tick.
	at := now + 3*tick
	for range 49 {
		in(fACK, at, Fold{})
	}
	in(fACK, at, Fold{})
	if !c.Sync.Send || c.Sync.Pkts != 53 || last(at) != tickOf(at) {
		t.Fatalf("53rd packet: %+v, last send %d, want %d", c.Sync, last(at), tickOf(at))
	}
	// A cache's later send folded in, with a count the rules refuse.
	sent := at + 2*tick
	in(fACK, sent+tick, Fold{Pkts: 1, Sent: sent, State: StateEstablished})
	if c.Sync.Send || last(sent+tick) != tickOf(sent) {
		t.Fatalf("fold: %+v, last send %d, want %d", c.Sync, last(sent+tick), tickOf(sent))
	}
	// The FIN, forced, five ticks on.
	in(fFINACK, sent+5*tick, Fold{})
	if !c.Sync.Send || c.State != StateFinWait || last(sent+5*tick) != tickOf(sent+5*tick) {
		t.Fatalf("FIN: %+v, last send %d, want %d", c.Sync, last(sent+5*tick), tickOf(sent+5*tick))
	}
}

// flagPicker picks one dest in DR with the given flags for every new connection.
type flagPicker struct {
	d     *sched.Dest
	flags Flags
}

func (p *flagPicker) Pick(*Key) (*sched.Dest, uint16, ipvs.Method, Flags) {
	return p.d, p.d.Port(), ipvs.DR, p.flags
}

// TestCreatedIsNeitherSentNorAdopted: a connection InOrInsert makes (Created) is
// not sent by its first packet, even under rules that would send at count 1, and is
// not adopted; a flow cache's new connection then has no push to make
// (dataplane's created relies on it).
func TestCreatedIsNeitherSentNorAdopted(t *testing.T) {
	v := newEnv(t, nil)
	d := v.addDest(1, "198.18.1.1", 80, 1)
	// The table's first connection is Insert's (InOrInsert answers Miss until the
	// table's clock is set).
	k0, c0 := tcpKey("198.18.0.9", 999, "198.18.0.100", 80), Conn{}
	v.tbl.Insert(&k0, d, 80, ipvs.DR, 0, 0, fSYN, 10*sec, &c0)
	for j, rules := range []ipvssync.Rules{ipvssync.DefaultRules(), {Threshold: 1}, {Threshold: 0, Period: 1}} {
		v.tbl.SetSyncRules(&rules)
		for i, tc := range []struct {
			k     Key
			flags uint8
			conn  Flags
		}{
			{tcpKey("198.18.0.1", uint16(1000+j), "198.18.0.100", 80), fSYN, 0},
			{udpKey("198.18.0.2", uint16(1000+j), "198.18.0.100", 80), 0, 0},
			{udpKey("198.18.0.3", uint16(1000+j), "198.18.0.100", 80), 0, FlagOnePacket},
		} {
			var c Conn
			if r := v.tbl.InOrInsert(&tc.k, tc.flags, 10*sec, &flagPicker{d, tc.conn}, &c); r != Created {
				t.Fatalf("rules %+v, %d: %v", rules, i, r)
			}
			if c.Sync.Send || c.Sync.Adopted || c.Sync.Origin != 0 {
				t.Fatalf("rules %+v, %d: new connection's sync %+v", rules, i, c.Sync)
			}
		}
	}
}
