package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// TAP is the announcement device of docs/cluster.md §7.2 and the Routes the
// Announcer writes: a non-persistent TAP device held open by this process, and one
// route per announced VIP through it in the announcement table. When the process
// exits for any reason the kernel deletes the device and its routes, and the routing
// daemon withdraws the VIPs. Safe for concurrent use as far as netlink is.
type TAP struct {
	f     *os.File
	name  string
	index uint32
	table uint32
	proto uint8
	nl    *rtnetlink.Conn
}

var _ Routes = (*TAP)(nil)

// ErrPersistentDevice is returned by OpenTAP for a device of that name that outlives
// its owner (ip tuntap add … persistent): its routes would not vanish with gvs.
var ErrPersistentDevice = errors.New("device is persistent")

// OpenTAP creates the device name (up, ARP off, no IPv6 link-local address) and
// returns it; routes go to table with protocol proto.
func OpenTAP(name string, table, proto int) (*TAP, error) {
	op := func(what string, err error) error {
		return fmt.Errorf("cluster: announce device %q: %s: %w", name, what, err)
	}
	if table < 1 || table > 252 || proto < 1 || proto > 255 {
		return nil, fmt.Errorf("cluster: announce table %d / protocol %d out of range (1–252, 1–255)", table, proto)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, op("open /dev/net/tun (needs CAP_NET_ADMIN and the tun module)", err)
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun")
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		f.Close()
		return nil, op("name", err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		f.Close()
		return nil, op("create (is another gvs holding it?)", err)
	}
	// TUNSETIFF attaches to an existing persistent device of that name instead of
	// creating one; such a device would keep the routes after gvs dies.
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err == nil && ifr.Uint16()&unix.IFF_PERSIST != 0 {
		f.Close()
		return nil, op("delete it first (ip link del "+name+")", ErrPersistentDevice)
	}
	t := &TAP{f: f, name: ifr.Name(), table: uint32(table), proto: uint8(proto)}
	ifi, err := net.InterfaceByName(t.name)
	if err != nil {
		t.Close()
		return nil, op("look up", err)
	}
	t.index = uint32(ifi.Index)
	// No link-local address, so no router or neighbour solicitations from a device
	// that carries no traffic. Best effort: without IPv6 there is nothing to stop.
	_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", t.name, "addr_gen_mode"), []byte("1"), 0)
	if t.nl, err = rtnetlink.Dial(nil); err != nil {
		t.Close()
		return nil, op("netlink", err)
	}
	if err := t.nl.Link.Set(&rtnetlink.LinkMessage{Family: unix.AF_UNSPEC, Index: t.index,
		Flags: unix.IFF_UP | unix.IFF_NOARP, Change: unix.IFF_UP | unix.IFF_NOARP}); err != nil {
		t.Close()
		return nil, op("set up", err)
	}
	return t, nil
}

// Name returns the device's name.
func (t *TAP) Name() string { return t.name }

func (t *TAP) route(vip netip.Addr) *rtnetlink.RouteMessage {
	fam, bits := uint8(unix.AF_INET), uint8(32)
	if vip.Is6() {
		fam, bits = unix.AF_INET6, 128
	}
	return &rtnetlink.RouteMessage{Family: fam, DstLength: bits, Table: uint8(t.table), Protocol: t.proto,
		Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST,
		Attributes: rtnetlink.RouteAttributes{Dst: net.IP(vip.AsSlice()), OutIface: t.index, Table: t.table}}
}

// Add puts vip's route in place (replacing one that is there).
func (t *TAP) Add(vip netip.Addr) error {
	if err := t.nl.Route.Replace(t.route(vip)); err != nil {
		return fmt.Errorf("cluster: add route %v dev %s table %d: %w", vip, t.name, t.table, err)
	}
	return nil
}

// Delete removes vip's route; a route already gone is not an error.
func (t *TAP) Delete(vip netip.Addr) error {
	err := t.nl.Route.Delete(t.route(vip))
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cluster: delete route %v dev %s table %d: %w", vip, t.name, t.table, err)
	}
	return nil
}

// Close closes the device, which deletes it and every route through it. It may be
// called more than once.
func (t *TAP) Close() error {
	var errs []error
	if t.nl != nil {
		errs = append(errs, t.nl.Close())
		t.nl = nil
	}
	if t.f != nil {
		errs = append(errs, t.f.Close())
		t.f = nil
	}
	return errors.Join(errs...)
}
