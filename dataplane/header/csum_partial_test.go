package header

import (
	"encoding/binary"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

func TestCompleteChecksum(t *testing.T) {
	for _, tt := range []struct {
		name  string
		frame []byte
		field int
	}{
		{"udp4", frametest.UDP4(t, frametest.Opts{Payload: 3}, "198.19.0.7", "198.18.0.100", 1, 2), udpChecksum},
		{"tcp6 tagged", frametest.TCP6(t, frametest.Opts{VLAN: 5, Payload: 5, Flags: TCPFlagACK}, "2001:2::2", "2001:2::100", 40000, 80), tcpChecksum},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.frame
			for len(b) < EthernetMinFrame {
				b = append(b, 0) // padding must not enter the sum
			}
			var p Parsed
			if p.Decode(b) != DropNone {
				t.Fatal("decode")
			}
			src, dst := p.Src[:4], p.Dst[:4]
			if p.IPv6 {
				src, dst = p.Src[:], p.Dst[:]
			}
			l4 := b[p.L4Off:p.End]
			// What a sender leaves for offload: the folded pseudo-header sum.
			binary.BigEndian.PutUint16(l4[tt.field:], PseudoHeaderSum(src, dst, p.Proto, uint32(len(l4))))
			CompleteChecksum(b, &p)
			if s := Checksum(l4, PseudoHeaderSum(src, dst, p.Proto, uint32(len(l4)))); s != 0xffff {
				t.Fatalf("checksum does not verify: sum %#04x", s)
			}
		})
	}
}
