package keepalived

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/internal/importer"
)

// importGolden imports dir's keepalived.conf and checks the TOML against its
// keepalived.toml, the exact expected output (dir's README says how to regenerate
// it after a deliberate change).
func importGolden(t *testing.T, dir string) *importer.Imported {
	t.Helper()
	im := importFile(t, dir+"keepalived.conf", Options{})
	want, err := os.ReadFile(dir + "keepalived.toml")
	if err != nil {
		t.Fatal(err)
	}
	if string(im.TOML) != string(want) {
		t.Errorf("TOML differs from %skeepalived.toml (regenerate it as that directory's README says if the change is meant); got:\n%s", dir, im.TOML)
	}
	return im
}

// TestImportKeepalivedSyncDaemon: lvs_sync_daemon becomes [cluster] announce =
// "vrrp" with its options (the golden TOML in testdata/syncd/), and what cannot be
// written so is noted.
func TestImportKeepalivedSyncDaemon(t *testing.T) {
	im := importGolden(t, "testdata/syncd/")
	c := im.Config.Cluster
	if !c.Enabled || c.Announce != "vrrp" || c.NodeID != "lb1" || c.SyncInterface != "eth1" || c.SyncID != 7 || c.SyncMaxLen != 1400 || c.SyncPort != 8848 ||
		c.SyncTTL != 2 || c.SyncGroup != netip.MustParseAddr("224.0.0.82") {
		t.Errorf("[cluster] %+v", c)
	}
	findNote(t, im, 5, `written as [cluster] announce = "vrrp"`, "not as master or backup by VI_1's state")
	findNote(t, im, 4, "router_id lb1 written as [cluster] node_id")

	const vrrp = "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 51\npriority 150\nvirtual_ipaddress {\n198.18.100.1\n}\n%s}\n"
	const dr = "virtual_server 198.18.100.1 80 {\nlb_kind DR\nprotocol TCP\nreal_server 198.18.0.11 80 {\n}\n}\n"
	for _, tc := range []struct {
		name, conf string
		cluster    bool
		line       int
		note       []string
	}{
		{"older lvs_sync_daemon_interface", strings.Replace(vrrp, "%s", "lvs_sync_daemon_interface eth1\n", 1) + dr, true, 8,
			[]string{`"lvs_sync_daemon_interface eth1" written as [cluster]`}},
		{"sync port on the control port", "global_defs {\nlvs_sync_daemon eth1 VI_1 port 8849\n}\n" + strings.Replace(vrrp, "%s", "", 1) + dr, true, 2,
			[]string{"sync port 8849 is gvs's default control port: control_port = 8850 written"}},
		{"bad options", "global_defs {\nlvs_sync_daemon eth1 VI_1 id 300 maxlen 40 group 198.18.0.1 weird 1 ttl\n}\n" + strings.Replace(vrrp, "%s", "", 1) + dr, true, 2,
			[]string{"id \"300\": want an integer 0..255: ignored"}},
		{"a second daemon", "global_defs {\nlvs_sync_daemon eth1 VI_1\n}\n" + strings.Replace(vrrp, "%s", "lvs_sync_daemon_interface eth2\n", 1) + dr, true, 11,
			[]string{"keepalived runs one sync daemon: the first (line 2) is written"}},
		{"unknown instance", "global_defs {\nlvs_sync_daemon eth1 VI_9\n}\n" + strings.Replace(vrrp, "%s", "", 1) + dr, false, 2,
			[]string{"not translated: no vrrp_instance is named VI_9"}},
		{"NAT", "global_defs {\nlvs_sync_daemon eth1 VI_1\n}\n" + strings.Replace(vrrp, "%s", "", 1) + strings.Replace(dr, "DR", "NAT", 1), false, 2,
			[]string{"not translated", "NAT real servers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Import("etc/keepalived.conf", []byte(tc.conf), memFS(nil))
			if err != nil {
				t.Fatal(err)
			}
			checkImported(t, im)
			if c := im.Config.Cluster; c.Enabled != tc.cluster || (tc.cluster && (c.Announce != "vrrp" || c.SyncInterface != "eth1")) {
				t.Errorf("[cluster] %+v, want written: %v", c, tc.cluster)
			}
			findNote(t, im, tc.line, tc.note...)
			if tc.name == "bad options" {
				c := im.Config.Cluster
				if c.SyncID != 0 || c.SyncMaxLen != 0 || c.SyncGroup != netip.MustParseAddr("224.0.0.81") {
					t.Errorf("bad options written: %+v", c)
				}
				for _, n := range []string{"maxlen \"40\": want an integer 80..65507", "group \"198.18.0.1\": not a multicast address",
					"option \"weird\": unknown", "option \"ttl\" has no value"} {
					findNote(t, im, 2, n)
				}
			}
			if tc.name == "sync port on the control port" && im.Config.Cluster.ControlPort != 8850 {
				t.Errorf("control_port %d, want 8850", im.Config.Cluster.ControlPort)
			}
		})
	}
}
