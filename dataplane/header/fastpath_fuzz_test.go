package header

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// FuzzDecodeFast holds the fast path to the general one: whenever DecodeFast takes a
// frame, the general path decodes it too, without a drop, into exactly the same Parsed;
// and a frame of the fast path's kind that it refuses is one the general path drops
// or decodes as something else (checked on the seeds by TestDecodeFastTakesCommon).
// Seeds: FuzzDecode's corpus (testdata/fuzz/FuzzDecode) and frametest's TCP and UDP
// frames, with their IPv4 header bytes and lengths perturbed by the fuzzer.
func FuzzDecodeFast(f *testing.F) {
	for _, b := range fastSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var fast, gen Parsed
		if !fast.DecodeFast(frame) {
			return
		}
		if d := gen.decodeGeneral(frame); d != DropNone {
			t.Fatalf("fast path took a frame the general path drops (%v)", d)
		}
		if fast != gen {
			t.Fatalf("fast and general decodes differ:%s", diffParsed(fast, gen))
		}
		if why := notFastKind(&fast); why != "" {
			t.Fatalf("fast path took a frame outside its kind: %s", why)
		}
		checkFlow4(t, &fast, frame)
	})
}

// checkFlow4 holds the batch prefetch's peek (PeekFlow4) to DecodeFast on a frame
// DecodeFast took (p): the same 5-tuple and TCP flags, when the frame is one PeekFlow4
// reads.
func checkFlow4(t *testing.T, p *Parsed, frame []byte) {
	proto, src, dst, sport, dport, flags, ok := PeekFlow4(frame)
	if len(frame) < PeekFlow4Len {
		if ok {
			t.Fatalf("PeekFlow4 took a %d-byte frame", len(frame))
		}
		return
	}
	wantFlags := uint8(0)
	if p.Proto == IPProtoTCP {
		wantFlags = p.TCPFlags
	}
	le := binary.LittleEndian
	if !ok || proto != p.Proto || src != le.Uint32(p.Src[:4]) || dst != le.Uint32(p.Dst[:4]) || sport != p.SrcPort || dport != p.DstPort || flags != wantFlags {
		t.Fatalf("PeekFlow4 = %d %#x:%d > %#x:%d %#x %v, DecodeFast %d %v:%d > %v:%d %#x",
			proto, src, sport, dst, dport, flags, ok, p.Proto, p.Src[:4], p.SrcPort, p.Dst[:4], p.DstPort, wantFlags)
	}
}

// notFastKind says what a frame DecodeFast took is that DecodeFast's comment says
// it is not, or "": the data path's common case (dataplane's processFrame) relies on
// these facts without testing them again.
func notFastKind(p *Parsed) string {
	switch {
	case p.IPVersion != 4 || p.IPv6 || p.EtherType != EtherTypeIPv4:
		return "not IPv4"
	case p.HasVLAN:
		return "tagged"
	case p.SourceRoute || p.L4Off-p.L3Off != IPv4MinHeaderLen:
		return "IPv4 options"
	case p.IsFragment:
		return "a fragment"
	case p.Proto != IPProtoTCP && p.Proto != IPProtoUDP || !p.HasPorts:
		return "not TCP or UDP"
	}
	return ""
}

func fastSeeds(tb testing.TB) [][]byte {
	seeds := [][]byte{
		frametest.TCP4(tb, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 80),
		frametest.TCP4(tb, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 1, 443),
		frametest.UDP4(tb, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 7000),
		frametest.UDP4(tb, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 53, 53),
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		if v, ok := corpusBytes(b); ok {
			seeds = append(seeds, v)
		}
	}
	return seeds
}

// TestDecodeFastTakesCommon: the fast path takes plain TCP and UDP over IPv4 (or it
// would be dead code), and leaves tagged, IPv6, optioned and fragmented frames to the
// general path.
func TestDecodeFastTakesCommon(t *testing.T) {
	var p Parsed
	for _, tc := range []struct {
		name  string
		frame []byte
		fast  bool
	}{
		{"tcp4", frametest.TCP4(t, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 80), true},
		{"udp4", frametest.UDP4(t, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 7000), true},
		{"tcp4_vlan", frametest.TCP4(t, frametest.Opts{VLAN: 100}, "198.51.100.7", "192.0.2.10", 40000, 80), false},
		{"tcp6", frametest.TCP6(t, frametest.Opts{Payload: 64}, "2001:db8:1::7", "2001:db8::10", 40000, 80), false},
	} {
		if got := p.DecodeFast(tc.frame); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.name, got, tc.fast)
		}
	}
	// Every seed the fast path takes decodes the same both ways (the fuzz body, run
	// here on the seeds so plain go test covers it).
	for i, b := range fastSeeds(t) {
		var fast, gen Parsed
		if fast.DecodeFast(b) {
			if d := gen.decodeGeneral(b); d != DropNone || fast != gen {
				t.Fatalf("seed %d: fast and general decodes differ (%v):%s", i, d, diffParsed(fast, gen))
			}
			if why := notFastKind(&fast); why != "" {
				t.Fatalf("seed %d: fast path took a frame outside its kind: %s", i, why)
			}
		}
	}
}

// corpusBytes reads a one-value "go test fuzz v1" corpus file holding a []byte.
func corpusBytes(file []byte) ([]byte, bool) {
	lines := strings.SplitN(strings.TrimSpace(string(file)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, false
	}
	v := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(v, "[]byte(") || !strings.HasSuffix(v, ")") {
		return nil, false
	}
	s, err := strconv.Unquote(v[len("[]byte(") : len(v)-1])
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}
