//go:build !linux

package afxdp

import (
	"errors"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
)

// Device is gvs's XDP program on an interface with its sockets; Linux only.
type Device struct{}

// Open fails with errors.ErrUnsupported: AF_XDP is Linux's.
func Open(ifname string, c Config) (*Device, error) {
	return nil, &dataplane.OpError{Op: "open", Link: ifname, Err: errors.ErrUnsupported}
}

// Links returns nothing.
func (d *Device) Links() []dataplane.Link { return nil }

// Mode returns "".
func (d *Device) Mode() string { return "" }

// ZeroCopy returns false.
func (d *Device) ZeroCopy() bool { return false }

// Driver returns "".
func (d *Device) Driver() string { return "" }

// SetFilter fails with errors.ErrUnsupported.
func (d *Device) SetFilter(*afpacket.Filter) error { return errors.ErrUnsupported }

// Close does nothing.
func (d *Device) Close() error { return nil }

// Queues fails with errors.ErrUnsupported.
func Queues(string) (int, error) { return 0, errors.ErrUnsupported }

// Driver fails with errors.ErrUnsupported.
func Driver(string) (string, error) { return "", errors.ErrUnsupported }

// Socket is the link of one receive queue; Linux only (Open never returns one
// elsewhere).
type Socket struct{}

var _ dataplane.Link = (*Socket)(nil)

// ReadBatch fails with errors.ErrUnsupported.
func (s *Socket) ReadBatch([]dataplane.Frame) (int, error) { return 0, errors.ErrUnsupported }

// WriteBatch fails with errors.ErrUnsupported.
func (s *Socket) WriteBatch([]dataplane.Frame) (int, error) { return 0, errors.ErrUnsupported }

// BatchSize returns 1.
func (s *Socket) BatchSize() int { return 1 }

// Close does nothing.
func (s *Socket) Close() error { return nil }

// SetFilter fails with errors.ErrUnsupported.
func (s *Socket) SetFilter(*afpacket.Filter) error { return errors.ErrUnsupported }

// Name returns "".
func (s *Socket) Name() string { return "" }

// Stats fails with errors.ErrUnsupported.
func (s *Socket) Stats() (afpacket.Stats, error) { return afpacket.Stats{}, errors.ErrUnsupported }

// Device returns nil.
func (s *Socket) Device() *Device { return nil }
