package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/internal/config"
)

// TestClusterSyncBindsPortZero: a port-0 persistent service's connections carry the
// packet's port, not the service's 0, so a receiver that gets them before it has the
// real server must resolve each entry with its own key when a reload brings the
// server (conntrack.Table.Rebind through Director.SyncDest) — binding by the
// service's address and port would never find them.
func TestClusterSyncBindsPortZero(t *testing.T) {
	conf := func(node, rs string) string {
		return directorConf + `
[[service]]
address = "198.18.100.3:0"
scheduler = "mh"
persistence = "300s"
[[service.real_server]]
address = "` + rs + `:0"

[cluster]
node_id = "` + node + `"
drain_time = "0s"
`
	}
	lan := &fakeLAN{}
	a := newClusterDirector(t, lan, "172.19.0.3", conf("dir1", "172.19.0.10"))
	b := newClusterDirector(t, lan, "172.19.0.4", conf("dir2", "172.19.0.13"))
	if !runUntil(t, 3*time.Second, func() bool { return a.d.cl.node.Warm() && b.d.cl.node.Warm() }, a, b) {
		t.Fatal("directors not ready")
	}
	const n = 10
	client := netip.MustParseAddr("198.51.100.8")
	var first, acks []tcpPkt
	for i := range n {
		c := netip.AddrPortFrom(client, uint16(41000+i))
		vip := netip.AddrPortFrom(netip.MustParseAddr("198.18.100.3"), uint16(8000+i))
		first = append(first, tcpPkt{client: c, vip: vip, syn: true})
		acks = append(acks, tcpPkt{client: c, vip: vip, ack: true})
	}
	if got := a.send(first...); len(got) != n {
		t.Fatalf("dir1 forwarded %d SYNs, want %d", len(got), n)
	}
	a.send(acks...)
	a.send(acks...) // the third packet: sync_threshold [3, 50]
	// The connections and the client's persistence template (n+1 entries).
	unbound := func(bound bool) int {
		k := 0
		b.d.Director().Table().Each(func(c *conntrack.Conn) bool {
			if c.Sync.Origin != 0 && c.HasDest == bound {
				k++
			}
			return true
		})
		return k
	}
	if !runUntil(t, 2*time.Second, func() bool { return unbound(false) == n+1 }, a, b) {
		t.Fatalf("dir2 holds %d unbound and %d bound synced connections, want %d unbound", unbound(false), unbound(true), n+1)
	}
	if err := b.reloadText(conf("dir2", "172.19.0.10")); err != nil {
		t.Fatal(err)
	}
	if !runUntil(t, time.Second, func() bool { return unbound(true) == n+1 }, a, b) {
		t.Fatalf("dir2 bound %d of %d port-0 entries after the reload", unbound(true), n+1)
	}
	if macs := b.send(acks[3]); len(macs) != 1 || macs[0] != "02:00:00:00:00:0a" {
		t.Fatalf("dir2 forwarded a moved flow's packet to %v, want 172.19.0.10's MAC", macs)
	}
}

// TestClusterDigestFollowsAdm: the config digest is the running table's, so a gvs adm
// change on one director makes its peers see a mismatch (and, with
// require_same_config, hold their gates), and undoing it by hand — not only a
// reload — makes the digests equal again.
func TestClusterDigestFollowsAdm(t *testing.T) {
	lan := &fakeLAN{}
	a := newClusterDirector(t, lan, "172.19.0.3", clusterConf("dir1", "require_same_config = true\n"))
	b := newClusterDirector(t, lan, "172.19.0.4", clusterConf("dir2", "require_same_config = true\n"))
	matched := func() bool {
		pa, pb := a.d.cl.node.Peers(a.d.clock.Now()), b.d.cl.node.Peers(b.d.clock.Now())
		return len(pa) == 1 && len(pb) == 1 && pa[0].Live && pb[0].Live && pa[0].DigestMatch && pb[0].DigestMatch
	}
	if !runUntil(t, 3*time.Second, matched, a, b) {
		t.Fatal("two directors with the same file do not match")
	}
	start := b.d.cl.digest()
	if start != config.ClusterDigest(mustParse(t, clusterConf("dir2", "require_same_config = true\n"))) {
		t.Error("the running digest of an unchanged director is not its file's")
	}
	b.ok("-e -t 198.18.100.2:80 -r 172.19.0.11:80 -w 5")
	differs := func() bool {
		pa := a.d.cl.node.Peers(a.d.clock.Now())
		return len(pa) == 1 && pa[0].Live && !pa[0].DigestMatch
	}
	if !runUntil(t, 2*time.Second, differs, a, b) {
		t.Fatalf("dir1 does not see dir2's weight change (dir2 digest %x, was %x)", b.d.cl.digest(), start)
	}
	if out := a.ok("--cluster"); !strings.Contains(out, "DIFFERS from dir2") {
		t.Errorf("dir1's --cluster does not name dir2:\n%s", out)
	}
	b.ok("-e -t 198.18.100.2:80 -r 172.19.0.11:80 -w 1")
	if !runUntil(t, 2*time.Second, matched, a, b) || b.d.cl.digest() != start {
		t.Fatalf("undoing the change by hand: digest %x, want %x again", b.d.cl.digest(), start)
	}
	// gvs adm --set counts too.
	b.ok("--set 60 0 0")
	if !runUntil(t, 2*time.Second, differs, a, b) {
		t.Fatal("dir1 does not see dir2's timeout change")
	}
}
