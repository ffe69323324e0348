package cluster

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

// The Entry numbering is the connection table's: a renumbering there must fail here.
func TestStateNumbering(t *testing.T) {
	if StateEstablished != uint8(conntrack.StateEstablished) || StateUDP != uint8(conntrack.StateUDP) {
		t.Fatalf("cluster states ES %d UDP %d, conntrack %d %d", StateEstablished, StateUDP,
			conntrack.StateEstablished, conntrack.StateUDP)
	}
	for s := conntrack.StateNone; s <= conntrack.StateSynAck; s++ {
		if got := ipvssync.StateName(ipvssync.ProtoTCP, 0, uint16(s)); got != s.String() {
			t.Errorf("TCP state %d: wire name %s, table name %s", s, got, s)
		}
	}
}

func randEntry(rng *rand.Rand) Entry {
	e := Entry{
		Proto: []uint8{6, 17}[rng.IntN(2)], CPort: uint16(rng.Uint32()), VPort: uint16(rng.Uint32()),
		DPort: uint16(rng.Uint32()), FwMark: rng.Uint32(),
		Method:  []ipvs.Method{ipvs.DR, ipvs.NAT, ipvs.TUN, ipvs.Local, ipvs.Bypass}[rng.IntN(5)],
		Flags:   Flags(rng.IntN(16)) &^ FlagTemplate,
		Timeout: time.Duration(rng.IntN(100000)) * time.Second,
	}
	if rng.IntN(8) == 0 {
		e.Flags |= FlagTemplate
		if rng.IntN(2) == 0 {
			e.Flags |= FlagAssured
		}
	} else if e.Proto == 6 {
		e.State = uint8(rng.IntN(11))
	} else {
		e.State = StateUDP
	}
	if rng.IntN(4) == 0 {
		var a [3][16]byte
		for i := range a {
			a[i] = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.Uint32())}
			a[i][8] = byte(rng.Uint32())
		}
		e.CAddr, e.VAddr, e.DAddr = netip.AddrFrom16(a[0]), netip.AddrFrom16(a[1]), netip.AddrFrom16(a[2])
	} else {
		e.CAddr = netip.AddrFrom4([4]byte{198, 19, byte(rng.Uint32()), byte(rng.Uint32())})
		e.VAddr = netip.AddrFrom4([4]byte{198, 18, 100, byte(rng.Uint32())})
		e.DAddr = netip.AddrFrom4([4]byte{198, 18, 0, byte(rng.Uint32())})
	}
	return e
}

// TestEntryRoundTrip sends 10,000 random table entries through the wire and back:
// entry → record → message → record → entry must be the identity (timeouts are whole
// seconds here; a fraction is rounded up, checked below).
func TestEntryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 8848))
	var b ipvssync.Builder
	var m ipvssync.Message
	var sent []Entry
	check := func() {
		if res := ipvssync.Decode(&m, b.Bytes()); res != (ipvssync.Result{}) || len(m.Records) != len(sent) {
			t.Fatalf("decode %+v: %d records, sent %d", res, len(m.Records), len(sent))
		}
		for i := range m.Records {
			var got Entry
			if why := fromRecord(&m.Records[i], &got); why != dropNone {
				t.Fatalf("record %d dropped: %v", i, why)
			}
			if got != sent[i] {
				t.Fatalf("round trip:\nsent %+v\ngot  %+v", sent[i], got)
			}
		}
		sent = sent[:0]
		b.Reset(ipvssync.V1, 0, ipvssync.MaxLen)
	}
	b.Reset(ipvssync.V1, 0, ipvssync.MaxLen)
	for range 10000 {
		e := randEntry(rng)
		var r ipvssync.Record
		toRecord(&e, &r)
		err := b.Add(&r)
		if errors.Is(err, ipvssync.ErrFull) {
			check()
			err = b.Add(&r)
		}
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
	}
	check()

	e := conn(1, 5)
	e.Timeout = 1500 * time.Millisecond
	var r ipvssync.Record
	toRecord(&e, &r)
	if r.Timeout != 2 {
		t.Fatalf("1.5 s sent as %d s, want 2 (rounded up)", r.Timeout)
	}
	udp := Entry{Proto: 17, State: StateUDP, CAddr: e.CAddr, VAddr: e.VAddr, DAddr: e.DAddr, Method: ipvs.NAT}
	toRecord(&udp, &r)
	if r.State != 0 || r.Flags&ipvssync.FwdMask != ipvssync.FwdMasq {
		t.Fatalf("UDP NAT as state %d flags %#x, want 0 and Masq", r.State, r.Flags)
	}
}
