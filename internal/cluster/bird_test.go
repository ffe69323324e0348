package cluster

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func labSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatalf("GVS_LAB_REQUIRED=1 but %s", why)
	}
	t.Skipf("%s (set GVS_LAB_REQUIRED=1 to make this a failure)", why)
}

func baseBird() BirdConfig {
	return BirdConfig{NodeID: "dir1", RouterID: netip.MustParseAddr("198.18.0.21"),
		Local: netip.MustParseAddr("198.18.0.21"), Router: netip.MustParseAddr("198.18.0.1"),
		LocalAS: 65001, RouterAS: 65000, VIPs: []netip.Addr{netip.MustParseAddr("198.18.100.2"), netip.MustParseAddr("198.18.100.1")},
		Table: 200, Proto: 240, Device: "gvs-vip", Interface: "eth0"}
}

// TestBirdConfigParses has BIRD itself parse every variant (bird -p): BGP with BFD,
// without, dual-stack, OSPF v2 and v3.
func TestBirdConfigParses(t *testing.T) {
	bird, err := exec.LookPath("bird")
	if err != nil {
		labSkip(t, "bird (Debian bird2) is not installed")
	}
	v6 := func(c *BirdConfig) {
		c.VIPs = append(c.VIPs, netip.MustParseAddr("2001:db8:100::1"))
		c.Local6, c.Router6 = netip.MustParseAddr("2001:db8::21"), netip.MustParseAddr("2001:db8::1")
	}
	variants := map[string]func(*BirdConfig){
		"bgp":          func(*BirdConfig) {},
		"bgp no bfd":   func(c *BirdConfig) { c.NoBFD = true; c.Interface = "" },
		"bgp dual":     v6,
		"bgp v6 only":  func(c *BirdConfig) { v6(c); c.VIPs = c.VIPs[2:] },
		"ospf":         func(c *BirdConfig) { c.OSPF = true },
		"ospf dual":    func(c *BirdConfig) { v6(c); c.OSPF = true },
		"other tables": func(c *BirdConfig) { c.Table, c.Proto = 252, 17 },
	}
	dir := t.TempDir()
	for name, mod := range variants {
		t.Run(name, func(t *testing.T) {
			c := baseBird()
			mod(&c)
			var b strings.Builder
			if err := c.Write(&b); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".conf")
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bird, "-p", "-c", f).CombinedOutput(); err != nil {
				t.Fatalf("bird -p refuses it: %v\n%s\n%s", err, out, b.String())
			}
			for _, v := range c.VIPs {
				if !strings.Contains(b.String(), v.String()) {
					t.Errorf("VIP %v missing from the export filter", v)
				}
			}
			if !strings.Contains(b.String(), "kernel table "+itoa(c.Table)) || !strings.Contains(b.String(), "krt_source = "+itoa(c.Proto)) {
				t.Errorf("table or protocol missing:\n%s", b.String())
			}
		})
	}
	// The check can fail: BIRD refuses a broken file.
	f := filepath.Join(dir, "broken.conf")
	os.WriteFile(f, []byte("protocol bgp { local as; }\n"), 0o644)
	if exec.Command(bird, "-p", "-c", f).Run() == nil {
		t.Fatal("bird -p accepted a broken config: the check proves nothing")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestBirdConfigRefuses(t *testing.T) {
	for name, mod := range map[string]func(*BirdConfig){
		"no VIPs":          func(c *BirdConfig) { c.VIPs = nil },
		"v6 router id":     func(c *BirdConfig) { c.RouterID = netip.MustParseAddr("2001:db8::1") },
		"table 253":        func(c *BirdConfig) { c.Table = 253 },
		"no AS":            func(c *BirdConfig) { c.RouterAS = 0 },
		"v6 VIP, no v6":    func(c *BirdConfig) { c.VIPs = append(c.VIPs, netip.MustParseAddr("2001:db8::5")) },
		"ospf without dev": func(c *BirdConfig) { c.OSPF, c.Interface = true, "" },
		"mixed families":   func(c *BirdConfig) { c.Router = netip.MustParseAddr("2001:db8::1") },
	} {
		c := baseBird()
		mod(&c)
		if err := c.Write(&strings.Builder{}); !errors.Is(err, ErrBirdConfig) {
			t.Errorf("%s: %v, want ErrBirdConfig", name, err)
		}
	}
}
