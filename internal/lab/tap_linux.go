package lab

import (
	"fmt"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// tapSYNs opens an AF_PACKET tap on host's eth0 — the view tcpdump has, frames in
// and out — and collects the first n TCP SYNs without ACK, for at most 20 s. The
// returned stop function closes the tap and returns them formatted like tcpdump -e -n.
func (l *Lab) tapSYNs(host string, n int) (func() []string, error) {
	var fd int
	err := l.Do(host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		return nil, fmt.Errorf("lab: capture on %s: %w", host, err)
	}
	var lines []string
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(fd)
		buf := make([]byte, 65536)
		deadline := time.Now().Add(20 * time.Second)
		for len(lines) < n && time.Now().Before(deadline) {
			select {
			case <-quit:
				return
			default:
			}
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue // timeout: look at quit and the deadline again
			}
			p := gopacket.NewPacket(buf[:k], layers.LayerTypeEthernet, gopacket.Default)
			tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok || !tcp.SYN || tcp.ACK {
				continue
			}
			lines = append(lines, time.Now().Format("15:04:05.000000")+" "+formatFrame(p))
		}
	}()
	return func() []string {
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			close(quit)
			<-done
		}
		return lines
	}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// formatFrame describes an Ethernet frame with IP and TCP or UDP inside in
// tcpdump -e -n's words: "SRCMAC > DSTMAC, ... IP (ttl N) SRC.PORT > DST.PORT: ...".
// (The lab keeps its own formatter: bench imports the lab.)
func formatFrame(p gopacket.Packet) string {
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return "not an Ethernet frame"
	}
	s := fmt.Sprintf("%s > %s, ethertype %s (0x%04x), length %d: ", eth.SrcMAC, eth.DstMAC, eth.EthernetType, uint16(eth.EthernetType), len(p.Data()))
	var src, dst string
	var ttl uint8
	ipv := "IP"
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, dst, ttl = ip.SrcIP.String(), ip.DstIP.String(), ip.TTL
	case *layers.IPv6:
		src, dst, ttl, ipv = ip.SrcIP.String(), ip.DstIP.String(), ip.HopLimit, "IP6"
	default:
		return s
	}
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		flags := ""
		for _, f := range []struct {
			on bool
			c  string
		}{{l4.FIN, "F"}, {l4.SYN, "S"}, {l4.RST, "R"}, {l4.PSH, "P"}, {l4.ACK, "."}} {
			if f.on {
				flags += f.c
			}
		}
		return s + fmt.Sprintf("%s (ttl %d) %s.%d > %s.%d: Flags [%s], seq %d, length %d", ipv, ttl, src, l4.SrcPort, dst, l4.DstPort, flags, l4.Seq, len(l4.Payload))
	case *layers.UDP:
		return s + fmt.Sprintf("%s (ttl %d) %s.%d > %s.%d: UDP, length %d", ipv, ttl, src, l4.SrcPort, dst, l4.DstPort, len(l4.Payload))
	}
	return s + fmt.Sprintf("%s (ttl %d) %s > %s", ipv, ttl, src, dst)
}
