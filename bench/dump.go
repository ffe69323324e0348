package bench

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// DumpOptions select what Dump prints.
type DumpOptions struct {
	Count   int               // stop after this many printed frames (0 = all)
	SYNOnly bool              // only TCP SYNs without ACK (one line per new connection)
	Names   map[string]string // MAC → name, printed after the destination MAC
}

// Dump prints a pcap in the spirit of `tcpdump -e -n`, decoding with gopacket, so
// the lab and the replay demo can show rewrites on machines without tcpdump. It is
// not on any per-packet path.
func Dump(w io.Writer, r io.Reader, o DumpOptions) error {
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return fmt.Errorf("bench: dump: %w", err)
	}
	n := 0
	for o.Count == 0 || n < o.Count {
		data, ci, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bench: dump: %w", err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if o.SYNOnly {
			tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tcp == nil || !tcp.SYN || tcp.ACK {
				continue
			}
		}
		n++
		fmt.Fprintf(w, "%s %s\n", ci.Timestamp.UTC().Format("15:04:05.000000"), FormatFrame(p, o.Names))
	}
	return nil
}

// FormatFrame renders one decoded frame as a single tcpdump-like line.
func FormatFrame(p gopacket.Packet, names map[string]string) string {
	var b strings.Builder
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return "not an Ethernet frame"
	}
	dst := eth.DstMAC.String()
	if n, ok := names[dst]; ok {
		dst += " (" + n + ")"
	}
	fmt.Fprintf(&b, "%s > %s, ethertype %s (0x%04x), length %d: ", eth.SrcMAC, dst, eth.EthernetType, uint16(eth.EthernetType), len(p.Data()))
	var src, dstIP netip.Addr
	var ttl uint8
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dstIP, _ = netip.AddrFromSlice(ip.DstIP.To4())
		ttl = ip.TTL
		if ip.Protocol == layers.IPProtocolIPv4 {
			fmt.Fprintf(&b, "IP %s > %s: IPIP (ttl %d) ", src, dstIP, ttl)
			if inner, ok := p.Layers()[2].(*layers.IPv4); ok {
				src, _ = netip.AddrFromSlice(inner.SrcIP.To4())
				dstIP, _ = netip.AddrFromSlice(inner.DstIP.To4())
				ttl = inner.TTL
			}
		}
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dstIP, _ = netip.AddrFromSlice(ip.DstIP)
		ttl = ip.HopLimit
	default:
		if arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
			fmt.Fprintf(&b, "ARP op %d %v is-at %v", arp.Operation, netip.AddrFrom4([4]byte(arp.SourceProtAddress)), eth.SrcMAC)
		}
		return b.String()
	}
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		fmt.Fprintf(&b, "IP (ttl %d) %s.%d > %s.%d: Flags [%s], seq %d, length %d", ttl, src, l4.SrcPort, dstIP, l4.DstPort, tcpFlags(l4), l4.Seq, len(l4.Payload))
	case *layers.UDP:
		fmt.Fprintf(&b, "IP (ttl %d) %s.%d > %s.%d: UDP, length %d", ttl, src, l4.SrcPort, dstIP, l4.DstPort, len(l4.Payload))
	default:
		if icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			fmt.Fprintf(&b, "IP (ttl %d) %s > %s: ICMP %s", ttl, src, dstIP, icmp.TypeCode)
		} else if icmp6, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			fmt.Fprintf(&b, "IP6 (hlim %d) %s > %s: ICMP6 %s", ttl, src, dstIP, icmp6.TypeCode)
		} else {
			fmt.Fprintf(&b, "IP (ttl %d) %s > %s", ttl, src, dstIP)
		}
	}
	return b.String()
}

func tcpFlags(t *layers.TCP) string {
	var s []byte
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}} {
		if f.on {
			s = append(s, f.c)
		}
	}
	if t.ACK {
		s = append(s, '.')
	}
	if len(s) == 0 {
		return "none"
	}
	return string(s)
}
