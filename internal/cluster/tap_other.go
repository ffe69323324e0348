//go:build !linux

package cluster

import (
	"errors"
	"fmt"
	"net/netip"
)

// TAP is the announcement device; it exists only on Linux.
type TAP struct{}

var _ Routes = (*TAP)(nil)

// ErrPersistentDevice is returned by OpenTAP on Linux for a persistent device.
var ErrPersistentDevice = errors.New("device is persistent")

// OpenTAP fails outside Linux: the announcement needs a TAP device and rtnetlink.
func OpenTAP(name string, table, proto int) (*TAP, error) {
	return nil, fmt.Errorf("cluster: announce device %q: %w", name, errors.ErrUnsupported)
}

func (t *TAP) Name() string                { return "" }
func (t *TAP) Add(vip netip.Addr) error    { return errors.ErrUnsupported }
func (t *TAP) Delete(vip netip.Addr) error { return errors.ErrUnsupported }
func (t *TAP) Close() error                { return nil }
