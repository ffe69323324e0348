package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestParseVirtualRule: keepalived's virtual_rules forms, and what is refused.
func TestParseVirtualRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VirtualRule
	}{
		{"from 198.18.0.0/24 table 100", VirtualRule{From: netip.MustParsePrefix("198.18.0.0/24"), Table: 100}},
		{"from 198.18.0.7 to 198.18.9.0/24 lookup 1000 priority 100", VirtualRule{From: netip.MustParsePrefix("198.18.0.7/32"),
			To: netip.MustParsePrefix("198.18.9.0/24"), Table: 1000, Priority: 100, HasPriority: true}},
		{"fwmark 0x10/0xff iif eth0 preference 5 lookup main no_track", VirtualRule{Mark: 16, Mask: 255, HasMark: true, IIF: "eth0",
			Priority: 5, HasPriority: true, Table: 254, NoTrack: true}},
		{"fwmark 7/0xffffffff oif eth1 table 7", VirtualRule{Mark: 7, HasMark: true, OIF: "eth1", Table: 7}},
		{"from all to 2001:db8:5::/64 table 5 pref 0", VirtualRule{To: netip.MustParsePrefix("2001:db8:5::/64"), Table: 5, HasPriority: true}},
	} {
		got, err := ParseVirtualRule(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if again, err := ParseVirtualRule(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q does not read back: %+v, %v", c.in, got.String(), again, err)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"", "no table"},
		{"from 198.18.0.0/24", "no table"},
		{"from 198.18.0.0/24 to 2001:db8::/32 table 1", "one family"},
		{"from 198.18.0.0/24 goto 100", "does not support"},
		{"not from 198.18.0.0/24 table 1", "does not support"},
		{"from 198.18.0.0/24 table 1 blackhole", "does not support"},
		{"from 198.18.0.0/24 colour red table 1", "unknown option"},
		{"from 198.18.0.0/24 table", "needs a value"},
		{"from 198.18.0.0/24 table 0", "table 0"},
		{"from 198.18.0.0/24 table 1 table 2", "twice"},
		{"fwmark x table 1", "fwmark"},
		{"iif a/b table 1", "interface name"},
	} {
		if _, err := ParseVirtualRule(c.in); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v, want an error saying %q", c.in, err, c.says)
		}
	}
}

// TestVirtualRulesConfig: a [[vrrp]] table's virtual_rules are read, and a bad
// entry is reported with its index.
func TestVirtualRulesConfig(t *testing.T) {
	base := `
[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["198.18.0.10"]
`
	cfg, err := Parse("t.toml", []byte(base+`virtual_rules = ["from 198.18.0.10 table 100", "fwmark 1 lookup 101"]`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.VRRP[0].VirtualRules; len(got) != 2 || got[0].Table != 100 || !got[1].HasMark {
		t.Fatalf("virtual_rules read as %+v", got)
	}
	_, err = Parse("t.toml", []byte(base+`virtual_rules = ["from 198.18.0.10 table 100", "from 198.18.0.10 goto 3"]`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "virtual_rules[1]") || !strings.Contains(err.Error(), "goto") {
		t.Fatalf("bad entry: %v", err)
	}
}

// FuzzParseVirtualRule: any entry either fails or reads back from its String.
func FuzzParseVirtualRule(f *testing.F) {
	for _, s := range []string{
		"from 198.18.0.0/24 table 100",                         // the common form
		"from 198.18.0.7 to 198.18.9.0/24 lookup 1000 pref 10", // addresses, priority
		"fwmark 0x10/0xff iif eth0 oif eth1 table main",        // selectors, a table name
		"to 2001:db8::/32 table 5 no_track",                    // IPv6
		"from 198.18.0.0/24 table",                             // missing value
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ru, err := ParseVirtualRule(s)
		if err != nil {
			return
		}
		again, err := ParseVirtualRule(ru.String())
		if err != nil || again != ru {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, ru, ru.String(), again, err)
		}
	})
}
