package header

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode checks Decode's invariants on arbitrary frames: it never panics, the drop
// reason is in range, the offsets are ordered and within the frame, a decode does not
// depend on what the Parsed held before, bytes after the IP packet (Ethernet padding)
// do not change the result, and what Decode accepted passes the header views' own
// validity checks. The seed corpus is in testdata/fuzz/FuzzDecode (see
// testdata/README.md).
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p Parsed
		d := p.Decode(frame)
		checkInvariants(t, &p, frame, d)
		checkSourceTuple(t, &p, frame, d)

		// Same result from a dirty Parsed.
		q := Parsed{L3Off: 99, End: 1 << 20, HasEmbedded: true, EmbL4Off: 7, Proto: 6, HasPorts: true, SrcPort: 1, Src: [16]byte{1}}
		if d2 := q.Decode(frame); d2 != d || q != p {
			t.Fatalf("decode depends on the previous state: %v vs %v:%s", d2, d, diffParsed(q, p))
		}
		if d != DropNone {
			return
		}

		// Trailing bytes after the IP (or ARP) packet are padding and change nothing.
		if p.IPVersion != 0 || p.EtherType == EtherTypeARP {
			padded := append(append([]byte(nil), frame...), 0xa5, 0x5a, 0, 0xff)
			if d2 := q.Decode(padded); d2 != DropNone || q != p {
				t.Fatalf("trailing bytes changed the decode: %v:%s", d2, diffParsed(q, p))
			}
			if d2 := q.Decode(frame[:p.End]); d2 != DropNone || q != p {
				t.Fatalf("cutting at End changed the decode: %v:%s", d2, diffParsed(q, p))
			}
		}

		ip := frame[p.L3Off:p.End]
		switch p.IPVersion {
		case 4:
			if h := IPv4(ip); !h.Valid() || !h.ChecksumValid() || h.Protocol() != p.Proto {
				t.Fatalf("accepted IPv4 header %x", ip[:min(len(ip), IPv4MaxHeaderLen)])
			}
		case 6:
			if h := IPv6(ip); !h.Valid() {
				t.Fatalf("accepted IPv6 header %x", ip[:IPv6HeaderLen])
			}
		}
		if p.NonFirstFragment && (p.HasPorts || p.L4Off != p.PayloadOff) {
			t.Fatal("a non-first fragment has an L4 header")
		}
		if p.HasPorts && !p.NonFirstFragment {
			l4 := frame[p.L4Off:p.End]
			switch p.Proto {
			case IPProtoTCP:
				if h := TCP(l4); !h.Valid() || h.SourcePort() != p.SrcPort || h.DestinationPort() != p.DstPort || p.PayloadOff-p.L4Off != h.HeaderLen() {
					t.Fatalf("accepted TCP header %x", l4[:TCPMinHeaderLen])
				}
			case IPProtoUDP:
				if h := UDP(l4); !p.IsFragment && !h.Valid() {
					t.Fatalf("accepted UDP header %x", l4[:UDPHeaderLen])
				}
			}
		}
		if p.HasEmbedded && !p.IsFragment {
			if p.Proto != IPProtoICMP && p.Proto != IPProtoICMPv6 {
				t.Fatalf("embedded packet in protocol %d", p.Proto)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecode from the frames of the
// decode tests: every well-formed frame of TestDecodeMatchesGopacket and every broken
// one of TestDecodeMalformed. It only runs when asked:
//
//	GVS_WRITE_CORPUS=1 go test ./dataplane/header -run TestWriteFuzzCorpus
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("GVS_WRITE_CORPUS") == "" {
		t.Skip("set GVS_WRITE_CORPUS=1 to regenerate testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(prefix, name string, frame []byte) {
		name = prefix + "-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, strings.ToLower(name))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", frame)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range oracleFrames(t) {
		write("valid", c.name, c.frame)
	}
	for _, c := range malformedCases(t) {
		write("malformed", c.name, c.frame)
	}
}

// checkSourceTuple holds the batch prefetch's quick parse (PeekSourceTuple) to its
// general path and to the real one: whenever both read ports, they read the same source tuple
// (and a TCP segment's flags), and a plain TCP/UDP packet (no IPv6 extension header, not a
// fragment) is always recognised.
func checkSourceTuple(t *testing.T, p *Parsed, frame []byte, d Drop) {
	var addr, gaddr [16]byte
	proto, v6, port, flags, ok := PeekSourceTuple(frame, &addr)
	if gproto, gv6, gport, gflags, gok := peekSourceTuple(frame, &gaddr); gok != ok || (ok && (gproto != proto || gv6 != v6 || gport != port || gaddr != addr || gflags != flags)) {
		t.Fatalf("PeekSourceTuple = %d %v %x :%d %#x %v, without its fast path %d %v %x :%d %#x %v", proto, v6, addr, port, flags, ok, gproto, gv6, gaddr, gport, gflags, gok)
	}
	if d != DropNone || p.IPVersion == 0 || !p.HasPorts || (p.Proto != IPProtoTCP && p.Proto != IPProtoUDP) {
		return
	}
	plain := !p.IsFragment && (!p.IPv6 || p.L4Off == p.L3Off+IPv6HeaderLen)
	if plain && !ok {
		t.Fatalf("PeekSourceTuple missed a plain %d/%d packet", p.IPVersion, p.Proto)
	}
	if !ok {
		return
	}
	want := p.Src
	if !p.IPv6 {
		clear(want[4:])
	}
	if proto != p.Proto || v6 != p.IPv6 || port != p.SrcPort || addr != want {
		t.Fatalf("PeekSourceTuple = %d %v %x :%d, Decode = %d %v %x :%d", proto, v6, addr, port, p.Proto, p.IPv6, want, p.SrcPort)
	}
	wantFlags := uint8(0)
	if p.Proto == IPProtoTCP {
		wantFlags = p.TCPFlags
	}
	if flags != wantFlags {
		t.Fatalf("PeekSourceTuple's TCP flags %#x, Decode's %#x", flags, wantFlags)
	}
}
