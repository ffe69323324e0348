package lab

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// ipv4 builds an IPv4 packet (20-byte header, checksum left zero: decapIPIP does
// not read it; the kernel checks the outer one, and the inner one on tun0).
func ipv4(proto byte, src, dst [4]byte, payload []byte) []byte {
	b := make([]byte, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = proto
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	copy(b[20:], payload)
	return b
}

func TestDecapIPIP(t *testing.T) {
	client, vip := [4]byte{198, 18, 0, 2}, [4]byte{198, 18, 0, 100}
	dip, rip := [4]byte{198, 18, 0, 3}, [4]byte{198, 18, 0, 5}
	inner := ipv4(6, client, vip, make([]byte, 20))
	valid := ipv4(protoIPIP, dip, rip, inner)
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"valid", valid, true},
		{"trailing bytes after the outer packet", append(bytes.Clone(valid), 0, 0, 0), true},
		{"outer options", func() []byte {
			b := ipv4(protoIPIP, dip, rip, append(make([]byte, 4), inner...)) // 4 bytes of NOP options
			b[0] = 0x46
			return b
		}(), true},
		{"not IPIP", mutate(func(b []byte) []byte { b[ipv4Protocol] = 17; return b }), false},
		{"outer IPv6 version", mutate(func(b []byte) []byte { b[0] = 0x65; return b }), false},
		{"outer IHL too small", mutate(func(b []byte) []byte { b[0] = 0x44; return b }), false},
		{"outer fragment", mutate(func(b []byte) []byte { b[ipv4FlagsFrag] = 0x20; return b }), false},
		{"outer length beyond data", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)+1))
			return b
		}), false},
		{"truncated inner", valid[:30], false},
		{"inner not IPv4", mutate(func(b []byte) []byte { b[20] = 0x60; return b }), false},
		{"inner length beyond outer", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[22:], uint16(len(inner)+1))
			return b
		}), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decapIPIP(tc.pkt)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if ok && !bytes.Equal(got, inner) {
				t.Fatalf("inner % x, want % x", got, inner)
			}
		})
	}
}

func FuzzDecapIPIP(f *testing.F) {
	inner := ipv4(6, [4]byte{198, 18, 0, 2}, [4]byte{198, 18, 0, 100}, make([]byte, 20))
	f.Add(ipv4(protoIPIP, [4]byte{198, 18, 0, 3}, [4]byte{198, 18, 0, 5}, inner)) // a director's SYN
	f.Add([]byte{0x45, 0, 0, 20})                                                 // header cut short
	f.Fuzz(func(t *testing.T, pkt []byte) {
		got, ok := decapIPIP(pkt)
		if !ok {
			return
		}
		// The inner packet lies within the outer one and is IPv4 of its own length.
		outerLen := int(binary.BigEndian.Uint16(pkt[2:]))
		if len(got) < ipv4MinHeaderLen || got[0]>>4 != 4 || int(binary.BigEndian.Uint16(got[2:])) != len(got) {
			t.Fatalf("inner % x", got)
		}
		if off := int(pkt[0]&0x0f) * 4; off+len(got) > outerLen || !bytes.Equal(pkt[off:off+len(got)], got) {
			t.Fatalf("inner not inside the outer packet")
		}
	})
}
