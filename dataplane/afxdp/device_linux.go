//go:build linux

package afxdp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"golang.org/x/sys/unix"
)

// Device is gvs's XDP program attached to an interface with one socket per receive
// queue. It is safe for concurrent use. The program is detached when the last
// socket is released (Close, or every socket's Close).
type Device struct {
	name      string
	ifindex   int
	driver    string
	mode      string // "driver" or "generic"
	zerocopy  bool
	checksums bool
	log       *slog.Logger

	maps    *progMaps
	prog    *ebpf.Program
	xdp     link.Link
	sockets []*Socket

	fmu   sync.Mutex   // serialises SetFilter
	mu    sync.Mutex   // guards refs, and maps against teardown
	refs  int          // sockets not yet released
	final ProgramStats // the counters when the program was detached

	// watchQueues' state: when it last looked (monotonic ns since epoch), how often
	// it may, and the no_socket count it last reported.
	epoch       time.Time
	nextWatch   atomic.Int64
	watchEvery  time.Duration
	noSocketLog atomic.Uint64
	ethfd       int // SIOCETHTOOL socket in the interface's namespace
}

// Open attaches gvs's XDP program to the interface ifname and opens a socket on
// each of its receive queues. An XDP program already there is replaced if it is
// gvs's own left over (attached through netlink by an earlier gvs); any other is
// refused with an error wrapping ErrForeignProgram unless c.ReplaceForeign.
func Open(ifname string, c Config) (*Device, error) {
	if err := c.defaults(); err != nil {
		return nil, &dataplane.OpError{Op: "open", Link: ifname, Err: err}
	}
	d, err := open(ifname, &c)
	if err != nil {
		return nil, &dataplane.OpError{Op: "open", Link: ifname, Err: err}
	}
	return d, nil
}

func open(ifname string, c *Config) (*Device, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	d := &Device{name: ifname, ifindex: ifi.Index, log: c.Logger, epoch: time.Now(), watchEvery: time.Second, ethfd: -1}
	// Kept for watchQueues, which runs on any thread: the socket stays in this
	// namespace, the caller's thread may not be.
	if d.ethfd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	d.driver, _ = Driver(ifname)
	switch c.Checksums {
	case ChecksumsOn:
		d.checksums = true
	case ChecksumsAuto:
		d.checksums = d.driver == "veth"
	}
	ok := false
	defer func() {
		if ok {
			return
		}
		if len(d.sockets) == 0 {
			d.teardown()
		}
		for _, s := range d.sockets {
			s.Close() // the last one released tears the device down
		}
	}()
	nq := c.Queues
	if nq == 0 {
		if nq, err = queues(d.ethfd, ifname); err != nil {
			return nil, err
		}
	}
	if err := d.clearHook(c); err != nil {
		return nil, err
	}
	if d.maps, err = newMaps(nq, c.MaxAddrs); err != nil {
		return nil, err
	}
	if d.prog, err = newProgram(d.maps, progOptions{redirectVRRP: c.RedirectVRRP}); err != nil {
		return nil, err
	}
	if c.Filter != nil {
		if err := d.maps.setAddrs(c.Filter.VIPs, c.Filter.NATRealServers, c.Filter.Local); err != nil {
			return nil, err
		}
	}
	d.zerocopy = c.Bind != BindCopy
	for q := 0; q < nq; q++ {
		s, err := openSocket(d, d.ifindex, q, c, d.zerocopy)
		if err != nil && q == 0 && c.Bind == BindAuto {
			// The driver has no zero-copy support: copy mode for all queues.
			d.zerocopy = false
			s, err = openSocket(d, d.ifindex, q, c, false)
		}
		if err != nil {
			mode := "copy"
			if d.zerocopy {
				mode = "zero-copy"
			}
			return nil, fmt.Errorf("socket of queue %d (%s): %w", q, mode, err)
		}
		d.mu.Lock()
		d.refs++
		d.mu.Unlock()
		d.sockets = append(d.sockets, s)
		if err := d.maps.xsks.Put(uint32(q), uint32(s.fd)); err != nil {
			return nil, fmt.Errorf("XSKMAP entry of queue %d: %w", q, err)
		}
	}
	if err := d.attach(c.Attach); err != nil {
		return nil, err
	}
	ok = true
	c.Logger.Info("AF_XDP attached", "interface", ifname, "driver", d.driver, "xdp_mode", d.mode,
		"zerocopy", d.zerocopy, "queues", nq, "checksum_completion", d.checksums, "program", ProgramName)
	return d, nil
}

// attach links the program to the interface.
func (d *Device) attach(m AttachMode) error {
	var err error
	if m != AttachGeneric {
		d.xdp, err = link.AttachXDP(link.XDPOptions{Program: d.prog, Interface: d.ifindex, Flags: link.XDPDriverMode})
		if err == nil {
			d.mode = "driver"
			return nil
		}
		if m == AttachDriver || d.zerocopy {
			return fmt.Errorf("attach XDP in driver mode: %w", err)
		}
	}
	if d.xdp, err = link.AttachXDP(link.XDPOptions{Program: d.prog, Interface: d.ifindex, Flags: link.XDPGenericMode}); err != nil {
		return fmt.Errorf("attach XDP in generic mode: %w", err)
	}
	d.mode = "generic"
	return nil
}

// clearHook makes the interface's XDP hook free: a program gvs left attached
// through netlink is detached; any other program is refused unless
// c.ReplaceForeign, and so is a gvs program held by a running process's link.
func (d *Device) clearHook(c *Config) error {
	st, err := queryXDP(d.ifindex)
	if err != nil {
		return err
	}
	for id, flag := range st.ids() {
		name := "?"
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
			if info, err := p.Info(); err == nil {
				name = info.Name
			}
			p.Close()
		}
		lk, linkID := d.findLink(id)
		fe := &ForeignProgramError{Interface: d.name, Name: name, ID: id, Mode: modeName(flag)}
		switch {
		case name == ProgramName && lk != nil:
			// Held by a live process: another gvs on this interface.
			lk.Close()
			fe.Running = true
			return fe
		case name != ProgramName && !c.ReplaceForeign:
			if lk != nil {
				lk.Close()
			}
			return fe
		}
		if lk != nil {
			err = lk.Detach()
			lk.Close()
			if err != nil {
				return fmt.Errorf("detach XDP link %d of program %q (ID %d): %w", linkID, name, id, err)
			}
		} else if err := setXDP(d.ifindex, -1, flag); err != nil {
			return fmt.Errorf("detach XDP program %q (ID %d): %w", name, id, err)
		}
		c.Logger.Info("AF_XDP: replaced an XDP program", "interface", d.name, "program", name, "id", id,
			"gvs_leftover", name == ProgramName)
	}
	return nil
}

// findLink returns the BPF link attaching program id to the interface, if any.
func (d *Device) findLink(id uint32) (link.Link, link.ID) {
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType || uint32(info.Program) != id {
			continue
		}
		if x := info.XDP(); x != nil && int(x.Ifindex) != d.ifindex {
			continue
		}
		return it.Take(), it.ID
	}
	return nil, 0
}

func modeName(flag uint32) string {
	switch flag {
	case unix.XDP_FLAGS_DRV_MODE:
		return "driver"
	case unix.XDP_FLAGS_SKB_MODE:
		return "generic"
	case unix.XDP_FLAGS_HW_MODE:
		return "offload"
	}
	return "unknown"
}

// Links returns the sockets as links, queue 0 first.
func (d *Device) Links() []dataplane.Link {
	out := make([]dataplane.Link, len(d.sockets))
	for i, s := range d.sockets {
		out[i] = s
	}
	return out
}

// Sockets returns the sockets, queue 0 first.
func (d *Device) Sockets() []*Socket { return d.sockets }

// Mode is where the program runs: "driver" or "generic".
func (d *Device) Mode() string { return d.mode }

// ZeroCopy reports whether the sockets are bound in zero-copy mode.
func (d *Device) ZeroCopy() bool { return d.zerocopy }

// Driver is the interface's driver name (ethtool -i).
func (d *Device) Driver() string { return d.driver }

// ProgramID is the attached program's ID (ip link show, bpftool prog).
func (d *Device) ProgramID() (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prog == nil {
		return 0, &dataplane.OpError{Op: "stats", Link: d.name, Err: net.ErrClosed}
	}
	info, err := d.prog.Info()
	if err != nil {
		return 0, err
	}
	id, _ := info.ID()
	return uint32(id), nil
}

// SetFilter sets the addresses the program redirects: f's VIPs (as destinations,
// and as targets of ARP requests and neighbour solicitations) and NAT real servers
// (as sources). f's ARP, NDP and VRRP flags are not used: see the package doc.
func (d *Device) SetFilter(f *afpacket.Filter) error {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	d.mu.Lock()
	m := d.maps
	d.mu.Unlock()
	if m == nil {
		return &dataplane.OpError{Op: "filter", Link: d.name, Err: net.ErrClosed}
	}
	// A concurrent teardown closes the maps' descriptors: the update then fails
	// with EBADF, reported as any error.
	if err := m.setAddrs(f.VIPs, f.NATRealServers, f.Local); err != nil {
		return &dataplane.OpError{Op: "filter", Link: d.name, Err: err}
	}
	return nil
}

// ProgramStats are the program's counters: frames redirected per Reason, and
// ReasonNoSocket: frames due to a queue without a socket, passed to the kernel
// instead (the queue count grew after Open: reopen to serve them).
type ProgramStats [numReasons]uint64

// String formats the non-zero counters as "name=value" pairs.
func (p ProgramStats) String() string {
	var b strings.Builder
	for r, v := range p {
		if v != 0 {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%d", Reason(r), v)
		}
	}
	return b.String()
}

// ProgramStats returns the program's counters, summed over CPUs; after the
// device is closed, their last values.
func (d *Device) ProgramStats() (ProgramStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.maps == nil {
		return d.final, nil
	}
	c, err := d.maps.counts()
	if err != nil {
		return ProgramStats(c), &dataplane.OpError{Op: "stats", Link: d.name, Err: err}
	}
	return ProgramStats(c), nil
}

// Close closes every socket; the program is detached once they are released.
func (d *Device) Close() error {
	var errs []error
	for _, s := range d.sockets {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// watchQueues warns, at most once per d.watchEvery and only when the count grew,
// that frames gvs needs reached receive queues without a socket — the interface
// got more queues after Open (ethtool -L): the program passed them to the kernel,
// which drops them. ReadBatch calls it after a batch; the map read allocates, once
// per interval at most.
func (d *Device) watchQueues() {
	now := int64(time.Since(d.epoch))
	next := d.nextWatch.Load()
	if now < next || !d.nextWatch.CompareAndSwap(next, now+int64(d.watchEvery)) {
		return
	}
	d.mu.Lock() // against teardown, which closes the maps and ethfd
	if d.maps == nil {
		d.mu.Unlock()
		return
	}
	c, err := d.maps.counts()
	n := c[ReasonNoSocket]
	if err != nil || n <= d.noSocketLog.Load() {
		d.mu.Unlock()
		return
	}
	d.noSocketLog.Store(n)
	q, _ := queues(d.ethfd, d.name)
	d.mu.Unlock()
	d.log.Warn("AF_XDP: frames for gvs arrived on receive queues without a socket and went to the kernel, which drops them; the interface's queue count changed since gvs started: restart gvs to serve every queue",
		"interface", d.name, "frames", n, "queues_served", len(d.sockets), "queues_now", q)
}

// socketGone is called by a released socket.
func (d *Device) socketGone() {
	d.mu.Lock()
	d.refs--
	last := d.refs == 0
	d.mu.Unlock()
	if last {
		d.teardown()
	}
}

// teardown detaches the program and frees the maps.
func (d *Device) teardown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.xdp != nil {
		d.xdp.Close()
		d.xdp = nil
		d.log.Info("AF_XDP detached", "interface", d.name)
	}
	if d.prog != nil {
		d.prog.Close()
		d.prog = nil
	}
	if d.ethfd >= 0 {
		unix.Close(d.ethfd)
		d.ethfd = -1
	}
	if d.maps != nil {
		if c, err := d.maps.counts(); err == nil {
			d.final = ProgramStats(c)
		}
		d.maps.close()
		d.maps = nil
	}
}

// Queues returns the number of receive queues of ifname (ETHTOOL_GCHANNELS: the
// larger of the RX-only and combined counts), 1 for a driver that does not say.
func Queues(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	return queues(fd, ifname)
}

// queues is Queues through the socket fd.
func queues(fd int, ifname string) (int, error) {
	ch, err := channels(fd, ifname)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return 1, nil
	}
	if err != nil {
		return 0, os.NewSyscallError("ioctl SIOCETHTOOL ETHTOOL_GCHANNELS", err)
	}
	return max(int(ch.RXCount), int(ch.CombinedCount), 1), nil
}

// Driver returns ifname's driver name (ETHTOOL_GDRVINFO), e.g. "veth", "mlx5_core".
func Driver(ifname string) (string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return "", os.NewSyscallError("ioctl SIOCETHTOOL ETHTOOL_GDRVINFO", err)
	}
	return unix.ByteSliceToString(info.Driver[:]), nil
}
