package cluster

import (
	"net"

	"golang.org/x/sys/unix"
)

// dontFragment sets IP_PMTUDISC_DONT, as the kernel's sync master does: messages are
// sized to the MTU, and one that meets a smaller MTU is fragmented, not dropped.
func dontFragment(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if c.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
