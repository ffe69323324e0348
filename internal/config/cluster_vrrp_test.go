package config

import (
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/sched"
)

// clusterVRRPBase is an active/standby director: a service whose VIP a [[vrrp]]
// instance holds, with [cluster] added by each case.
const clusterVRRPBase = `
[[service]]
address = "198.18.100.1:80"
scheduler = "mh"
[[service.real_server]]
address = "198.18.0.5:80"

[[vrrp]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
virtual_ipaddress = ["198.18.100.1"]
`

// announce = "vrrp": the VIP may be a VRRP address, sloppy_tcp stays on, and the
// ECMP defaults (inhibit_on_failure, mh-fallback) do not apply, whether [cluster]
// comes before or after the services.
func TestClusterAnnounceVRRP(t *testing.T) {
	for _, text := range []string{
		clusterVRRPBase + "\n[cluster]\nannounce = \"vrrp\"\n",
		"[cluster]\nannounce = \"VRRP\"\n" + clusterVRRPBase,
	} {
		c, err := Parse("t.toml", []byte(text))
		if err != nil {
			t.Fatalf("%s\n%v", text, err)
		}
		s := c.Services[0]
		switch {
		case c.Cluster.Announce != AnnounceVRRP || !c.Cluster.Enabled:
			t.Errorf("announce %q enabled %v", c.Cluster.Announce, c.Cluster.Enabled)
		case !c.Director.Sysctl.SloppyTCP:
			t.Error("sloppy_tcp is off: a taken-over connection whose sync was lost could not continue")
		case s.InhibitOnFailure || s.RealServers[0].InhibitOnFailure:
			t.Error("inhibit_on_failure defaults on with announce = \"vrrp\"")
		case s.Flags&sched.FlagSched1 != 0:
			t.Error("mh-fallback defaults on with announce = \"vrrp\"")
		}
	}
	// The default stays BIRD, where the same VRRP address is refused.
	c, err := Parse("t.toml", []byte(clusterVRRPBase+"\n[cluster]\n"))
	if err == nil || !strings.Contains(err.Error(), "is a cluster VIP") || !strings.Contains(err.Error(), `announce = "vrrp" makes VRRP hold them`) {
		t.Errorf("announce = \"bird\" with a VRRP VIP: %v (%+v)", err, c)
	}
}

func TestClusterAnnounceVRRPErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[cluster]\nannounce = \"ospf\"\n", `unknown announce "ospf"`},
		{"[cluster]\nannounce = \"vrrp\"\n[[service]]\naddress = \"198.18.100.1:80\"\n[[service.real_server]]\naddress = \"198.18.0.5:80\"\n",
			"needs the [[vrrp]] instances"},
		{clusterVRRPBase + "\n[cluster]\nannounce = \"vrrp\"\nannounce_table = 201\n", "cluster.announce_table: belongs to the BIRD announcement"},
		{clusterVRRPBase + "\n[cluster]\nannounce = \"vrrp\"\nbird_socket = \"/run/b.ctl\"\n", "remove bird_socket"},
		{strings.Replace(clusterVRRPBase, "\n\n[[vrrp]]", "\nmethod = \"nat\"\n\n[[vrrp]]", 1) + "\n[cluster]\nannounce = \"vrrp\"\n", "method nat with cluster sync"},
	} {
		_, err := Parse("t.toml", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n→ %v, want an error mentioning %q", tc.text, err, tc.want)
		}
	}
	// Cluster mode off: announce does not matter, and no [[vrrp]] is needed.
	if _, err := Parse("t.toml", []byte("[cluster]\nenabled = false\nannounce = \"vrrp\"\n")); err != nil {
		t.Errorf("announce = \"vrrp\" with cluster mode off: %v", err)
	}
}

// TestClusterDigestAnnounce: two directors that run the same services but bring
// their VIPs in differently (one by BIRD, one by VRRP) differ in their digest, even
// with every default the mode changes set alike in the file.
func TestClusterDigestAnnounce(t *testing.T) {
	services := strings.Replace(clusterVRRPBase[:strings.Index(clusterVRRPBase, "[[vrrp]]")],
		"scheduler = \"mh\"\n", "scheduler = \"mh\"\nscheduler_flags = [\"mh-fallback\"]\ninhibit_on_failure = true\n", 1)
	bird, err := Parse("bird.toml", []byte("[cluster]\n"+services))
	if err != nil {
		t.Fatal(err)
	}
	vrrp, err := Parse("vrrp.toml", []byte("[cluster]\nannounce = \"vrrp\"\n"+services+clusterVRRPBase[strings.Index(clusterVRRPBase, "[[vrrp]]"):]))
	if err != nil {
		t.Fatal(err)
	}
	if ClusterDigest(bird) == ClusterDigest(vrrp) {
		t.Error("a BIRD-mode and a VRRP-mode director have the same digest")
	}
}
