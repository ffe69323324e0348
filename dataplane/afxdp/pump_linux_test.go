//go:build linux

package afxdp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestPumpDR runs the whole pipeline on AF_XDP, one-armed as in the lab (docs/lab.md
// "Topology (DR, the default)"): client, director and a real server on a bridge. The client resolves
// the VIP through the director's own ARP answer (ARP redirected by the program,
// answered by the Director, sent back through the socket), opens a TCP connection
// to the VIP and uploads 1 MiB that the real server (VIP on lo) hashes and answers
// directly (DR). Every client segment crosses the director with the checksum the
// client's stack left partial over veth, which the link marks and the Director
// completes: the transfer is intact only if that works.
//
// Over IPv6 the client finds the VIP's MAC through a neighbour solicitation, which
// the program redirects and the Director answers.
func TestPumpDR(t *testing.T) {
	t.Run("IPv4", func(t *testing.T) { testPumpDR(t, vip4, rs4, ReasonARP, ReasonVIP4) })
	t.Run("IPv6", func(t *testing.T) { testPumpDR(t, vip6, rs6, ReasonNS, ReasonVIP6) })
}

func testPumpDR(t *testing.T, vip, rsAddr netip.Addr, resolved, vipReason Reason) {
	l := newLab(t)
	sw, cli, dir, rs := l.ns("sw"), l.ns("cli"), l.ns("dir"), l.ns("rs")
	l.run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", sw, "link", "set", "br0", "up")
	rsMAC := [6]byte{2, 0, 0, 0, 0, 5}
	for i, h := range []struct {
		ns   string
		mac  [6]byte
		addr []string
	}{
		{cli, cliMAC, []string{"198.18.0.2/24", "2001:db8::2/64"}},
		{dir, dirMAC, []string{"198.18.0.3/24", "2001:db8::3/64"}},
		{rs, rsMAC, []string{"198.18.0.5/24", "2001:db8::5/64"}},
	} {
		port := fmt.Sprintf("p%d", i)
		l.link(h.ns, "eth0", h.mac, sw, port, [6]byte{2, 0, 0, 0, 1, byte(i)})
		l.run("ip", "-n", sw, "link", "set", port, "master", "br0")
		l.addr(h.ns, "eth0", h.addr...)
	}
	l.run("ip", "-n", rs, "addr", "add", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", "lo")
	l.run("ip", "netns", "exec", rs, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")

	opts := dataplane.DefaultOptions()
	opts.MAC = net.HardwareAddr(dirMAC[:])
	d, err := dataplane.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Apply([]ipvs.Service{{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(rsAddr, 80), Weight: 1, MAC: ipvs.MACFrom(net.HardwareAddr(rsMAC[:])), Method: ipvs.DR},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	dev := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 512, Frames: 2048})
	s := dev.Sockets()[0]
	w := d.NewWorker(s.BatchSize())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds the test
	defer cancel()
	pumped := make(chan error, 1)
	start := time.Now()
	go func() { pumped <- dataplane.Pump(ctx, s, w, func() int64 { return int64(time.Since(start)) }) }()

	// The real server: accept one connection, read until EOF, answer the hash.
	var ln net.Listener
	if err := inNS(rs, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(vip, 80).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		h := sha256.New()
		n, _ := io.Copy(h, c)
		fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
	}()

	payload := bytes.Repeat([]byte("gvs over AF_XDP "), 1<<16) // 1 MiB
	sum := sha256.Sum256(payload)
	want := fmt.Sprintf("%d %x\n", len(payload), sum)
	var got []byte
	err = inNS(cli, func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, 80).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(payload); err != nil {
			return err
		}
		c.(*net.TCPConn).CloseWrite()
		got, err = io.ReadAll(c)
		return err
	})
	cancel()
	if perr := <-pumped; perr != nil {
		t.Errorf("Pump: %v", perr)
	}
	if err != nil {
		t.Fatalf("client: %v (worker counters %+v)", err, w.C)
	}
	if string(got) != want {
		t.Fatalf("the real server saw %q, want %q", got, want)
	}
	st, _ := s.SocketStats()
	ps, _ := dev.ProgramStats()
	if st.RXCsumPartial == 0 || ps[resolved] == 0 || ps[vipReason] == 0 {
		t.Errorf("socket %+v, program %v: want partial checksums completed, the VIP's %v and VIP traffic redirected", st, ps, resolved)
	}
	t.Logf("worker %+v; socket rx %d tx %d (partial %d); program %v", w.C.Forwarded, st.RXFrames, st.TXFrames, st.RXCsumPartial, ps)
}
