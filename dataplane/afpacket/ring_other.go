//go:build !linux

package afpacket

import (
	"errors"
	"fmt"
	"net"

	"github.com/gvs-lb/gvs/dataplane"
)

// Ring is a Link on an AF_PACKET ring; on this platform it cannot be opened.
type Ring struct{}

var _ dataplane.Link = (*Ring)(nil)

// Open fails on this platform with an error satisfying
// errors.Is(err, errors.ErrUnsupported): AF_PACKET and TPACKET rings are Linux
// interfaces. Replay (pcap) and in-memory links work everywhere.
func Open(ifname string, cfg Config) (*Ring, error) {
	return nil, &dataplane.OpError{Op: "open", Link: ifname, Err: errNoRing}
}

var errNoRing = fmt.Errorf("AF_PACKET rings need Linux: %w", errors.ErrUnsupported)

// Name returns "".
func (r *Ring) Name() string { return "" }

// MTU returns 0.
func (r *Ring) MTU() int { return 0 }

// BatchSize implements Link.
func (r *Ring) BatchSize() int { return DefaultBatchSize }

// ReadBatch implements Link; a Ring never opens here, so it is always closed.
func (r *Ring) ReadBatch(frames []dataplane.Frame) (int, error) { return 0, net.ErrClosed }

// WriteBatch implements Link.
func (r *Ring) WriteBatch(frames []dataplane.Frame) (int, error) { return 0, net.ErrClosed }

// Close implements Link.
func (r *Ring) Close() error { return nil }

// SetFilter fails on this platform.
func (r *Ring) SetFilter(f *Filter) error { return &dataplane.OpError{Op: "filter", Err: errNoRing} }

// Steering returns nil: a ring that never opens is in no fanout group.
func (r *Ring) Steering() error { return nil }

// Stats returns zero counters.
func (r *Ring) Stats() (Stats, error) { return Stats{}, nil }
