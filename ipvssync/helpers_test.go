package ipvssync

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// unhex reads bytes written as hex with any spacing and "|" separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

var mustAddr = netip.MustParseAddr

// golden188 is docs/cluster.md's worked example, written out by hand from the layout
// (Appendix A of the design): syncid 7, four records.
const golden188 = `
00 07 00 bc 04 01 00 00
00 06 00 24 | 00 00 00 83 | 00 01 | a1 70 | 00 50 | 00 50 | 00 00 00 00 | 00 00 03 84 | c6 13 00 02 | c6 12 64 01 | c6 12 00 05
00 06 00 24 | 00 00 00 83 | 00 03 | a1 71 | 00 50 | 00 50 | 00 00 00 00 | 00 00 00 3c | c6 13 00 03 | c6 12 64 01 | c6 12 00 06
00 06 00 24 | 00 00 10 03 | 00 01 | 00 00 | 00 50 | 00 50 | 00 00 00 00 | 00 00 01 68 | c6 13 00 02 | c6 12 64 01 | c6 12 00 05
01 11 00 48 | 00 00 01 00 | 00 00 | 14 e9 | 00 35 | 00 35 | 00 00 00 00 | 00 00 01 2c
  20 01 0d b8 00 19 00 00 00 00 00 00 00 00 00 02
  20 01 0d b8 01 00 00 00 00 00 00 00 00 00 00 01
  20 01 0d b8 00 18 00 00 00 00 00 00 00 00 00 05
`

// goldenRecords are golden188's records.
func goldenRecords() []Record {
	return []Record{
		{Protocol: ProtoTCP, Flags: FwdRoute | FlagNoOutput, State: TCPEstablished, CPort: 41328, VPort: 80, DPort: 80,
			Timeout: 900, CAddr: mustAddr("198.19.0.2"), VAddr: mustAddr("198.18.100.1"), DAddr: mustAddr("198.18.0.5")},
		{Protocol: ProtoTCP, Flags: FwdRoute | FlagNoOutput, State: TCPSynRecv, CPort: 41329, VPort: 80, DPort: 80,
			Timeout: 60, CAddr: mustAddr("198.19.0.3"), VAddr: mustAddr("198.18.100.1"), DAddr: mustAddr("198.18.0.6")},
		{Protocol: ProtoTCP, Flags: FwdRoute | FlagTemplate, State: TemplateAssured, CPort: 0, VPort: 80, DPort: 80,
			Timeout: 360, CAddr: mustAddr("198.19.0.2"), VAddr: mustAddr("198.18.100.1"), DAddr: mustAddr("198.18.0.5")},
		{Protocol: ProtoUDP, Flags: FwdMasq | FlagInactive, State: UDPNormal, CPort: 5353, VPort: 53, DPort: 53,
			Timeout: 300, CAddr: mustAddr("2001:db8:19::2"), VAddr: mustAddr("2001:db8:100::1"), DAddr: mustAddr("2001:db8:18::5")},
	}
}

// v4rec is one hand-laid v1 IPv4 record with the given type, declared size and
// trailing option bytes (padding is the caller's).
func v4rec(typ byte, proto byte, size int, flags uint32, state uint16, cport uint16, opts ...byte) []byte {
	b := []byte{typ, proto, byte(size >> 8), byte(size),
		byte(flags >> 24), byte(flags >> 16), byte(flags >> 8), byte(flags),
		byte(state >> 8), byte(state), byte(cport >> 8), byte(cport), 0, 80, 0, 80,
		0, 0, 0, 0, 0, 0, 0x03, 0x84,
		198, 19, 0, 2, 198, 18, 100, 1, 198, 18, 0, 5}
	return append(b, opts...)
}

// msgV1 prefixes records with a v1 header stating count and the true size.
func msgV1(count int, recs ...[]byte) []byte {
	b := []byte{0, 7, 0, 0, byte(count), 1, 0, 0}
	for _, r := range recs {
		b = append(b, r...)
	}
	b[2], b[3] = byte(len(b)>>8), byte(len(b))
	return b
}
