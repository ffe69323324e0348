package config

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestDigestParts: the service sum does not depend on the order services are added
// or grouped in (a running director adds them page by page), a changed service
// changes it, and ClusterDigestOf tells the timeouts apart.
func TestDigestParts(t *testing.T) {
	var svcs []ipvs.Service
	for i := range 40 {
		svcs = append(svcs, ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 100, byte(i)}), 80)),
			Scheduler: "mh", RealServers: []ipvs.RealServer{{Addr: netip.MustParseAddrPort("198.18.0.5:80"), Weight: int32(i + 1)}}})
	}
	var fwd, rev, a, b DigestSum
	for i := range svcs {
		fwd = fwd.Add(ServiceDigest(&svcs[i]))
		rev = rev.Add(ServiceDigest(&svcs[len(svcs)-1-i]))
		if i < 17 {
			a = a.Add(ServiceDigest(&svcs[i]))
		} else {
			b = b.Add(ServiceDigest(&svcs[i]))
		}
	}
	if fwd != rev || fwd != a.Plus(b) || fwd != b.Plus(a) {
		t.Fatalf("the sum depends on the order: %v %v %v", fwd, rev, a.Plus(b))
	}
	svcs[7].RealServers[0].Weight++
	var changed DigestSum
	for i := range svcs {
		changed = changed.Add(ServiceDigest(&svcs[i]))
	}
	if changed == fwd {
		t.Error("a weight change left the sum as it was")
	}
	// Real servers in another order, a pinned MAC: the same service.
	s := ipvs.Service{Key: svcs[0].Key, Scheduler: "mh", RealServers: []ipvs.RealServer{
		{Addr: netip.MustParseAddrPort("198.18.0.5:80"), Weight: 1}, {Addr: netip.MustParseAddrPort("198.18.0.6:80"), Weight: 1}}}
	r := s
	r.RealServers = []ipvs.RealServer{s.RealServers[1], s.RealServers[0]}
	r.RealServers[0].MAC = ipvs.MAC{2, 0, 0, 0, 0, 6}
	if ServiceDigest(&s) != ServiceDigest(&r) {
		t.Error("the real servers' order or a pinned MAC changed the service's digest")
	}
	file := [16]byte{1}
	to := ipvs.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}
	d := ClusterDigestOf(file, fwd, to)
	to2 := to
	to2.TCPFin = 60 * time.Second
	if ClusterDigestOf(file, fwd, to2) == d || ClusterDigestOf([16]byte{2}, fwd, to) == d || ClusterDigestOf(file, changed, to) == d {
		t.Error("ClusterDigestOf ignores one of its parts")
	}
}
