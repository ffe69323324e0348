package ipvssync

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

func TestGolden188(t *testing.T) {
	want := unhex(t, golden188)
	if len(want) != 188 {
		t.Fatalf("golden vector is %d bytes, want 188", len(want))
	}
	m := &Message{Version: V1, SyncID: 7, Records: goldenRecords()}
	got, err := Encode(m, MaxLen)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%x\nwant\n%x", got, want)
	}
	var d Message
	res := Decode(&d, want)
	if res != (Result{}) {
		t.Fatalf("decode result %+v, want clean", res)
	}
	if !reflect.DeepEqual(m, &d) {
		t.Fatalf("decoded message \ngot  %+v\nwant %+v", &d, m)
	}
}

// goldenV0 is a v0 message (syncid 3) with one plain record and one carrying the
// 24-byte host-order sequence block its flags announce.
const goldenV0 = `
02 03 00 4c
00 06 a1 70 00 50 00 50 c6 13 00 02 c6 12 64 01 c6 12 00 05 00 83 00 01
00 06 a1 71 00 50 00 50 c6 13 00 03 c6 12 64 01 c6 12 00 06 06 00 00 04
  01 00 00 00 02 00 00 00 03 00 00 00  04 00 00 00 05 00 00 00 06 00 00 00
`

func TestV0(t *testing.T) {
	b := unhex(t, goldenV0)
	var m Message
	if res := Decode(&m, b); res != (Result{}) {
		t.Fatalf("result %+v", res)
	}
	want := []Record{
		{Protocol: 6, Flags: 0x83, State: 1, CPort: 41328, VPort: 80, DPort: 80,
			CAddr: mustAddr("198.19.0.2"), VAddr: mustAddr("198.18.100.1"), DAddr: mustAddr("198.18.0.5")},
		{Protocol: 6, Flags: 0x600, State: 4, CPort: 41329, VPort: 80, DPort: 80,
			CAddr: mustAddr("198.19.0.3"), VAddr: mustAddr("198.18.100.1"), DAddr: mustAddr("198.18.0.6"),
			HasSeq: true, InSeq: Seq{1, 2, 3}, OutSeq: Seq{4, 5, 6}},
	}
	if m.Version != V0 || m.SyncID != 3 {
		t.Fatalf("version %d syncid %d, want 0 3", m.Version, m.SyncID)
	}
	if !reflect.DeepEqual(want, m.Records) {
		t.Fatalf("\ngot  %+v\nwant %+v", m.Records, want)
	}
	// Encoding v0 drops the sequence flags (gvs sends no options) and gives the
	// first record back byte for byte.
	enc, err := Encode(&Message{Version: V0, SyncID: 3, Records: want[:1]}, MaxLen)
	if err != nil {
		t.Fatal(err)
	}
	if wantEnc := append([]byte{1, 3, 0, 28}, b[4:28]...); !bytes.Equal(enc, wantEnc) {
		t.Fatalf("v0 encode %x, want %x", enc, wantEnc)
	}
	// IPv6 has no v0 form.
	var bld Builder
	bld.Reset(V0, 0, MaxLen)
	if err := bld.Add(&goldenRecords()[3]); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("IPv6 in v0: %v, want ErrInvalidRecord", err)
	}
}

func TestDecodeKernelRules(t *testing.T) {
	plain := func(cport uint16) []byte { return v4rec(0, 6, 36, 0x83, 1, cport) }
	pad2 := []byte{0, 0}
	tests := []struct {
		name   string
		msg    []byte
		cports []uint16 // records read, by client port
		res    Result
	}{
		{name: "short", msg: []byte{0, 7, 0}, res: Result{Drop: ReasonShort}},
		{name: "size larger than datagram", msg: func() []byte { b := msgV1(1, plain(1)); b[3]++; return b }(),
			res: Result{Drop: ReasonSizeMismatch}},
		{name: "size smaller than datagram", msg: append(msgV1(1, plain(1)), 0), res: Result{Drop: ReasonSizeMismatch}},
		{name: "spare set parses as v0 with no records", msg: func() []byte { b := msgV1(1, plain(1)); b[7] = 1; return b }()},
		{name: "reserved set parses as v0", msg: func() []byte { b := msgV1(1, plain(1)); b[0] = 1; return b }(),
			// v0 reads the v1 header's second half as the start of a 24-byte record:
			// protocol 1 (ICMP) has no state table, so that record is skipped.
			res: Result{Skipped: skipped(ReasonProtocol, 1)}},
		{name: "count larger than records", msg: msgV1(3, plain(1), plain(2)), cports: []uint16{1, 2},
			res: Result{Drop: ReasonTruncated, Lost: 1}},
		{name: "trailing bytes after count ignored", msg: msgV1(1, plain(1), plain(2)), cports: []uint16{1}},
		{name: "bad type drops the rest", msg: msgV1(3, plain(1), v4rec(2, 6, 36, 0x83, 1, 2), plain(3)), cports: []uint16{1},
			res: Result{Drop: ReasonRecordType, Lost: 2}},
		{name: "type 3 is IPv6 like type 1", msg: msgV1(1, append(v4rec(3, 6, 72, 0x83, 1, 9), make([]byte, 36)...)),
			cports: []uint16{9}},
		{name: "record version drops the rest", msg: msgV1(2, plain(1), v4rec(0, 6, 0x1000|36, 0x83, 1, 2)), cports: []uint16{1},
			res: Result{Drop: ReasonRecordVersion, Lost: 1}},
		{name: "record size past datagram", msg: msgV1(2, plain(1), v4rec(0, 6, 40, 0x83, 1, 2)), cports: []uint16{1},
			res: Result{Drop: ReasonRecordOverrun, Lost: 1}},
		{name: "record size below fixed part", msg: msgV1(2, v4rec(0, 6, 20, 0x83, 1, 1), plain(2)),
			res: Result{Drop: ReasonRecordOverrun, Lost: 2}},
		{name: "optional unknown option skipped, padding honoured",
			msg:    msgV1(2, append(v4rec(0, 6, 42, 0x83, 1, 1, 0x40|9, 4, 1, 2, 3, 4), pad2...), plain(2)),
			cports: []uint16{1, 2}},
		{name: "mandatory unknown option drops one record",
			msg:    msgV1(3, plain(1), append(v4rec(0, 6, 42, 0x83, 1, 2, 9, 4, 1, 2, 3, 4), pad2...), plain(3)),
			cports: []uint16{1, 3}, res: Result{Skipped: skipped(ReasonMandatoryOption, 1)}},
		{name: "option of length zero drops the rest",
			msg: msgV1(2, v4rec(0, 6, 40, 0x83, 1, 1, 0x40|9, 0, 0, 0), plain(2)),
			res: Result{Drop: ReasonBadOption, Lost: 2}},
		{name: "option overrunning its record drops the rest",
			msg: msgV1(2, v4rec(0, 6, 40, 0x83, 1, 1, 0x40|9, 3, 0, 0), plain(2)),
			res: Result{Drop: ReasonBadOption, Lost: 2}},
		{name: "odd option byte drops the rest",
			msg: msgV1(1, append(v4rec(0, 6, 37, 0x83, 1, 1, 0x40), 0, 0, 0)), res: Result{Drop: ReasonBadOption, Lost: 1}},
		{name: "seq option of wrong size drops the rest",
			msg: msgV1(1, v4rec(0, 6, 40, 0x83, 1, 1, OptSeqData, 2, 0, 0)),
			res: Result{Drop: ReasonBadOption, Lost: 1}},
		{name: "pe name too long drops the rest",
			msg: msgV1(1, append(v4rec(0, 6, 36+2+17, 0x83, 1, 1, append([]byte{OptPEName, 17}, make([]byte, 17)...)...), 0)),
			res: Result{Drop: ReasonBadOption, Lost: 1}},
		{name: "pe name twice drops the rest",
			msg: msgV1(1, v4rec(0, 6, 44, 0x83, 1, 1, OptPEName, 2, 's', 'i', OptPEName|OptParam, 2, 's', 'i')),
			res: Result{Drop: ReasonBadOption, Lost: 1}},
		{name: "unsupported protocol skipped", msg: msgV1(2, v4rec(0, 1, 36, 0x83, 0, 1), plain(2)), cports: []uint16{2},
			res: Result{Skipped: skipped(ReasonProtocol, 1)}},
		{name: "TCP state 11 skipped", msg: msgV1(2, v4rec(0, 6, 36, 0x83, 11, 1), plain(2)), cports: []uint16{2},
			res: Result{Skipped: skipped(ReasonState, 1)}},
		{name: "UDP state 1 skipped", msg: msgV1(1, v4rec(0, 17, 36, 0x100, 1, 1)), res: Result{Skipped: skipped(ReasonState, 1)}},
		{name: "template state not checked", msg: msgV1(1, v4rec(0, 99, 36, 0x1003, 7, 1)), cports: []uint16{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			res := Decode(&m, tt.msg)
			if res != tt.res {
				t.Errorf("result %+v, want %+v", res, tt.res)
			}
			var got []uint16
			for _, r := range m.Records {
				got = append(got, r.CPort)
			}
			if !reflect.DeepEqual(tt.cports, got) {
				t.Errorf("records by cport \ngot  %+v\nwant %+v", got, tt.cports)
			}
		})
	}
}

func skipped(r Reason, n uint8) (s [NumReasons]uint8) {
	s[r] = n
	return s
}

func TestDecodeOptions(t *testing.T) {
	seq := []byte{OptSeqData | OptParam, 24,
		0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6}
	opts := append(seq, OptPEName, 3, 's', 'i', 'p', OptPEData, 2, 0xaa, 0xbb)
	rec := v4rec(0, 6, 36+len(opts), 0x683, 1, 1, opts...)
	for len(rec)%4 != 0 {
		rec = append(rec, 0)
	}
	var m Message
	if res := Decode(&m, msgV1(2, rec, v4rec(0, 6, 36, 0x83, 1, 2))); res != (Result{}) {
		t.Fatalf("result %+v", res)
	}
	if len(m.Records) != 2 || m.Records[1].CPort != 2 {
		t.Fatalf("records %+v", m.Records)
	}
	r := m.Records[0]
	if !r.HasSeq || r.InSeq != (Seq{1, 2, 3}) || r.OutSeq != (Seq{4, 5, 6}) ||
		string(r.PEName) != "sip" || !bytes.Equal(r.PEData, []byte{0xaa, 0xbb}) {
		t.Fatalf("options %+v", r)
	}
}

// randRecord returns a record the encoder accepts and decoding gives back equal.
func randRecord(rng *rand.Rand) Record {
	r := Record{
		Protocol: []uint8{ProtoTCP, ProtoUDP, ProtoSCTP}[rng.IntN(3)],
		Flags:    uint32(rng.IntN(5)) | uint32(rng.IntN(64))<<7&(FlagNoOutput|FlagInactive|FlagNoCPort|FlagTemplate),
		CPort:    uint16(rng.Uint32()), VPort: uint16(rng.Uint32()), DPort: uint16(rng.Uint32()),
		FwMark: rng.Uint32(), Timeout: rng.Uint32(),
	}
	r.State = uint16(rng.IntN(int(NumStates(r.Protocol))))
	if rng.IntN(4) == 0 {
		var a [3][16]byte
		for i := range a {
			for j := range a[i] {
				a[i][j] = byte(rng.Uint32())
			}
		}
		r.CAddr, r.VAddr, r.DAddr = netip.AddrFrom16(a[0]), netip.AddrFrom16(a[1]), netip.AddrFrom16(a[2])
	} else {
		r.CAddr = netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.Uint32()), byte(rng.Uint32())})
		r.VAddr = netip.AddrFrom4([4]byte{198, 18, 100, byte(rng.Uint32())})
		r.DAddr = netip.AddrFrom4([4]byte{198, 18, 0, byte(rng.Uint32())})
	}
	return r
}

func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 14))
	var b Builder
	var m Message
	m.Records = make([]Record, 0, MaxRecords)
	var pending []Record
	total := 0
	flush := func() {
		res := Decode(&m, b.Bytes())
		if res != (Result{}) || m.Version != V1 || m.SyncID != 42 {
			t.Fatalf("decode: %+v version %d syncid %d", res, m.Version, m.SyncID)
		}
		if !reflect.DeepEqual(pending, m.Records) {
			t.Fatalf("round trip:\ngot  %+v\nsent %+v", m.Records, pending)
		}
		if len(b.Bytes()) > MaxLen {
			t.Fatalf("message of %d bytes exceeds %d", len(b.Bytes()), MaxLen)
		}
		total += len(pending)
		pending = pending[:0]
		b.Reset(V1, 42, MaxLen)
	}
	b.Reset(V1, 42, MaxLen)
	for range 10000 {
		r := randRecord(rng)
		if err := b.Add(&r); errors.Is(err, ErrFull) {
			flush()
			if err := b.Add(&r); err != nil {
				t.Fatal(err)
			}
		} else if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, r)
	}
	flush()
	if total != 10000 {
		t.Fatalf("round-tripped %d records", total)
	}
}

func TestBuilderFull(t *testing.T) {
	var b Builder
	b.Reset(V1, 0, MaxLen)
	r := goldenRecords()[0]
	n := 0
	for b.Add(&r) == nil {
		n++
	}
	if n != 40 {
		t.Fatalf("a %d-byte message holds %d IPv4 records, want 40", MaxLen, n)
	}
	b.Reset(V1, 0, MaxLen)
	r6 := goldenRecords()[3]
	for n = 0; b.Add(&r6) == nil; n++ {
	}
	if n != 20 {
		t.Fatalf("holds %d IPv6 records, want 20", n)
	}
	// The count is a byte: a large maxLen still stops at 255 records.
	b.Reset(V0, 0, 65535)
	for n = 0; b.Add(&r) == nil; n++ {
	}
	if n != MaxRecords {
		t.Fatalf("holds %d records, want %d", n, MaxRecords)
	}
	var m Message
	if res := Decode(&m, b.Bytes()); res != (Result{}) || len(m.Records) != MaxRecords {
		t.Fatalf("decode %+v, %d records", res, len(m.Records))
	}
	bad := r
	bad.DAddr = mustAddr("2001:db8::1")
	b.Reset(V1, 0, MaxLen)
	if err := b.Add(&bad); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("mixed families: %v", err)
	}
	if err := b.Add(&Record{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("zero record: %v", err)
	}
}

func TestAllocs(t *testing.T) {
	msg := unhex(t, golden188)
	m := Message{Records: make([]Record, 0, MaxRecords)}
	if n := testing.AllocsPerRun(100, func() { Decode(&m, msg) }); n != 0 {
		t.Errorf("Decode: %v allocs", n)
	}
	var b Builder
	recs := goldenRecords()
	b.Reset(V1, 7, MaxLen)
	if n := testing.AllocsPerRun(100, func() {
		b.Reset(V1, 7, MaxLen)
		for i := range recs {
			_ = b.Add(&recs[i])
		}
		_ = b.Bytes()
	}); n != 0 {
		t.Errorf("Builder: %v allocs", n)
	}
}

func BenchmarkDecode(b *testing.B) {
	var bld Builder
	bld.Reset(V1, 0, MaxLen)
	r := goldenRecords()[0]
	for bld.Add(&r) == nil {
	}
	msg := bld.Bytes()
	m := Message{Records: make([]Record, 0, MaxRecords)}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Decode(&m, msg)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(m.Records)), "ns/record")
}

func BenchmarkEncode(b *testing.B) {
	var bld Builder
	r := goldenRecords()[0]
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		bld.Reset(V1, 0, MaxLen)
		for bld.Add(&r) == nil {
		}
		n = bld.Count()
		_ = bld.Bytes()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
