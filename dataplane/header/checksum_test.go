package header

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2100)
	for i := 0; i < 3000; i++ {
		n := rng.IntN(2000)
		off := rng.IntN(8) // unaligned starts too
		b := buf[off : off+n]
		switch i % 10 {
		case 0:
			for j := range b {
				b[j] = 0xff
			}
		case 1:
			clear(b)
		default:
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		initial := uint16(rng.Uint32())
		if got, want := Checksum(b, initial), frametest.RefSum(b, initial); got != want {
			t.Fatalf("len %d off %d initial %#04x: got %#04x, want %#04x", n, off, initial, got, want)
		}
	}
}

func TestChecksumKnownVectors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16 // sum, not inverted
	}{
		{"empty", nil, 0},
		{"odd byte", []byte{0xab}, 0xab00},
		// RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
		{"rfc1071", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0xddf2},
		{"carry", []byte{0xff, 0xff, 0x00, 0x01}, 0x0001},
		// A classic IPv4 header with its checksum b861 verifies to ffff.
		{"ipv4 header", []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}, 0xffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Checksum(tt.in, 0); got != tt.want {
				t.Errorf("got %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		n := 4
		if i%2 == 1 {
			n = 16
		}
		src, dst := make([]byte, n), make([]byte, n)
		for j := range src {
			src[j], dst[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		proto := uint8(rng.Uint32())
		length := rng.IntN(1 << 16)
		if got, want := PseudoHeaderSum(src, dst, proto, uint32(length)), frametest.RefPseudo(src, dst, proto, length); got != want {
			t.Fatalf("%x %x %d %d: got %#04x, want %#04x", src, dst, proto, length, got, want)
		}
	}
}

// TestChecksumUpdate checks each RFC 1624 helper against a full recompute after the
// change, on random packets.
func TestChecksumUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 3000; i++ {
		b := make([]byte, 8+2*rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		// Field at 0..2 holds the checksum over the whole b.
		binary.BigEndian.PutUint16(b, 0)
		binary.BigEndian.PutUint16(b, ^frametest.RefSum(b, 0))
		hc := binary.BigEndian.Uint16(b)
		pos := 2 + 2*rng.IntN((len(b)-6)/2)
		var got uint16
		switch i % 3 {
		case 0:
			from := binary.BigEndian.Uint16(b[pos:])
			to := uint16(rng.Uint32())
			got = ChecksumUpdate16(hc, from, to)
			binary.BigEndian.PutUint16(b[pos:], to)
		case 1:
			from := binary.BigEndian.Uint32(b[pos:])
			to := rng.Uint32()
			got = ChecksumUpdate32(hc, from, to)
			binary.BigEndian.PutUint32(b[pos:], to)
		case 2:
			to := make([]byte, 4)
			if len(b)-pos >= 16 && rng.IntN(2) == 0 {
				to = make([]byte, 16)
			}
			for j := range to {
				to[j] = byte(rng.Uint32())
			}
			got = ChecksumUpdateBytes(hc, b[pos:pos+len(to)], to)
			copy(b[pos:], to)
		}
		binary.BigEndian.PutUint16(b, 0)
		want := ^frametest.RefSum(b, 0)
		if got != want {
			t.Fatalf("case %d: incremental %#04x, recompute %#04x", i%3, got, want)
		}
	}
}

func TestChecksumAllocs(t *testing.T) {
	b := make([]byte, 1500)
	a4, b4 := []byte{192, 0, 2, 1}, []byte{10, 0, 0, 5}
	var sink uint16
	if n := testing.AllocsPerRun(100, func() {
		sink += Checksum(b, 0)
		sink += PseudoHeaderSum(a4, b4, IPProtoTCP, 1480)
		sink += ChecksumUpdateBytes(sink, a4, b4)
		sink += ChecksumUpdate16(sink, 1, 2)
		sink += ChecksumUpdate32(sink, 1, 2)
	}); n != 0 {
		t.Errorf("checksum helpers allocate %v times per run", n)
	}
	_ = sink
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1500} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i)
		}
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var s uint16
			for b.Loop() {
				s = Checksum(buf, s)
			}
		})
	}
}

func BenchmarkChecksumReference(b *testing.B) {
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(1500)
	var s uint16
	for b.Loop() {
		s = frametest.RefSum(buf, s)
	}
}

// TestIPv4HeaderValidAsSum holds Decode's fast checksum test (little-endian words, no
// byte swaps) to the big-endian sum it replaces: random headers, the same headers
// with their checksum set so they verify, headers of one word short of verifying,
// and the all-zero and all-ones headers.
func TestIPv4HeaderValidAsSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 11))
	check := func(h *[IPv4MinHeaderLen]byte) {
		t.Helper()
		if got, want := ipv4HeaderValid(h), ipv4HeaderSum(h[:]) == 0xffff; got != want {
			t.Fatalf("header %x: ipv4HeaderValid %v, ipv4HeaderSum says %v", h[:], got, want)
		}
	}
	var h [IPv4MinHeaderLen]byte
	check(&h)
	for i := range h {
		h[i] = 0xff
	}
	check(&h)
	valid := 0
	for range 200000 {
		for i := range h {
			h[i] = byte(rng.Uint32())
		}
		check(&h)
		binary.BigEndian.PutUint16(h[ip4Checksum:], 0)
		binary.BigEndian.PutUint16(h[ip4Checksum:], ^ipv4HeaderSum(h[:]))
		check(&h)
		if ipv4HeaderValid(&h) {
			valid++
		}
		w := 2 * rng.IntN(IPv4MinHeaderLen/2)
		binary.BigEndian.PutUint16(h[w:], binary.BigEndian.Uint16(h[w:])+1)
		check(&h)
	}
	if valid != 200000 {
		t.Fatalf("%d of 200000 headers with their checksum set verify", valid)
	}
}
