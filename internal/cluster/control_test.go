package cluster

import (
	"errors"
	"reflect"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	msgs := []ctlMsg{
		{Type: ctlHeartbeat, NodeID: "dir1", Incarnation: 1 << 60, State: StateAnnounced, Digest: [16]byte{1, 2, 3},
			SentMsgs: 7, SentRecords: 280, Health: 99, SyncID: 4, PushTarget: "dir3", PushReqID: 12, PushPort: 40123},
		{Type: ctlBulkReq, NodeID: "dir3", Incarnation: 5, ReqID: 12, Seq: 3},
		{Type: ctlBulkDone, NodeID: "dir1", Incarnation: 1 << 60, ReqID: 12, Target: "dir3", Count: 100000, PushPort: 40123},
		{Type: ctlBulkDone, NodeID: "dir1", Incarnation: 1 << 60, ReqID: 13, Target: "dir3", Count: 5}, // an older peer's: no port
	}
	for _, key := range [][]byte{nil, []byte("k")} {
		for _, m := range msgs {
			b := encodeControl(nil, &m, key)
			var got ctlMsg
			if err := decodeControl(&got, b, key); err != nil {
				t.Fatalf("key %q %+v: %v", key, m, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\nsent %+v\ngot  %+v", m, got)
			}
		}
	}
	b := encodeControl(nil, &msgs[0], []byte("k"))
	var got ctlMsg
	for name, tc := range map[string]struct {
		b    []byte
		key  []byte
		want error
	}{
		"wrong key":        {b, []byte("j"), errCtlAuth},
		"signed, no key":   {b, nil, errCtlAuth},
		"unsigned, key":    {encodeControl(nil, &msgs[0], nil), []byte("k"), errCtlAuth},
		"tampered":         {func() []byte { c := append([]byte{}, b...); c[10] ^= 1; return c }(), []byte("k"), errCtlAuth},
		"version 2":        {func() []byte { c := append([]byte{}, b...); c[4] = 2; return c }(), []byte("k"), errCtlVersion},
		"not gvs":          {[]byte("GVSX\x01\x01"), nil, errCtlMalformed},
		"truncated TLV":    {b[:len(b)-5], []byte("k"), errCtlMalformed},
		"no node id":       {[]byte("GVSC\x01\x01"), nil, errCtlMalformed},
		"unknown type 9":   {[]byte("GVSC\x01\x09"), nil, errCtlMalformed},
		"bad state value":  {[]byte("GVSC\x01\x01\x03\x00\x01\x09"), nil, errCtlMalformed},
		"3-byte push port": {[]byte("GVSC\x01\x03\x0f\x00\x03\x01\x02\x03"), nil, errCtlMalformed},
	} {
		if err := decodeControl(&got, tc.b, tc.key); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// Unknown TLVs are skipped (a later version may add fields).
	ext := encodeControl(nil, &msgs[1], nil)
	ext = append(ext, 200, 0, 3, 'x', 'y', 'z')
	if err := decodeControl(&got, ext, nil); err != nil || got.ReqID != 12 {
		t.Fatalf("with an unknown TLV: %v %+v", err, got)
	}
}

// FuzzControl: decoding any datagram never panics, and whatever decodes re-encodes to
// a datagram that decodes to the same message.
func FuzzControl(f *testing.F) {
	f.Add(encodeControl(nil, &ctlMsg{Type: ctlHeartbeat, NodeID: "d1", Incarnation: 1, Digest: [16]byte{9}}, nil))
	f.Add(encodeControl(nil, &ctlMsg{Type: ctlBulkDone, NodeID: "d2", Incarnation: 2, ReqID: 3, Target: "d3", Count: 4}, nil))
	f.Add(encodeControl(nil, &ctlMsg{Type: ctlBulkDone, NodeID: "d2", Incarnation: 2, ReqID: 3, Target: "d3", Count: 4, PushPort: 40001}, nil))
	f.Add(encodeControl(nil, &ctlMsg{Type: ctlBulkReq, NodeID: "d3", Incarnation: 3, ReqID: 3}, []byte("k")))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m, again ctlMsg
		if decodeControl(&m, b, nil) != nil {
			return
		}
		if err := decodeControl(&again, encodeControl(nil, &m, nil), nil); err != nil {
			t.Fatalf("re-encoded %+v: %v", m, err)
		}
		// Fields a type does not carry are dropped by the encoder.
		switch m.Type {
		case ctlHeartbeat:
			m.ReqID, m.Target, m.Count = 0, "", 0
			if m.PushTarget == "" {
				m.PushReqID, m.PushPort = 0, 0
			}
		default:
			m.State, m.Digest, m.SentMsgs, m.SentRecords, m.Health, m.SyncID, m.PushTarget, m.PushReqID = 0, [16]byte{}, 0, 0, 0, 0, "", 0
			if m.Type == ctlBulkReq {
				m.Count, m.PushPort = 0, 0
			}
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip:\nfirst %+v\nagain %+v", m, again)
		}
	})
}
