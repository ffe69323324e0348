package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/sched"
)

func TestClusterTable(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[cluster]
node_id = "dir1"
announce_table = 201
sync_interface = "eth0"
sync_peers = ["198.18.0.22", "198.18.0.23"]
sync_sources = ["198.18.0.0/24", "198.18.1.7"]
sync_threshold = [2, 20]
sync_flush = "50ms"
join_wait = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultCluster()
	want.NodeID, want.AnnounceTable, want.SyncInterface = "dir1", 201, "eth0"
	want.SyncPeers = []netip.Addr{netip.MustParseAddr("198.18.0.22"), netip.MustParseAddr("198.18.0.23")}
	want.SyncSources = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("198.18.1.7/32")}
	want.SyncThreshold, want.SyncFlush, want.JoinWait = [2]int{2, 20}, 50*time.Millisecond, 0
	if !reflect.DeepEqual(c.Cluster, want) {
		t.Fatalf("got  %+v\nwant %+v", c.Cluster, want)
	}
	if c, err := Parse("t.toml", nil); err != nil || c.Cluster.Enabled {
		t.Fatalf("no [cluster]: %v, enabled %v", err, c.Cluster.Enabled)
	}
}

func TestClusterTableErrors(t *testing.T) {
	for _, tc := range []struct{ toml, want string }{
		{"announce_table = 253", "announce_table"},
		{`sync_group = "198.18.0.1"`, "not a multicast address"},
		{"sync_threshold = [50, 50]", "must be below the period"},
		{`sync_threshold = [3]`, "two non-negative integers"},
		{"control_port = 8849\nsync_ports = 2", "collides with the sync ports"},
		{`sync_peers = ["224.0.0.81"]`, "unicast"},
		{`sync_sources = ["nonsense"]`, "neither a prefix"},
		{`mh_order = "random"`, "mh_order"},
		{"sync_retries = 4", "sync_retries"},
		{"sync_maxlen = 40", "one IPv6 record"},
		{`announce_device = "a-very-long-device-name"`, "1 to 15 bytes"},
		{"unknown_key = 1", "unknown_key"},
	} {
		_, err := Parse("t.toml", []byte("[cluster]\n"+tc.toml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error mentioning %q", tc.toml, err, tc.want)
		}
	}
}

func TestClusterCrossCheck(t *testing.T) {
	base := `
[cluster]
[[service]]
address = "198.18.100.1:80"
[[service.real_server]]
address = "198.18.0.5:80"
`
	for _, tc := range []struct{ extra, want string }{
		{"method = \"nat\"\n", "method nat in cluster mode"},
		{"\n[[vrrp]]\nname = \"v\"\ninterface = \"eth0\"\nvirtual_router_id = 1\npriority = 100\nvirtual_ipaddress = [\"198.18.100.1\"]\n", "is a cluster VIP"},
	} {
		_, err := Parse("t.toml", []byte(base+tc.extra))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.extra, err, tc.want)
		}
	}
	if _, err := Parse("t.toml", []byte(base)); err != nil {
		t.Fatalf("a DR cluster service: %v", err)
	}
	if _, err := Parse("t.toml", []byte(strings.Replace(base, "[cluster]", "[cluster]\nenabled = false", 1)+"method = \"nat\"\n")); err != nil {
		t.Fatalf("NAT with cluster mode off: %v", err)
	}
}

func TestClusterDigest(t *testing.T) {
	parse := func(s string) [16]byte {
		t.Helper()
		c, err := Parse("t.toml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return ClusterDigest(c)
	}
	svc := func(vip string, servers ...string) string {
		s := "\n[[service]]\naddress = \"" + vip + "\"\nscheduler = \"mh\"\n"
		for _, rs := range servers {
			s += "[[service.real_server]]\naddress = \"" + rs + "\"\n"
		}
		return s
	}
	base := "[cluster]\n" + svc("198.18.100.1:80", "198.18.0.5:80", "198.18.0.6:80") + svc("198.18.100.2:80", "198.18.0.7:80")
	d := parse(base)
	// Order in the file does not matter.
	if got := parse("[cluster]\n" + svc("198.18.100.2:80", "198.18.0.7:80") + svc("198.18.100.1:80", "198.18.0.6:80", "198.18.0.5:80")); got != d {
		t.Error("reordering services and servers changed the digest")
	}
	// Health checks do not count.
	withCheck := strings.Replace(base, "scheduler = \"mh\"\n", "scheduler = \"mh\"\n[service.check]\ntype = \"tcp\"\n", 1)
	if got := parse(withCheck); got != d {
		t.Error("a health check changed the digest")
	}
	// What schedules does.
	for name, changed := range map[string]string{
		"weight":    strings.Replace(base, "address = \"198.18.0.6:80\"\n", "address = \"198.18.0.6:80\"\nweight = 2\n", 1),
		"server":    strings.Replace(base, "198.18.0.6:80", "198.18.0.8:80", 1),
		"scheduler": strings.Replace(base, "scheduler = \"mh\"", "scheduler = \"rr\"", 1),
		"mh_order":  strings.Replace(base, "[cluster]\n", "[cluster]\nmh_order = \"kernel\"\n", 1),
		"timeout":   "[director]\ntcp_timeout = \"60s\"\n" + base,
	} {
		if got := parse(changed); got == d {
			t.Errorf("changing the %s left the digest as it was", name)
		}
	}
}

// TestClusterDefaults: cluster mode turns on inhibit_on_failure, mh-fallback for mh
// services and sloppy_tcp where the file does not set them, whatever the order of
// the tables; a file that sets them keeps its values, and without cluster mode the
// usual defaults hold.
func TestClusterDefaults(t *testing.T) {
	svc := `
[[service]]
address = "198.18.100.1:80"
scheduler = "mh"
%s
[[service.real_server]]
address = "198.18.0.5:80"
[[service.real_server]]
address = "198.18.0.6:80"
%s
[[service]]
address = "198.18.100.2:80"
scheduler = "wlc"
[[service.real_server]]
address = "198.18.0.5:80"
`
	type got struct {
		sloppy           bool
		inhibit          [2]bool // service 0's servers
		fallback, inhibW bool    // service 0's mh-fallback, service 1's inhibit
	}
	for _, tc := range []struct {
		name, director, cluster, svcKeys, rsKeys string
		want                                     got
	}{
		{name: "off", want: got{}},
		{name: "on", cluster: "[cluster]\n", want: got{true, [2]bool{true, true}, true, true}},
		{name: "on before", cluster: "[cluster]\nenabled = true\n", want: got{true, [2]bool{true, true}, true, true}},
		{name: "disabled", cluster: "[cluster]\nenabled = false\n", want: got{}},
		{name: "set", director: "[director]\nsloppy_tcp = false\n", cluster: "[cluster]\n",
			svcKeys: "inhibit_on_failure = false\nscheduler_flags = [\"mh-port\"]", rsKeys: "inhibit_on_failure = true",
			want: got{false, [2]bool{false, true}, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.director + fmt.Sprintf(svc, tc.svcKeys, tc.rsKeys) + tc.cluster
			if tc.name == "on before" {
				text = tc.cluster + tc.director + fmt.Sprintf(svc, tc.svcKeys, tc.rsKeys) // [cluster] first: the same outcome
			}
			c, err := Parse("t.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			s := c.Services
			g := got{c.Director.Sysctl.SloppyTCP, [2]bool{s[0].RealServers[0].InhibitOnFailure, s[0].RealServers[1].InhibitOnFailure},
				s[0].Flags&sched.FlagSched1 != 0, s[1].InhibitOnFailure}
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}
