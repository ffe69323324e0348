package cluster

import (
	"fmt"
	"net"
	"os"
	"runtime"

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

// sockNetns is the network namespace a transport's sockets were opened in, so that
// the push sockets it opens later, from whatever thread, land there too (a test
// opens the transport from a thread switched into a namespace; the daemon's whole
// process lives in one and never switches).
type sockNetns struct {
	f        *os.File
	dev, ino uint64
}

const threadNetns = "/proc/thread-self/ns/net"

// callerNetns returns the calling thread's network namespace; the caller holds its
// thread locked.
func callerNetns() (*sockNetns, error) {
	f, err := os.Open(threadNetns)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	return &sockNetns{f: f, dev: st.Dev, ino: st.Ino}, nil
}

// do runs open in the namespace: on the calling thread when that is in it, else on
// a thread of its own switched into it, which ends with its goroutine.
func (ns *sockNetns) do(open func() error) error {
	if ns == nil {
		return open()
	}
	runtime.LockOSThread()
	var st unix.Stat_t
	err := unix.Stat(threadNetns, &st)
	if err == nil && st.Dev == ns.dev && st.Ino == ns.ino {
		defer runtime.UnlockOSThread()
		return open()
	}
	runtime.UnlockOSThread()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the switched thread is discarded with the goroutine
		if err := unix.Setns(int(ns.f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering the sync sockets' network namespace: %w", err)
			return
		}
		errc <- open()
	}()
	return <-errc
}

func (ns *sockNetns) close() error {
	if ns == nil {
		return nil
	}
	return ns.f.Close()
}
