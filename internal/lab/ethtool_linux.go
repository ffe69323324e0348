package lab

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Segmentation offloads a lab turns off on every interface, with the legacy
// ethtool commands that get and set them (include/uapi/linux/ethtool.h).
// With them on, a veth hands AF_PACKET up to 64 KB GSO "super-frames", which a
// userspace director cannot forward as such (they exceed the MTU on the wire it
// writes to): off, every frame crossing the director is MTU-sized, as on a real
// NIC. TX checksum offload may stay: gvs completes CHECKSUM_PARTIAL itself.
var offloads = []struct {
	name     string
	get, set uint32
}{
	{"tso", unix.ETHTOOL_GTSO, unix.ETHTOOL_STSO},
	{"gso", unix.ETHTOOL_GGSO, unix.ETHTOOL_SGSO},
	{"gro", unix.ETHTOOL_GGRO, unix.ETHTOOL_SGRO},
}

// ethtoolValue is struct ethtool_value: a command and its one value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data: the interface name, then a pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer                       // a pointer the GC knows about: v stays put
	_    [24 - unsafe.Sizeof(uintptr(0))]byte // the rest of the 24-byte union
}

// ethtool sends one legacy SIOCETHTOOL command with a struct ethtool_value for
// interface dev of the calling thread's namespace, and returns the value after
// the call (a get fills it in).
func ethtool(dev string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if len(dev) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q too long", dev)
	}
	v := ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// offloadsOff turns TSO, GSO and GRO off on dev (calling thread's namespace).
// A setting the device does not support is reported, the others still applied.
func offloadsOff(dev string) error {
	var errs []error
	for _, o := range offloads {
		if _, err := ethtool(dev, o.set, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s %s off: %w", dev, o.name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("ethtool: %v", errs)
	}
	return nil
}

// offloadState returns whether each of TSO, GSO and GRO is on for dev.
func offloadState(dev string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, o := range offloads {
		v, err := ethtool(dev, o.get, 0)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", dev, o.name, err)
		}
		m[o.name] = v != 0
	}
	return m, nil
}
