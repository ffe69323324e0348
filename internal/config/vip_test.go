package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestParseVirtualAddress: keepalived's virtual_ipaddress forms, and each refusal
// names what is wrong.
func TestParseVirtualAddress(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VirtualAddress
	}{
		{"198.18.0.100", VirtualAddress{Prefix: netip.MustParsePrefix("198.18.0.100/32")}},
		{"198.18.0.100/24 dev eth0 label eth0:1", VirtualAddress{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Dev: "eth0", Label: "eth0:1"}},
		{"198.18.0.100/24 label eth1:vip", VirtualAddress{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Label: "eth1:vip"}},
		{"198.18.0.100/24 brd 198.18.0.255 scope link no_track", VirtualAddress{Prefix: netip.MustParsePrefix("198.18.0.100/24"),
			Broadcast: netip.MustParseAddr("198.18.0.255"), Scope: "link", NoTrack: true}},
		{"198.18.0.100 scope global", VirtualAddress{Prefix: netip.MustParsePrefix("198.18.0.100/32")}},
		{"2001:db8::100/64 dev eth2", VirtualAddress{Prefix: netip.MustParsePrefix("2001:db8::100/64"), Dev: "eth2"}},
		{"2001:db8::100", VirtualAddress{Prefix: netip.MustParsePrefix("2001:db8::100/128")}},
	} {
		got, err := ParseVirtualAddress(c.in, "eth1")
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		again, err := ParseVirtualAddress(got.String(), "eth1")
		if err != nil || again != got {
			t.Errorf("%q: String %q does not read back: %+v, %v", c.in, got.String(), again, err)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"", "empty entry"},
		{"198.18.0.100/33", "prefix length"},
		{"224.0.0.18", "multicast"},
		{"198.18.0.100 label eth0:1", "must start with the interface's name"},
		{"198.18.0.100 dev eth0 label eth1:1", "must start with the interface's name"},
		{"2001:db8::1 label eth1:1", "IPv6 addresses have no labels"},
		{"198.18.0.100 brd 2001:db8::1", "brd wants an IPv4 address"},
		{"198.18.0.100 scope universe", "scope"},
		{"198.18.0.100 dev", "dev needs a value"},
		{"198.18.0.100 dev eth0 dev eth1", "given twice"},
		{"198.18.0.100 peer 198.18.0.1", "does not support"},
		{"198.18.0.100 colour red", "unknown option"},
	} {
		_, err := ParseVirtualAddress(c.in, "eth1")
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: error %v, want one saying %q", c.in, err, c.says)
		}
	}
}

// TestVRRPVirtualAddresses: virtual_ipaddress keeps the advert list and its
// details in order; virtual_ipaddress_excluded is read too and may not repeat one.
func TestVRRPVirtualAddresses(t *testing.T) {
	c := mustParse(t, file(
		`[director]`, `interface = "eth0"`,
		`[[vrrp]]`, `name = "VI_1"`, `virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100/24 dev eth0 label eth0:1", "198.18.0.101"]`,
		`virtual_ipaddress_excluded = ["198.18.1.1/24"]`,
	))
	v := c.VRRP[0]
	if len(v.VirtualIPAddress) != 2 || v.VirtualIPAddress[0] != netip.MustParseAddr("198.18.0.100") || v.VirtualIPAddress[1] != netip.MustParseAddr("198.18.0.101") {
		t.Fatalf("VirtualIPAddress %v", v.VirtualIPAddress)
	}
	if len(v.VIPs) != 2 || v.VIPs[0].Label != "eth0:1" || v.VIPs[1].Prefix.Bits() != 32 {
		t.Fatalf("VIPs %+v", v.VIPs)
	}
	if len(v.ExcludedVIPs) != 1 || v.ExcludedVIPs[0].Prefix != netip.MustParsePrefix("198.18.1.1/24") {
		t.Fatalf("ExcludedVIPs %+v", v.ExcludedVIPs)
	}
	_, err := Parse("gvs.toml", file(
		`[director]`, `interface = "eth0"`,
		`[[vrrp]]`, `name = "VI_1"`, `virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100/24"]`,
		`virtual_ipaddress_excluded = ["198.18.0.100"]`,
	))
	if err == nil || !strings.Contains(err.Error(), "also in virtual_ipaddress") {
		t.Fatalf("a VIP both advertised and excluded: %v", err)
	}
}

// FuzzParseVirtualAddress: any entry either fails or reads back from its String.
func FuzzParseVirtualAddress(f *testing.F) {
	for _, s := range []string{
		"198.18.0.100",                                         // the plain form
		"198.18.0.100/24 dev eth0 label eth0:1",                // seed 004's
		"198.18.0.100/24 brd 198.18.0.255 scope host no_track", // every option
		"2001:db8::100/64 dev eth0",                            // IPv6
		"198.18.0.100/40",                                      // bad prefix
		"198.18.0.100 label",                                   // missing value
	} {
		f.Add(s, "eth0")
	}
	f.Fuzz(func(t *testing.T, s, ifname string) {
		a, err := ParseVirtualAddress(s, ifname)
		if err != nil {
			return
		}
		b, err := ParseVirtualAddress(a.String(), ifname)
		if err != nil || b != a {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, a, a.String(), b, err)
		}
	})
}

// TestVRRPVirtualAddressInTwoInstances: one address in two instances is refused,
// naming both.
func TestVRRPVirtualAddressInTwoInstances(t *testing.T) {
	_, err := Parse("gvs.toml", file(
		`[director]`, `interface = "eth0"`,
		`[[vrrp]]`, `name = "VI_1"`, `virtual_router_id = 51`, `virtual_ipaddress = ["198.18.0.100/24"]`,
		`[[vrrp]]`, `name = "VI_2"`, `virtual_router_id = 52`, `virtual_ipaddress_excluded = ["198.18.0.100"]`,
	))
	if err == nil || !strings.Contains(err.Error(), `vrrp[1].virtual_ipaddress_excluded[0]: 198.18.0.100 is already a virtual address of vrrp "VI_1" (line 3)`) {
		t.Fatalf("%v", err)
	}
}

// TestParseVirtualRoute: keepalived's virtual_routes forms.
func TestParseVirtualRoute(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VirtualRoute
	}{
		{"198.18.5.0/24 via 198.18.0.1 dev eth0", VirtualRoute{Dst: netip.MustParsePrefix("198.18.5.0/24"), Via: netip.MustParseAddr("198.18.0.1"), Dev: "eth0"}},
		{"src 198.18.0.100 to 198.18.6.0/24 gw 198.18.0.254 dev eth1 table 100 metric 10", VirtualRoute{Dst: netip.MustParsePrefix("198.18.6.0/24"),
			Src: netip.MustParseAddr("198.18.0.100"), Via: netip.MustParseAddr("198.18.0.254"), Dev: "eth1", Table: 100, Metric: 10}},
		{"blackhole 198.18.7.0/24", VirtualRoute{Dst: netip.MustParsePrefix("198.18.7.0/24"), Type: "blackhole"}},
		{"198.18.8.1 dev eth2 scope link no_track", VirtualRoute{Dst: netip.MustParsePrefix("198.18.8.1/32"), Dev: "eth2", Scope: "link", NoTrack: true}},
		{"2001:db8:5::/64 via 2001:db8::1", VirtualRoute{Dst: netip.MustParsePrefix("2001:db8:5::/64"), Via: netip.MustParseAddr("2001:db8::1")}},
	} {
		got, err := ParseVirtualRoute(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if again, err := ParseVirtualRoute(got.String()); err != nil || again != got {
			t.Errorf("%q: String %q does not read back: %+v, %v", c.in, got.String(), again, err)
		}
	}
	for _, c := range []struct{ in, says string }{
		{"", "no destination"},
		{"via 198.18.0.1", "no destination"},
		{"198.18.5.0/24 via 2001:db8::1", "family"},
		{"198.18.5.0/24 proto static", "does not support"},
		{"198.18.5.0/24 colour red", "unknown option"},
		{"blackhole 198.18.5.0/24 dev eth0", "no via or dev"},
		{"198.18.5.0/24 metric", "needs a value"},
		{"198.18.5.0/24 table x", "table"},
	} {
		if _, err := ParseVirtualRoute(c.in); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v, want an error saying %q", c.in, err, c.says)
		}
	}
}

// FuzzParseVirtualRoute: any entry either fails or reads back from its String.
func FuzzParseVirtualRoute(f *testing.F) {
	for _, s := range []string{
		"198.18.5.0/24 via 198.18.0.1 dev eth0",                       // the common form
		"src 198.18.0.100 to 198.18.6.0/24 gw 198.18.0.254 table 100", // every option
		"blackhole 198.18.7.0/24",                                     // a type
		"default via 198.18.0.1",                                      // default
		"198.18.5.0/24 via",                                           // missing value
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rt, err := ParseVirtualRoute(s)
		if err != nil {
			return
		}
		again, err := ParseVirtualRoute(rt.String())
		if err != nil || again != rt {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, rt, rt.String(), again, err)
		}
	})
}
