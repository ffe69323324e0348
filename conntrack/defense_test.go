package conntrack

import (
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestDefenseModes: drop_entry and secure_tcp at 1 engage (2) when fewer than
// amemthresh entries are free, stay engaged until amemthresh + amemthresh/8 are, and
// each change is counted once; 0 and 3 never move; secure_tcp's shorter timeouts
// apply to packets while engaged; drop_entry drops unconfirmed entries only.
func TestDefenseModes(t *testing.T) {
	v, d := unconfEnv(t, 100, 100, 100, 1)
	p := &onePicker{d, ipvs.DR}
	set := func(max, de, st int) {
		t.Helper()
		if err := v.tbl.Set(Settings{Max: max, UnconfirmedMax: max, UnconfirmedPerService: max, DropEntry: de, SecureTCP: st, AMemThresh: 16}); err != nil {
			t.Fatal(err)
		}
	}
	set(100, ModeAuto, ModeAuto)
	var c Conn
	now := sec
	// 83 confirmed connections: 17 free, above the threshold of 16.
	for i := range 83 {
		k := spoofKey(protoTCP, i, 80)
		if r := v.tbl.InOrInsert(&k, fSYN, now, p, &c); r != Created || c.Timeout != 60*time.Second {
			t.Fatalf("%d: %v %v", i, r, c.Timeout)
		}
		v.tbl.In(&k, fACK, now, &c)
	}
	want := func(de, st int, changes uint64) {
		t.Helper()
		r := v.tbl.Defend(0)
		if r.After != (Modes{de, st}) {
			t.Fatalf("modes %+v, want %d %d (free %d, thresh %d)", r.After, de, st, r.Free, r.AMemThresh)
		}
		if s := v.tbl.Unconfirmed(); s.DropEntryChanges != changes || s.SecureTCPChanges != changes || s.Modes != r.After {
			t.Fatalf("%+v, want %d changes", s, changes)
		}
	}
	want(ModeAuto, ModeAuto, 0)
	// Two unconfirmed more: 15 free, both engage (once).
	for i := range 2 {
		k := spoofKey(protoTCP, 1000+i, 80)
		v.tbl.InOrInsert(&k, fSYN, now, p, &c)
	}
	r := v.tbl.Defend(0)
	if r.After != (Modes{ModeOn, ModeOn}) || r.Dropped != 2 || r.Before != (Modes{ModeAuto, ModeAuto}) {
		t.Fatalf("%+v", r)
	}
	if s := v.tbl.Unconfirmed(); s.DropEntryDropped != 2 || s.Unconfirmed != 0 || v.tbl.Len() != 83 {
		t.Fatalf("drop_entry: %+v len %d", s, v.tbl.Len())
	}
	// secure_tcp engaged: a SYN_RECV entry gets 10 s, the configured 60 s stays
	// what Timeouts reports.
	k := spoofKey(protoTCP, 2000, 80)
	if r := v.tbl.InOrInsert(&k, fSYN, now, p, &c); r != Created || c.Timeout != 10*time.Second {
		t.Fatalf("secure_tcp: %v %v", r, c.Timeout)
	}
	if v.tbl.Timeouts().TCP[StateSynRecv] != 60*time.Second {
		t.Fatal("Timeouts reports the defense table")
	}
	// 16 free: held (and the SYN above is dropped).
	want(ModeOn, ModeOn, 1)
	set(100, ModeAuto, ModeAuto) // same modes: the engaged state is kept; 17 free < 16+2
	want(ModeOn, ModeOn, 1)
	set(101, ModeAuto, ModeAuto) // 18 free >= 16+2: released
	want(ModeAuto, ModeAuto, 2)
	k = spoofKey(protoTCP, 2001, 80)
	if v.tbl.InOrInsert(&k, fSYN, now, p, &c); c.Timeout != 60*time.Second {
		t.Fatalf("released: %v", c.Timeout)
	}
	// 0 never engages, 3 always; a changed value starts from itself.
	set(90, ModeOff, ModeAlways)
	want(ModeOff, ModeAlways, 2)
	k = spoofKey(protoTCP, 2002, 80)
	if r := v.tbl.InOrInsert(&k, fSYN, now, p, &c); r != Created || c.Timeout != 10*time.Second {
		t.Fatalf("secure_tcp 3: %v %v", r, c.Timeout)
	}
	for _, s := range []Settings{{Max: 10, DropEntry: 4}, {Max: 10, SecureTCP: -1}, {Max: 10, AMemThresh: 11}} {
		if err := v.tbl.Set(s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	checkCounts(t, v.tbl, v.dests)
	listLen(t, v.tbl)
}

// TestDropEntrySpreads: drop_entry takes 1/32 of the shards per call, from the one
// rnd picks, so successive calls with different rnd drain the unconfirmed entries
// while the confirmed stay.
func TestDropEntrySpreads(t *testing.T) {
	v, d := unconfEnv(t, 4096, 4096, 4096, 64)
	if err := v.tbl.Set(Settings{Max: 4096, DropEntry: ModeAlways, AMemThresh: 1}); err != nil {
		t.Fatal(err)
	}
	p := &onePicker{d, ipvs.NAT}
	var c Conn
	for i := range 2000 {
		k := spoofKey(protoUDP, i, 53)
		v.tbl.InOrInsert(&k, 0, sec, p, &c)
		v.tbl.Out(protoUDP, false, raw(rsAddr), 8080, k.CAddr, k.CPort, 0, sec, &c) // does not confirm
		if i%2 == 0 {                                                               // the client's second datagram confirms it
			v.tbl.In(&k, 0, sec, &c)
		}
	}
	if s := v.tbl.Unconfirmed(); s.Unconfirmed != 1000 {
		t.Fatalf("%+v", s)
	}
	r := v.tbl.Defend(5)
	if r.Dropped == 0 || r.Dropped > 1000/8 {
		t.Fatalf("one call dropped %d of 1000 in 2 of 64 shards", r.Dropped)
	}
	for i := range uint32(32) {
		v.tbl.Defend(i * 2)
	}
	if s := v.tbl.Unconfirmed(); s.Unconfirmed != 0 || v.tbl.Len() != 1000 || s.DropEntryDropped != 1000 || s.Evicted != 0 {
		t.Fatalf("%+v len %d", s, v.tbl.Len())
	}
	checkCounts(t, v.tbl, v.dests)
}
