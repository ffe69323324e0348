//go:build !linux

package daemon

import (
	"errors"
	"net"
	"net/netip"
)

// garpSender needs AF_PACKET (Linux).
type garpSender struct{}

func openGARP(ifi *net.Interface) (*garpSender, error) {
	return nil, errors.New("gratuitous ARP needs Linux")
}

func (g *garpSender) send(vips []netip.Addr) error { return errors.ErrUnsupported }

func (g *garpSender) close() {}
