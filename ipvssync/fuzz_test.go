package ipvssync

import (
	"reflect"
	"testing"
)

// FuzzDecode checks, for any datagram: Decode does not panic; it never reports more
// records (read, skipped and lost) than the header announces; every record read has
// valid addresses of one family and re-encodes, as gvs sends it (no options, no
// hashed or sequence flags), into a message that decodes to the same records.
// Seeds: testdata/fuzz/FuzzDecode (see testdata/README.md) and the vectors below.
func FuzzDecode(f *testing.F) {
	f.Add(unhex(f, golden188))
	f.Add(unhex(f, goldenV0))
	f.Add(msgV1(2, append(v4rec(0, 6, 42, 0x83, 1, 1, 0x40|9, 4, 1, 2, 3, 4), 0, 0), v4rec(0, 6, 36, 0x83, 1, 2)))
	f.Add(msgV1(1, v4rec(0, 6, 44, 0x683, 1, 1, OptPEName, 2, 's', 'i', OptPEData, 2, 1, 2)))
	f.Add([]byte{0, 0, 0, 4})
	m := Message{Records: make([]Record, 0, MaxRecords)}
	var again Message
	var b Builder
	f.Fuzz(func(t *testing.T, data []byte) {
		res := Decode(&m, data)
		if res.Drop == ReasonShort || res.Drop == ReasonSizeMismatch {
			if len(m.Records) != 0 || res.Lost != 0 {
				t.Fatalf("dropped datagram yields %d records, %d lost", len(m.Records), res.Lost)
			}
			return
		}
		count := int(data[0])
		if m.Version == V1 {
			count = int(data[4])
		}
		if n := len(m.Records) + res.SkippedTotal() + res.Lost; n > count {
			t.Fatalf("%d records read + %d skipped + %d lost > count %d", len(m.Records), res.SkippedTotal(), res.Lost, count)
		}
		if res.Drop == ReasonNone && len(m.Records)+res.SkippedTotal() != count {
			t.Fatalf("clean decode of %d+%d records, count %d", len(m.Records), res.SkippedTotal(), count)
		}
		b.Reset(m.Version, m.SyncID, 65535)
		want := make([]Record, len(m.Records))
		for i, r := range m.Records {
			if !r.CAddr.IsValid() || r.CAddr.Is6() != r.VAddr.Is6() || r.CAddr.Is6() != r.DAddr.Is6() {
				t.Fatalf("record %d has addresses %v %v %v", i, r.CAddr, r.VAddr, r.DAddr)
			}
			if err := b.Add(&r); err != nil {
				t.Fatalf("re-encode record %d: %v", i, err)
			}
			r.Flags &^= FlagHashed | FlagSeqMask
			if m.Version == V0 {
				r.Flags &= 0xffff
			}
			r.HasSeq, r.InSeq, r.OutSeq, r.PEName, r.PEData = false, Seq{}, Seq{}, nil, nil
			want[i] = r
		}
		if res := Decode(&again, b.Bytes()); res != (Result{}) {
			t.Fatalf("re-encoded message decodes with %+v", res)
		}
		if len(want) == 0 && len(again.Records) == 0 {
			return
		}
		if !reflect.DeepEqual(want, again.Records) {
			t.Fatalf("re-encoded records differ:\ngot  %+v\nwant %+v", again.Records, want)
		}
	})
}
