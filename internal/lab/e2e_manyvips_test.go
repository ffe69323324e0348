package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// manyVIPs is how many VIPs TestManyVIPs adds to the lab's own (issue 11: "5,000 VIPs
// configured and a request to the last one answered"): far more than an exact
// per-VIP socket filter can hold (about 2,000 IPv4 or 450 IPv6 addresses).
const manyVIPs = 5000

// manyVIP returns the i-th extra VIP: IPv4 (198.19.0.0/16) for even i, IPv6
// (2001:db8:ff::/64) for odd i, so both families are far beyond an exact filter.
func manyVIP(i int) netip.Addr {
	if i%2 == 0 {
		return netip.AddrFrom4([4]byte{198, 19, byte(i >> 9), byte(i >> 1)})
	}
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 14: byte(i >> 8), 15: byte(i)})
}

// TestManyVIPs runs a DR director with the lab's config plus 5,000 HTTP services on
// VIPs of both families (rs1 behind each), which gvs check accepts, and asks the
// last IPv4 and the last IPv6 VIP from the client: rs1 answers through gvs. The
// client reaches the extra VIPs on its link (gvs answers their ARP and neighbour
// solicitations) and rs1 carries the two asked VIPs on lo, as DR needs.
func TestManyVIPs(t *testing.T) {
	spec := e2eSpec(t, DR)
	spec.IPv6 = true
	l := upLab(t, spec)
	base, err := l.DirectorConfig("dir1")
	if err != nil {
		t.Fatal(err)
	}
	rs1, _ := l.Host("rs1")
	var b strings.Builder
	b.WriteString(base)
	for i := range manyVIPs {
		fmt.Fprintf(&b, "\n[[service]]\naddress = %q\nprotocol = \"tcp\"\nscheduler = \"rr\"\nmethod = \"dr\"\n", netip.AddrPortFrom(manyVIP(i), l.spec.HTTPPort).String())
		a := rs1.Addr()
		if manyVIP(i).Is6() {
			a = rs1.Addr6()
		}
		fmt.Fprintf(&b, "  [[service.real_server]]\n  address = %q\n  mac = %q\n", a.String(), rs1.MAC())
	}
	path := filepath.Join(t.TempDir(), "many.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gvsBinary(t), "check", "-c", path).CombinedOutput()
	if err != nil {
		t.Fatalf("gvs check: %v\n%s", err, out)
	}
	t.Logf("gvs check: %s", strings.TrimSpace(string(out)))

	last4, last6 := manyVIP(manyVIPs-2), manyVIP(manyVIPs-1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for host, lines := range map[string][]string{
		"client": {"route add 198.19.0.0/16 dev eth0", "route add 2001:db8:ff::/64 dev eth0"},
		"rs1":    {fmt.Sprintf("address add %s/32 dev lo", last4), fmt.Sprintf("address add %s/128 dev lo nodad", last6)},
	} {
		ns, err := l.ns(host)
		if err != nil {
			t.Fatal(err)
		}
		if err := ipBatch(ctx, ns, lines); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Start(ctx, "dir1", "director", "run", "-c", path, "--workers", "2"); err != nil {
		t.Fatal(err)
	}
	if err := l.waitServing(ctx); err != nil {
		t.Fatal(err)
	}
	// Until the ingress guard holds the VIPs, dir1's kernel sees the IPv6 VIP traffic
	// too and, having no route to these VIPs, answers it with ICMPv6 "no route"
	// (ip6_pkt_drop; IPv4 stays silent without forwarding), which aborts the
	// client's connect. The guard of 5,002 VIPs is installed in the background after
	// gvs starts serving: wait for it to hold the last one.
	asked := []netip.Addr{last4, last6}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Logf("no nft here (no ingress guard): only the IPv4 VIP is asked")
		asked = asked[:1]
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(asked) == 2 {
		cmd, err := l.Command(ctx, "dir1", "nft", "list", "table", "netdev", "gvs_eth0")
		if err != nil {
			t.Fatal(err)
		}
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), last6.String()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ingress guard with %v after 30 s:\n%.1000s", last6, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, vip := range asked {
		url := "http://" + netip.AddrPortFrom(vip, l.spec.HTTPPort).String() + "/"
		body, err := l.HTTPGet("client", url, 5*time.Second)
		if err != nil {
			ns, _ := l.ns("client")
			routes, _ := exec.Command("ip", "-n", ns, "-6", "route").CombinedOutput()
			addrs, _ := exec.Command("ip", "-n", ns, "-6", "addr").CombinedOutput()
			t.Fatalf("GET %s: %v\nclient's IPv6 routes:\n%s\naddresses:\n%s", url, err, routes, addrs)
		}
		if got := strings.TrimSpace(body); got != "rs1" {
			t.Errorf("GET %s answered %q, want rs1", url, got)
		}
	}
	log, _ := os.ReadFile(filepath.Join(l.RunDir(), "dir1-director.log"))
	if !strings.Contains(string(log), "vips=5002 link_filter=director_mac") {
		t.Errorf("the director does not say it serves 5002 VIPs with the coarse filter:\n%.2000s", log)
	}
}
