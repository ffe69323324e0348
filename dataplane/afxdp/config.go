package afxdp

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/gvs-lb/gvs/dataplane/afpacket"
)

// AttachMode is where the XDP program runs.
type AttachMode int

const (
	_ AttachMode = iota
	// AttachAuto is driver mode where the driver supports XDP, generic mode
	// otherwise.
	AttachAuto
	// AttachDriver runs the program in the driver (native XDP) or fails.
	AttachDriver
	// AttachGeneric runs it after the kernel built an skb (any interface; slower).
	AttachGeneric
)

// BindMode is how the sockets share frames with the driver.
type BindMode int

const (
	_ BindMode = iota
	// BindAuto is zero-copy where the driver supports it, copy mode otherwise.
	BindAuto
	// BindZeroCopy fails unless the driver supports zero-copy (XDP_ZEROCOPY).
	BindZeroCopy
	// BindCopy copies every frame between the driver and the UMEM (XDP_COPY).
	BindCopy
)

// Checksums says whether received TCP/UDP frames are checked for a checksum a
// local sender left partial (see the package doc).
type Checksums int

const (
	_ Checksums = iota
	// ChecksumsAuto checks on veth (whose peers are local stacks) only.
	ChecksumsAuto
	ChecksumsOn
	ChecksumsOff
)

// Config configures Open. The zero Config is valid: every zero field takes the
// default named in its comment.
type Config struct {
	// Filter is what the program redirects from the start (VIPs, NAT real
	// servers); nil redirects nothing until SetFilter. ARP/NDP are redirected for
	// the VIPs only; VRRP per RedirectVRRP.
	Filter *afpacket.Filter
	// Queues is the number of receive queues to serve, from queue 0; 0: all of the
	// interface's (ETHTOOL_GCHANNELS; 1 where the driver does not say).
	Queues int
	// Frames is the number of UMEM chunks per socket, at least twice RingSize; 0:
	// twice RingSize. Memory: Frames × FrameSize per queue (32 MiB by default).
	Frames int
	// FrameSize is a UMEM chunk's size: 2048 (0) or 4096. Frames longer than a chunk
	// less the kernel's 256 bytes of headroom (1792 bytes: MTU 1500 with room to
	// spare, not jumbo frames) are dropped by the kernel and counted
	// (Stats.KernelRXDropped).
	FrameSize int
	// RingSize is the number of descriptors of each ring, a power of two; 0: 8192.
	// Size the RX ring by time (issue 11): at least the peak rate of one queue times
	// the longest stall its worker must ride out (8192 frames are 20 ms at 0.4 Mpps;
	// on a real NIC at several Mpps, more).
	RingSize int
	// BatchSize is the links' batch size; 0: 64.
	BatchSize int
	// MaxAddrs is the capacity of each address map (IPv4, IPv6): how many distinct
	// VIPs plus NAT real servers of a family the program can redirect; 0:
	// DefaultMaxAddrs. A filter with more is refused (ErrTooManyAddrs), never cut.
	MaxAddrs int
	Attach   AttachMode // 0: AttachAuto
	Bind     BindMode   // 0: BindAuto
	// Checksums; 0: ChecksumsAuto.
	Checksums Checksums
	// ReplaceForeign replaces an XDP program that is not gvs's instead of refusing
	// the interface (ErrForeignProgram).
	ReplaceForeign bool
	// RedirectVRRP also redirects VRRP (IP protocol 112). Off by default: gvs's
	// VRRP transport is a kernel raw socket, which never sees a redirected frame.
	RedirectVRRP bool
	// Logger receives attach and detach events; nil discards.
	Logger *slog.Logger
}

// DefaultMaxAddrs is the default capacity of each address map: 65536 IPv4 and
// 65536 IPv6 addresses (about 6 MiB of kernel memory for both).
const DefaultMaxAddrs = 1 << 16

func (c *Config) defaults() error {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.RingSize, 8192)
	set(&c.Frames, 2*c.RingSize)
	set(&c.FrameSize, 2048)
	set(&c.BatchSize, 64)
	set(&c.MaxAddrs, DefaultMaxAddrs)
	if c.Attach == 0 {
		c.Attach = AttachAuto
	}
	if c.Bind == 0 {
		c.Bind = BindAuto
	}
	if c.Checksums == 0 {
		c.Checksums = ChecksumsAuto
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.FrameSize != 2048 && c.FrameSize != 4096:
		return fmt.Errorf("frame size %d: want 2048 or 4096", c.FrameSize)
	case c.RingSize < 2 || c.RingSize&(c.RingSize-1) != 0:
		return fmt.Errorf("ring size %d: want a power of two", c.RingSize)
	case c.Frames < 2*c.RingSize:
		return fmt.Errorf("%d frames for rings of %d: want at least twice the ring size", c.Frames, c.RingSize)
	case c.Queues < 0 || c.BatchSize < 1 || c.MaxAddrs < 1:
		return errors.New("negative queues, batch size or map size")
	}
	return nil
}

// ErrForeignProgram is returned by Open when the interface already runs an XDP
// program that is not gvs's (or is another running gvs's); the error is a
// *ForeignProgramError naming it.
var ErrForeignProgram = errors.New("afxdp: the interface already has an XDP program")

// ForeignProgramError names the XDP program that keeps Open from attaching.
type ForeignProgramError struct {
	Interface string
	Name      string // the program's name as the kernel knows it (15 bytes at most)
	ID        uint32
	Mode      string // "driver", "generic" or "offload"
	Running   bool   // a gvs program held by a running process (another gvs)
}

func (e *ForeignProgramError) Error() string {
	if e.Running {
		return fmt.Sprintf("afxdp: %s: another gvs is running on it (XDP program %q, ID %d, %s mode)", e.Interface, e.Name, e.ID, e.Mode)
	}
	return fmt.Sprintf("afxdp: %s already has XDP program %q (ID %d, %s mode) that is not gvs's; remove it (ip link set dev %s xdp off) or allow gvs to replace it",
		e.Interface, e.Name, e.ID, e.Mode, e.Interface)
}

func (e *ForeignProgramError) Is(target error) bool { return target == ErrForeignProgram }
