package daemon

import (
	"net/netip"
	"strings"
	"testing"
)

func TestIngressGuardScript(t *testing.T) {
	g := newIngressGuard("eth0.5")
	s := g.script([]netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("198.18.0.101")})
	for _, want := range []string{
		"table netdev gvs_eth0_5 {}\ndelete table netdev gvs_eth0_5\n",
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
