package importer

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// testDoc is a document with one of everything the writer writes, including a
// real server gvs refuses (written commented out) and strings that need escaping.
func testDoc() *Doc {
	vip := netip.MustParseAddrPort("198.18.0.100:80")
	d := &Doc{Tool: "test", Summary: []string{"Source: test."}}
	d.Dir = Director{Iface: "eth0", TCP: Some(2 * time.Hour), UDP: Some(1500 * time.Millisecond)}
	d.VRRP = []*VRRP{{
		Pos: Pos{File: "in", Line: 1}, Name: "VI_1", Iface: "eth0", State: "MASTER", VRID: 51, Priority: 150,
		Advert: Some(time.Second), AuthType: "PASS", AuthPass: "secret",
		VIPs:         []netip.Addr{netip.MustParseAddr("198.18.0.100")},
		NotifyMaster: "/bin/echo \"quoted\" back\\slash\ttab \x01ctl bad\xffutf8 é",
		Track:        []Track{{Name: "eth1"}, {Name: "eth2", Weight: -20}},
	}}
	d.Groups = []*SyncGroup{{Pos: Pos{File: "in", Line: 9}, Name: "VG_1", Members: []Member{{Name: "VI_1"}}}}
	d.Services = []*Service{{
		Pos: Pos{File: "in", Line: 12}, What: "virtual_server 198.18.0.100 80", Addr: vip,
		Sched: "wrr", Method: "nat", Persist: Some(300 * time.Second), Netmask: "255.255.255.0",
		Inhibit: true, Sorry: Some(netip.MustParseAddrPort("198.18.1.99:0")), Quorum: Some(2), Hysteresis: Some(1),
		Check: &Check{Pos: Pos{File: "in", Line: 14}, Type: "http", Interval: Some(6 * time.Second), Path: "/health",
			Codes: []int{200, 301}, Digest: "0123456789abcdef0123456789abcdef", ConnectPort: 8080},
		Reals: []*RealServer{
			{Pos: Pos{File: "in", Line: 20}, Addr: netip.MustParseAddr("198.18.1.1"), Port: 8080, Weight: Some(3), Upper: 100, Lower: 50},
			{Pos: Pos{File: "in", Line: 21}, Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080},
			{Pos: Pos{File: "in", Line: 22}, Addr: netip.MustParseAddr("198.18.1.2"), Port: 8080, Inhibit: Some(false), Method: "nat"},
		},
	}}
	d.Note(Pos{File: "in", Line: 3, Seq: 3}, "a note with a newline\nand a \x7f")
	return d
}

func TestFinish(t *testing.T) {
	im, err := testDoc().Finish("test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRoundTrip(im); err != nil {
		t.Fatal(err)
	}
	c := im.Config
	if v := c.VRRP[0]; v.NotifyMaster != "/bin/echo \"quoted\" back\\slash\ttab \x01ctl bad\uFFFDutf8 é" || v.AuthPass != "secret" || len(v.TrackInterface) != 2 {
		t.Errorf("vrrp %+v", v)
	}
	if c.Director.Timeouts.UDP != 1500*time.Millisecond || c.Director.Timeouts.TCP != 2*time.Hour {
		t.Errorf("timeouts %v", c.Director.Timeouts)
	}
	s := c.Services[0]
	if s.Netmask.Bits() != 24 || s.Check.Interval != 6*time.Second || len(s.Check.StatusCodes) != 2 || s.SorryServer.Port() != 80 || s.Quorum != 2 {
		t.Errorf("service %+v, check %+v", s, *s.Check)
	}
	if len(s.RealServers) != 2 || s.RealServers[0].Weight != 3 || s.RealServers[1].InhibitOnFailure {
		t.Errorf("real servers %+v", s.RealServers)
	}
	text := string(im.TOML)
	for _, want := range []string{
		"# gvs configuration written by `gvs import test`.\n# Source: test.\n",
		"# note: in:3: a note with a newline\n# and a \\x7f\n",
		"\n# in:12: virtual_server 198.18.0.100 80\n[[service]]\naddress = \"198.18.0.100:80\"\n",
		"persistence = \"300s\"\nnetmask = \"255.255.255.0\"\n",
		"\n  [service.check]\n  type = \"http\"\n  interval = \"6s\"\n",
		"\n  [[service.real_server]]\n  address = \"198.18.1.1:8080\"\n  weight = 3\n  upper_threshold = 100\n  lower_threshold = 50\n",
		"\n#   [[service.real_server]]\n#   address = \"127.0.0.1:8080\"\n",
		"[director]\ninterface = \"eth0\"\ntcp_timeout = \"7200s\"\nudp_timeout = \"1.5s\"\n",
		"\n# in:9: vrrp_sync_group VG_1\n[[vrrp_sync_group]]\nname = \"VG_1\"\ngroup = [\"VI_1\"]\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("TOML lacks %q:\n%s", want, text)
		}
	}
	var found bool
	for _, n := range im.Notes {
		found = found || (n.Line == 21 && strings.Contains(n.Msg, "real_server 127.0.0.1:8080 is written commented out: gvs would refuse it: address: 127.0.0.1 is a loopback address"))
	}
	if !found {
		t.Errorf("no note for the commented-out real server: %v", im.Notes)
	}
}

// TestCheckRoundTripFails makes sure the round trip sees a difference and a key
// the writer's value does not carry.
func TestCheckRoundTripFails(t *testing.T) {
	im, err := testDoc().Finish("test.toml")
	if err != nil {
		t.Fatal(err)
	}
	im.Config.Services[0].RealServers[0].Weight = 4
	if err := CheckRoundTrip(im); err == nil || !strings.Contains(err.Error(), "service[0]") {
		t.Errorf("a changed weight: %v", err)
	}
	im, _ = testDoc().Finish("test.toml")
	im.TOML = append(im.TOML, "\n[[service]]\naddress = \"198.18.0.101:80\"\nfrobnicate = 1\n"...)
	if err := CheckRoundTrip(im); err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Errorf("an unknown key: %v", err)
	}
}

func TestCheckLines(t *testing.T) {
	c := &Check{Type: "tcp", Timeout: Some(3 * time.Second), ConnectIP: netip.MustParseAddr("198.18.1.1")}
	got := strings.Join(c.Lines(), "|")
	if want := `type = "tcp"|timeout = "3s"|connect_ip = "198.18.1.1"`; got != want {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
}
