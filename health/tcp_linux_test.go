package health

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestTCPTimeout connects to a listener whose accept queue is full: Linux drops the
// SYN (tcp_v4_conn_request, "listen overflow"), so the connect hangs like a
// black-holed server until the timeout.
func TestTCPTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	target := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue (backlog 0 holds one connection), never accepting.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp4", target.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i == 8 {
			t.Skip("accept queue never filled; cannot simulate a black-holed server")
		}
	}
	r := mustCheck(t, Spec{Type: TCP, Target: target, Timeout: 200 * time.Millisecond})
	wantDown(t, r, "timeout after 200ms")
}
