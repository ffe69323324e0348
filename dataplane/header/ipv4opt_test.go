package header

import (
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// scanIPv4OptionsRef is the slow reference: it cuts the options into a list first,
// exactly as RFC 791 §3.1 describes them, then looks at the list.
func scanIPv4OptionsRef(opts []byte) (sourceRoute, ok bool) {
	type opt struct {
		typ  byte
		data []byte
	}
	var list []opt
	rest := opts
	for len(rest) > 0 {
		t := rest[0]
		if t == IPv4OptEnd {
			break
		}
		if t == IPv4OptNOP {
			list = append(list, opt{typ: t})
			rest = rest[1:]
			continue
		}
		if len(rest) < 2 || int(rest[1]) < 2 || int(rest[1]) > len(rest) {
			return false, false
		}
		list = append(list, opt{typ: t, data: rest[2:rest[1]]})
		rest = rest[rest[1]:]
	}
	for _, o := range list {
		if o.typ == IPv4OptLSRR || o.typ == IPv4OptSSRR {
			sourceRoute = true
		}
	}
	return sourceRoute, true
}

func route(typ uint8) layers.IPv4Option {
	// One hop, pointer at the first address (RFC 791: the pointer starts at 4).
	return layers.IPv4Option{OptionType: typ, OptionLength: 7, OptionData: []byte{4, 198, 18, 0, 9}}
}

// TestDecodeSourceRoute: frames built by gopacket with LSRR or SSRR among other
// options are flagged, the same options without a source route are not, and a
// broken option length is a drop, as in ip_options_compile.
func TestDecodeSourceRoute(t *testing.T) {
	rr := layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}} // record route
	nop := layers.IPv4Option{OptionType: IPv4OptNOP}
	for _, tc := range []struct {
		name string
		opts []layers.IPv4Option
		want bool
	}{
		{"none", nil, false},
		{"record route", []layers.IPv4Option{rr}, false},
		{"nop", []layers.IPv4Option{nop, nop, nop, nop}, false},
		{"lsrr", []layers.IPv4Option{route(IPv4OptLSRR)}, true},
		{"ssrr", []layers.IPv4Option{route(IPv4OptSSRR)}, true},
		{"nop then lsrr", []layers.IPv4Option{nop, route(IPv4OptLSRR)}, true},
		{"rr then ssrr", []layers.IPv4Option{rr, route(IPv4OptSSRR)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frametest.TCP4(t, frametest.Opts{IPv4Options: tc.opts}, "198.51.100.7", "192.0.2.10", 40000, 80)
			var p Parsed
			if d := p.Decode(f); d != DropNone {
				t.Fatalf("Decode = %v", d)
			}
			if p.SourceRoute != tc.want {
				t.Errorf("SourceRoute = %v, want %v", p.SourceRoute, tc.want)
			}
			if !p.HasPorts || p.DstPort != 80 {
				t.Errorf("the TCP header after the options was not found: %+v", p)
			}
		})
	}

	f := frametest.TCP4(t, frametest.Opts{IPv4Options: []layers.IPv4Option{rr}}, "198.51.100.7", "192.0.2.10", 40000, 80)
	f[EthernetHeaderLen+IPv4MinHeaderLen+1] = 1 // record route of length 1
	ip := IPv4(f[EthernetHeaderLen:])
	ip.SetChecksum(0)
	ip.SetChecksum(^Checksum(ip[:ip.HeaderLen()], 0))
	var p Parsed
	if d := p.Decode(f); d != DropIPv4BadOptions {
		t.Errorf("option length 1: Decode = %v, want %v", d, DropIPv4BadOptions)
	}
}

func TestScanIPv4Options(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []byte
		sr, ok bool
	}{
		{"empty", nil, false, true},
		{"end", []byte{0, 131, 1, 1}, false, true}, // padding after End is not read
		{"lsrr", []byte{131, 7, 4, 1, 2, 3, 4, 0}, true, true},
		{"ssrr after nop", []byte{1, 137, 3, 4}, true, true},
		{"length 0", []byte{7, 0, 0, 0}, false, false},
		{"length past the end", []byte{7, 9, 4, 0}, false, false},
		{"type without length", []byte{1, 1, 1, 7}, false, false},
		{"lsrr cut short", []byte{131, 8, 4, 1, 2, 3, 4}, false, false},
	} {
		sr, ok := scanIPv4Options(tc.opts)
		if sr != tc.sr || ok != tc.ok {
			t.Errorf("%s: scanIPv4Options(%x) = %v, %v, want %v, %v", tc.name, tc.opts, sr, ok, tc.sr, tc.ok)
		}
	}
}

// FuzzIPv4Options checks the option walk against the reference on any bytes up to
// the 40 an IPv4 header can carry, and that it never reads past them.
func FuzzIPv4Options(f *testing.F) {
	f.Add([]byte{131, 7, 4, 198, 18, 0, 9, 0}) // LSRR, one hop, End
	f.Add([]byte{1, 137, 7, 4, 198, 18, 0, 9}) // NOP, SSRR
	f.Add([]byte{7, 7, 4, 0, 0, 0, 0, 0})      // record route
	f.Add([]byte{68, 4, 5, 0})                 // timestamp, no room for one
	f.Add([]byte{7, 1, 0, 0})                  // bad length
	f.Fuzz(func(t *testing.T, opts []byte) {
		if len(opts) > IPv4MaxHeaderLen-IPv4MinHeaderLen {
			opts = opts[:IPv4MaxHeaderLen-IPv4MinHeaderLen]
		}
		sr, ok := scanIPv4Options(opts)
		rsr, rok := scanIPv4OptionsRef(opts)
		if ok != rok || (ok && sr != rsr) {
			t.Fatalf("scanIPv4Options(%x) = %v, %v; reference %v, %v", opts, sr, ok, rsr, rok)
		}
	})
}
