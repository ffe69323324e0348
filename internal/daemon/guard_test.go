package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestIngressGuardScript(t *testing.T) {
	g := newIngressGuard("eth0.5", nil)
	s := g.script([]netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("198.18.0.101")})
	for _, want := range []string{
		"table netdev gvs_eth0_5 {}\ndelete table netdev gvs_eth0_5\n",
		"\tcomment \"" + g.owner + "\"\n",
		`type filter hook ingress device "eth0.5" priority 0; policy accept;`,
		"ip daddr { 198.18.0.100, 198.18.0.101 } drop",
		"ip6 daddr { 2001:db8::100 } drop",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if s := g.script(nil); strings.Contains(s, "daddr") {
		t.Errorf("no VIPs must give no drop rule:\n%s", s)
	}
}

// TestProcessOwner: the owner names this process by pid and start time, and is
// the same every time it is asked.
func TestProcessOwner(t *testing.T) {
	o := processOwner()
	if !strings.HasPrefix(o, "gvs pid="+strconv.Itoa(os.Getpid())+" start=") || len(o) <= len("gvs pid= start=") {
		t.Errorf("processOwner() = %q", o)
	}
	if o2 := processOwner(); o2 != o {
		t.Errorf("processOwner changed: %q then %q", o, o2)
	}
}

// nftListing is what nft 1.0.6 prints for `nft -a list table netdev gvs_v0`.
const nftListing = "table netdev gvs_v0 { # handle 7\n\tcomment \"gvs pid=42 start=123456\"\n\tchain ingress { # handle 1\n\t\ttype filter hook ingress device \"v0\" priority filter; policy accept;\n\t\tip daddr { 198.18.0.100 } drop # handle 2\n\t}\n}\n"

func TestTableOwner(t *testing.T) {
	for _, tc := range []struct {
		name, out, table string
		handle           int
		owner            string
		ok               bool
	}{
		{"owned", nftListing, "gvs_v0", 7, "gvs pid=42 start=123456", true},
		{"no comment (a gvs before owners)", "table netdev gvs_v0 { # handle 3\n\tchain ingress { # handle 1\n\t}\n}\n", "gvs_v0", 3, "", true},
		{"other table", nftListing, "gvs_v1", 0, "", false},
		{"no handle", "table netdev gvs_v0 {\n}\n", "gvs_v0", 0, "", false},
		{"empty", "", "gvs_v0", 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, o, ok := tableOwner([]byte(tc.out), tc.table)
			if h != tc.handle || o != tc.owner || ok != tc.ok {
				t.Errorf("tableOwner = %d, %q, %v; want %d, %q, %v", h, o, ok, tc.handle, tc.owner, tc.ok)
			}
		})
	}
}

func FuzzTableOwner(f *testing.F) {
	f.Add([]byte(nftListing), "gvs_v0")
	f.Add([]byte("table netdev gvs_v0 { # handle 0\n"), "gvs_v0")                    // handle 0 is never a table's
	f.Add([]byte("table netdev gvs_v0 { # handle 99999999999999999999\n"), "gvs_v0") // overflows int
	f.Fuzz(func(t *testing.T, out []byte, table string) {
		h, owner, ok := tableOwner(out, table)
		if !ok && (h != 0 || owner != "") {
			t.Fatalf("not ok but %d, %q", h, owner)
		}
		if ok && (h <= 0 || !strings.Contains(string(out), "table netdev "+table+" { # handle ")) {
			t.Fatalf("ok with handle %d from %q", h, out)
		}
		if strings.Contains(owner, "\n") {
			t.Fatalf("owner %q spans lines", owner)
		}
	})
}

// labNetns creates a network namespace of the test's own with a veth pair in it
// (both ends inside: nothing in the root namespace) and removes it at the end.
// Without root or ip, it skips (fails with GVS_LAB_REQUIRED=1).
func labNetns(t *testing.T, tools ...string) string {
	t.Helper()
	skip := func(why string) {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatalf("GVS_LAB_REQUIRED=1 but %s", why)
		}
		t.Skipf("skipping namespace test: %s (set GVS_LAB_REQUIRED=1 to make this a failure)", why)
	}
	if os.Geteuid() != 0 {
		skip("needs root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			skip("needs " + tool)
		}
	}
	var r [4]byte
	rand.Read(r[:])
	ns := "gvsm1-" + hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		skip("ip netns add: " + err.Error() + ": " + string(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1").CombinedOutput(); err != nil {
		t.Fatalf("veth in %s: %v: %s", ns, err, out)
	}
	return ns
}

// TestIngressGuardOwnership runs the guard with nft in a namespace of its own: a
// stopping gvs does not remove the guard a newer gvs installed on the same
// interface, the newer one removes its own, and a guard that is gone is no error.
func TestIngressGuardOwnership(t *testing.T) {
	ns := labNetns(t, "nft")
	nft := []string{"ip", "netns", "exec", ns, "nft"}
	older := newIngressGuard("v0", nil)
	older.nft, older.owner = nft, "gvs pid=100 start=1"
	newer := newIngressGuard("v0", nil)
	newer.nft, newer.owner = nft, "gvs pid=200 start=2"
	ctx := context.Background()
	vips := []netip.Addr{netip.MustParseAddr("198.18.0.100")}
	list := func() string {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-a", "list", "table", "netdev", "gvs_v0").CombinedOutput()
		if err != nil {
			return ""
		}
		return string(out)
	}

	if err := older.Install(ctx, vips); err != nil {
		t.Fatal(err)
	}
	if _, o, _ := tableOwner([]byte(list()), "gvs_v0"); o != older.owner {
		t.Fatalf("installed guard owned by %q, want %q:\n%s", o, older.owner, list())
	}
	// A newer gvs starts on the interface while the older one stops.
	if err := newer.Install(ctx, vips); err != nil {
		t.Fatal(err)
	}
	if err := older.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	got := list()
	if _, o, ok := tableOwner([]byte(got), "gvs_v0"); !ok || o != newer.owner || !strings.Contains(got, "198.18.0.100") {
		t.Fatalf("the stopping gvs removed or changed the newer one's guard:\n%s", got)
	}
	if err := newer.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "" {
		t.Fatalf("the owner's Remove left the guard:\n%s", got)
	}
	if err := newer.Remove(ctx); err != nil {
		t.Errorf("Remove of a guard that is gone: %v", err)
	}
}
