package header

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// l4ChecksumState says whether the TCP/UDP checksum of an unfragmented packet
// verifies (UDP: over its length field's bytes), and whether it is an absent UDP one.
func l4ChecksumState(frame []byte, p *Parsed) (valid, absent bool) {
	if p.IsFragment || (p.Proto != IPProtoTCP && p.Proto != IPProtoUDP) {
		return false, false
	}
	seg := frame[p.L4Off:p.End]
	alen, so, do := 4, ip4Src, ip4Dst
	if p.IPv6 {
		alen, so, do = 16, ip6Src, ip6Dst
	}
	src := frame[p.L3Off+so : p.L3Off+so+alen]
	dst := frame[p.L3Off+do : p.L3Off+do+alen]
	if p.Proto == IPProtoUDP {
		if binary.BigEndian.Uint16(seg[udpChecksum:]) == 0 {
			return false, true
		}
		seg = seg[:binary.BigEndian.Uint16(seg[udpLength:])]
	}
	return frametest.RefSum(seg, frametest.RefPseudo(src, dst, p.Proto, len(seg))) == 0xffff, false
}

// FuzzRewrite decodes a frame, applies one rewrite (NAT either way, ICMP NAT either
// way, or DecTTL) and checks that the result decodes to exactly the Parsed the rewrite
// left behind, that the Ethernet header and padding are untouched, and that every
// checksum that verified before still verifies: the IPv4 header, the TCP/UDP checksum
// (an absent UDP checksum must have become a valid non-zero one), the ICMP checksum
// and the quoted IPv4 header of a translated ICMP error. A refused rewrite must not
// change the frame.
func FuzzRewrite(f *testing.F) {
	for _, c := range oracleFrames(f) {
		for mode := range uint8(5) {
			f.Add(c.frame, []byte{10, 0, 0, 5, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 5}, uint16(8080), mode)
		}
	}
	for _, c := range natCases(f) {
		a, mode := frametest.A16(c.addr), uint8(1)
		if c.inbound {
			mode = 0
		}
		f.Add(c.in, a[:], c.port, mode)
		var p Parsed
		if p.Decode(c.in) == DropNone && p.Proto == IPProtoUDP {
			// The same datagram without checksum.
			z := append([]byte(nil), c.in...)
			binary.BigEndian.PutUint16(z[p.L4Off+udpChecksum:], 0)
			f.Add(z, a[:], c.port, mode)
		}
	}
	f.Fuzz(func(t *testing.T, frame, addr []byte, port uint16, mode uint8) {
		var p Parsed
		if p.Decode(frame) != DropNone {
			return
		}
		frame = append([]byte(nil), frame...)
		orig := append([]byte(nil), frame...)
		l4Valid, udpAbsent := l4ChecksumState(frame, &p)
		var a [16]byte
		copy(a[:], addr)
		if !p.IPv6 {
			clear(a[4:])
		}
		var ok bool
		switch mode % 5 {
		case 0:
			ok = NATInbound(frame, &p, a, port)
		case 1:
			ok = NATOutbound(frame, &p, a, port)
		case 2:
			ok = NATICMPInbound(frame, &p, a, port)
		case 3:
			ok = NATICMPOutbound(frame, &p, a, port)
		case 4:
			ok = DecTTL(frame, &p)
		}
		if !ok {
			if !bytes.Equal(frame, orig) {
				t.Fatal("a refused rewrite changed the frame")
			}
			return
		}
		if !bytes.Equal(frame[:p.L3Off], orig[:p.L3Off]) || !bytes.Equal(frame[p.End:], orig[p.End:]) {
			t.Fatal("rewrite touched the Ethernet header or the padding")
		}
		var q Parsed
		if d := q.Decode(frame); d != DropNone {
			t.Fatalf("rewritten frame drops as %v", d)
		}
		if q != p {
			t.Fatalf("Parsed out of step with the rewritten frame:%s", diffParsed(p, q))
		}
		if p.IPVersion == 4 && !IPv4(frame[p.L3Off:p.End]).ChecksumValid() {
			t.Fatal("IPv4 header checksum broken")
		}
		valid, absent := l4ChecksumState(frame, &p)
		if l4Valid && !valid {
			t.Fatal("L4 checksum broken")
		}
		if udpAbsent && mode%5 < 2 && (absent || !valid) {
			t.Fatal("absent UDP checksum not replaced by a full one")
		}
		if (mode%5 == 2 || mode%5 == 3) && p.IPVersion == 4 && !IPv4(frame[p.EmbL3Off:p.End]).ChecksumValid() {
			t.Fatal("quoted IPv4 header checksum not recomputed")
		}
	})
}
