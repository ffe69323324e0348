package lab

import (
	"fmt"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/gvs-lb/gvs/bench"
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
			lines = append(lines, time.Now().Format("15:04:05.000000")+" "+bench.FormatFrame(p, nil))
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
