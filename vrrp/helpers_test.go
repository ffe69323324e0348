package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// checksumRef is a deliberately plain RFC 1071 checksum of a VRRP message, kept apart
// from the production code (wireguard-go's checksumRef habit): it materialises the
// pseudo-header as bytes, zeroes the checksum field in a copy, and sums 16-bit words in
// a uint64, folding only at the end.
func checksumRef(msg []byte, src, dst netip.Addr) uint16 {
	var buf []byte
	if msg[0]>>4 == 3 {
		if src.Is4() {
			s, d := src.As4(), dst.As4()
			buf = append(buf, s[:]...)
			buf = append(buf, d[:]...)
			buf = append(buf, 0, 112)
			buf = binary.BigEndian.AppendUint16(buf, uint16(len(msg)))
		} else {
			s, d := src.As16(), dst.As16()
			buf = append(buf, s[:]...)
			buf = append(buf, d[:]...)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
			buf = append(buf, 0, 0, 0, 112)
		}
	}
	m := bytes.Clone(msg)
	m[6], m[7] = 0, 0
	buf = append(buf, m...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint64
	for i := 0; i < len(buf); i += 2 {
		s += uint64(buf[i])<<8 | uint64(buf[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ipv4HeaderChecksumRef recomputes an IPv4 header checksum the slow way.
func ipv4HeaderChecksumRef(hdr []byte) uint16 {
	h := bytes.Clone(hdr)
	h[10], h[11] = 0, 0
	var s uint64
	for i := 0; i+1 < len(h); i += 2 {
		s += uint64(h[i])<<8 | uint64(h[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// frame is one captured frame.
type frame struct {
	index    int
	at       time.Time
	data     []byte
	linkType layers.LinkType
}

// readCapture reads a testdata capture, pcap or pcapng by its magic number, with
// gopacket's pcapgo (tests only).
func readCapture(t *testing.T, name string) (frames []frame, format string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	var src source
	if bytes.HasPrefix(raw, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		format = "pcapng"
		src, err = pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
	} else {
		format = "pcap"
		src, err = pcapgo.NewReader(bytes.NewReader(raw))
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for i := 0; ; i++ {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s frame %d: %v", name, i, err)
		}
		frames = append(frames, frame{index: i, at: ci.Timestamp, data: data, linkType: src.LinkType()})
	}
	return frames, format
}

// ipPacket returns the IP packet (header and payload) of an Ethernet frame carrying
// VRRP, using gopacket as an independent decoder, or nil for other frames.
func ipPacket(t *testing.T, f frame) []byte {
	t.Helper()
	pkt := gopacket.NewPacket(f.data, layers.LinkTypeEthernet, gopacket.Default)
	if l, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && l.Protocol == 112 {
		return append(bytes.Clone(l.Contents), l.Payload...)
	}
	if l, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok && l.NextHeader == 112 {
		return append(bytes.Clone(l.Contents), l.Payload...)
	}
	return nil
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func password(s string) (b [8]byte) {
	copy(b[:], s)
	return b
}

func toString(v any) string { return fmt.Sprintf("%+v", v) }
