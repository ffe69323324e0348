//go:build !linux

package daemon

import (
	"errors"
	"net/netip"
)

// garpSender needs AF_PACKET (Linux).
type garpSender struct{}

func openGARP(ifi Interface) (Announcer, error) {
	return nil, errors.New("gratuitous ARP needs Linux")
}

func (g *garpSender) Announce(vips []netip.Addr) error { return errors.ErrUnsupported }

func (g *garpSender) Close() error { return nil }
