package health

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }

// family is one loopback address family the network tests run on.
type family struct {
	name, tcp, udp, loopback string
}

var families = []family{
	{"ipv4", "tcp4", "udp4", "127.0.0.1"},
	{"ipv6", "tcp6", "udp6", "::1"},
}

// forEachFamily runs f once per loopback family, skipping IPv6 where the host has none.
func forEachFamily(t *testing.T, f func(t *testing.T, fam family)) {
	t.Helper()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			ln, err := net.Listen(fam.tcp, net.JoinHostPort(fam.loopback, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", fam.name, err)
			}
			ln.Close()
			f(t, fam)
		})
	}
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// tcpServer listens on fam's loopback and hands every connection to handle (nil
// closes it at once). The listener and every handler are stopped and joined at cleanup.
func tcpServer(t *testing.T, fam family, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(fam.tcp, net.JoinHostPort(fam.loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if handle == nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return addrPort(t, ln.Addr())
}

// closedPort returns an address on fam's loopback where nothing listens.
func closedPort(t *testing.T, fam family) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(fam.tcp, net.JoinHostPort(fam.loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ap := addrPort(t, ln.Addr())
	ln.Close()
	return ap
}

// httpServer serves h on fam's loopback, with TLS if tls is set.
func httpServer(t *testing.T, fam family, tls bool, h http.HandlerFunc) (*httptest.Server, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen(fam.tcp, net.JoinHostPort(fam.loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS handshake failures
	srv.Listener.Close()
	srv.Listener = ln
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, addrPort(t, ln.Addr())
}

// udpServer answers every datagram with reply(datagram), or not at all when reply
// returns nil.
func udpServer(t *testing.T, fam family, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(fam.udp, net.JoinHostPort(fam.loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return addrPort(t, pc.LocalAddr())
}

// closedUDPPort returns a UDP address on fam's loopback where nothing listens.
func closedUDPPort(t *testing.T, fam family) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(fam.udp, net.JoinHostPort(fam.loopback, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ap := addrPort(t, pc.LocalAddr())
	pc.Close()
	return ap
}

// mustCheck builds s (filling in a short timeout) and runs one probe.
func mustCheck(t *testing.T, s Spec) Result {
	t.Helper()
	if s.Interval == 0 {
		s.Interval = time.Second
	}
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Second // generous: tests assert outcomes, not speed
	}
	c, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c.Check(context.Background())
}

func wantUp(t *testing.T, r Result, reason string) {
	t.Helper()
	if !r.Up || r.Reason != reason {
		t.Errorf("got %+v, want up with reason %q", r, reason)
	}
}

func wantDown(t *testing.T, r Result, reason string) {
	t.Helper()
	if r.Up || r.Reason != reason {
		t.Errorf("got %+v, want down with reason %q", r, reason)
	}
}

// blockUntilClosed reads and discards until c is closed: a server that never answers.
func blockUntilClosed(c net.Conn) { io.Copy(io.Discard, c) }
