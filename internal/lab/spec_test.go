package lab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPlanDefaults(t *testing.T) {
	s, err := Spec{Exe: "/bin/true"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.Prefix != "gvs" || s.Mode != DR || s.RealServers != 2 || s.Directors != 1 ||
		s.VIP != netip.MustParseAddr("198.18.0.100") || s.HTTPPort != 80 || s.UDPPort != 53 ||
		s.StateDir != DefaultStateDir || s.Outside != netip.MustParsePrefix("198.18.1.0/24") {
		t.Fatalf("defaults: %+v", s)
	}
	type row struct{ name, ns, addr, mac string }
	var got []row
	for _, h := range plan(s) {
		r := row{name: h.Name, ns: h.NS}
		if len(h.Links) > 0 {
			r.addr, r.mac = h.Links[0].Addr.String(), h.MAC().String()
		}
		got = append(got, r)
	}
	want := []row{
		{"sw", "gvs-sw", "", ""},
		{"client", "gvs-client", "198.18.0.2/24", "02:00:00:00:00:02"},
		{"dir1", "gvs-dir1", "198.18.0.3/24", "02:00:00:00:00:03"},
		{"rs1", "gvs-rs1", "198.18.0.5/24", "02:00:00:00:00:05"},
		{"rs2", "gvs-rs2", "198.18.0.6/24", "02:00:00:00:00:06"},
	}
	if len(got) != len(want) {
		t.Fatalf("plan: got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("host %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestPlanNAT(t *testing.T) {
	s, err := Spec{Prefix: "x1", Mode: NAT, Directors: 2, RealServers: 3, Exe: "/bin/true"}.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	hosts := plan(s)
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	if got, want := strings.Join(names, " "), "sw gw client dir1 dir2 rs1 rs2 rs3"; got != want {
		t.Fatalf("hosts %q, want %q", got, want)
	}
	gw, client := hosts[1], hosts[2]
	if len(gw.Links) != 2 || gw.Links[0].Addr.String() != "198.18.0.1/24" || gw.Links[0].MAC.String() != "02:00:00:00:00:01" ||
		gw.Links[1].Addr.String() != "198.18.1.1/24" || gw.Links[1].MAC.String() != "02:00:00:00:01:01" || gw.Links[1].Bridge != bridgeOutside {
		t.Errorf("gateway links %+v", gw.Links)
	}
	if client.Links[0].Addr.String() != "198.18.1.2/24" || client.MAC().String() != "02:00:00:00:01:02" || client.Links[0].Bridge != bridgeOutside {
		t.Errorf("client link %+v", client.Links[0])
	}
	if rs3 := hosts[7]; rs3.Addr().String() != "198.18.0.7" || rs3.NS != "x1-rs3" {
		t.Errorf("rs3 %+v", rs3)
	}
	// Every port name in the switch and every MAC is unique.
	ports, macs := map[string]bool{}, map[string]bool{}
	for _, h := range hosts {
		for _, k := range h.Links {
			if ports[k.Port] || macs[k.MAC.String()] {
				t.Errorf("duplicate port %q or MAC %v", k.Port, k.MAC)
			}
			ports[k.Port], macs[k.MAC.String()] = true, true
			if len(k.Port) > 15 {
				t.Errorf("port name %q longer than IFNAMSIZ-1", k.Port)
			}
		}
	}
}

func TestSpecInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"prefix with dash", Spec{Prefix: "a-b"}, "prefix"},
		{"prefix too long", Spec{Prefix: "abcdefghijklm"}, "prefix"},
		{"prefix uppercase", Spec{Prefix: "Lab"}, "prefix"},
		{"too many real servers", Spec{RealServers: 33}, "real servers"},
		{"three directors", Spec{Directors: 3}, "directors"},
		{"ipv6 subnet", Spec{Subnet: netip.MustParsePrefix("2001:db8::/64")}, "subnet"},
		{"subnet too small", Spec{Subnet: netip.MustParsePrefix("198.18.0.0/26")}, "subnet"},
		{"subnet not masked", Spec{Subnet: netip.MustParsePrefix("198.18.0.1/24")}, "subnet"},
		{"VIP outside subnet", Spec{VIP: netip.MustParseAddr("198.19.0.100")}, "VIP"},
		{"overlapping outside", Spec{Mode: NAT, Outside: netip.MustParsePrefix("198.18.0.0/16")}, "overlaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Exe = "/bin/true"
			_, err := tc.spec.Resolve()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{DR, NAT, TUN} {
		got, err := ParseMode(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("fullnat"); err == nil {
		t.Error("ParseMode(fullnat) succeeded")
	}
}

func TestNamespaceRE(t *testing.T) {
	re := namespaceRE("gt1")
	for ns, want := range map[string]bool{
		"gt1-sw": true, "gt1-rs12": true, "gt1-dir2": true, "gt1-gw": true, "gt1-client": true,
		"gt10-rs1": false, "gt1-rs1x": false, "xgt1-rs1": false, "gt1-": false, "gt1-foo": false,
	} {
		if got := re.MatchString(ns); got != want {
			t.Errorf("%s: match %v, want %v", ns, got, want)
		}
	}
}
