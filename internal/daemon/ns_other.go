//go:build !linux

package daemon

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

func solicit(ifi *net.Interface, target netip.Addr, timeout time.Duration) (net.HardwareAddr, error) {
	return nil, errors.ErrUnsupported
}
