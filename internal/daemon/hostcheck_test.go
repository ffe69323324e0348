package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeProc(t *testing.T, ifname, v4, v6 string) string {
	t.Helper()
	root := t.TempDir()
	for fam, v := range map[string]string{"ipv4": v4, "ipv6": v6} {
		if v == "" {
			continue
		}
		dir := filepath.Join(root, "net", fam, "conf", ifname)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "forwarding"), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestHostCheck(t *testing.T) {
	// The loopback interface exists everywhere but has no Ethernet address, so the
	// check must name that problem; forwarding problems come with their sysctl fix.
	cases := []struct {
		name, ifname, v4, v6 string
		want                 []string
	}{
		{"no interface configured", "", "0", "0", []string{"[director] interface is not set"}},
		{"missing interface", "gvs-nope0", "0", "0", []string{`interface "gvs-nope0"`, "ip -br link"}},
		{"forwarding on", "lo", "1", "1", []string{"ipv4 forwarding is on", "sysctl -w net.ipv4.conf.lo.forwarding=0", "sysctl -w net.ipv6.conf.lo.forwarding=0", "no Ethernet address"}},
		{"ipv6 disabled", "lo", "0", "", []string{"no Ethernet address"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := hostChecker{procSys: fakeProc(t, c.ifname, c.v4, c.v6)}.check(c.ifname)
			if !errors.Is(err, ErrHost) {
				t.Fatalf("got %v, want a host check error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.v6 == "" && strings.Contains(err.Error(), "ipv6") {
				t.Errorf("a host without IPv6 must not be refused for it: %v", err)
			}
		})
	}
}
