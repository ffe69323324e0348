package keepalived

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
	"github.com/gvs-lb/gvs/ipvs"
)

// memFS serves includes from a map, so tests (and the fuzzer) never touch the disk.
func memFS(files map[string]string) Options {
	return Options{
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := files[filepath.Clean(name)]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		Glob: func(pattern string) ([]string, error) {
			var out []string
			for name := range files {
				if ok, err := filepath.Match(pattern, name); err != nil {
					return nil, err
				} else if ok {
					out = append(out, name)
				}
			}
			sort.Strings(out)
			return out, nil
		},
	}
}

// checkImported asserts what every import promises: the TOML parses to Config, is
// what marshalling that configuration gives (importer.CheckRoundTrip), and holds
// every note in its header.
func checkImported(t *testing.T, im *importer.Imported) {
	t.Helper()
	c, err := config.Parse("again.toml", im.TOML)
	if err != nil {
		t.Fatalf("imported TOML does not parse: %v\n%s", err, im.TOML)
	}
	if im.Config == nil || len(c.Services) != len(im.Config.Services) || len(c.VRRP) != len(im.Config.VRRP) {
		t.Fatalf("Config does not match the TOML")
	}
	if err := importer.CheckRoundTrip(im); err != nil {
		t.Fatalf("%v\n%s", err, im.TOML)
	}
	for _, n := range im.Notes {
		if n.File == "" || n.Line < 0 || n.Msg == "" {
			t.Errorf("malformed note %+v", n)
		}
		if !strings.Contains(string(im.TOML), "# note: "+importer.CommentText(n.String())+"\n") {
			t.Errorf("note missing from the TOML header: %s", n)
		}
	}
}

func importFile(t *testing.T, path string, opt Options) *importer.Imported {
	t.Helper()
	im, err := ImportFile(path, opt)
	if err != nil {
		t.Fatalf("ImportFile(%s): %v", path, err)
	}
	checkImported(t, im)
	return im
}

// note returns the first note whose message contains all of subs, or fails.
func findNote(t *testing.T, im *importer.Imported, line int, subs ...string) importer.Note {
	t.Helper()
	for _, n := range im.Notes {
		if line != 0 && n.Line != line {
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(n.Msg, s)
		}
		if ok {
			return n
		}
	}
	var all []string
	for _, n := range im.Notes {
		all = append(all, n.String())
	}
	t.Fatalf("no note at line %d containing %q; notes:\n%s", line, subs, strings.Join(all, "\n"))
	return importer.Note{}
}

// noNote fails if a note at line contains sub.
func noNote(t *testing.T, im *importer.Imported, line int, sub string) {
	t.Helper()
	for _, n := range im.Notes {
		if n.Line == line && strings.Contains(n.Msg, sub) {
			t.Errorf("unexpected note: %s", n)
		}
	}
}

func reals(s config.Service) []string {
	var out []string
	for _, r := range s.RealServers {
		out = append(out, fmt.Sprintf("%s w%d %s", r.Addr, r.Weight, r.Method))
	}
	return out
}

func addrs(c *config.Config) []string {
	var out []string
	for _, s := range c.Services {
		out = append(out, s.String())
	}
	return out
}

// TestImportKeepalivedCorpus imports every keepalived.conf under testdata/import
// (keepalived's samples, the seeds' configurations, the messy ones).
func TestImportKeepalivedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.conf")
	if err != nil || len(files) < 15 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	for _, f := range files {
		if strings.Contains(f, "/cycle/") {
			continue
		}
		t.Run(strings.TrimPrefix(f, "testdata/"), func(t *testing.T) {
			im := importFile(t, f, Options{})
			if len(im.Config.Services)+len(im.Config.VRRP) == 0 && !strings.Contains(string(im.TOML), "# [[service]]") {
				t.Errorf("nothing translated:\n%s", im.TOML)
			}
		})
	}
}

// TestImportKeepalivedSharedSamples imports keepalived's samples where the project
// keeps them (../shared), so a sample added there is covered too.
func TestImportKeepalivedSharedSamples(t *testing.T) {
	files, _ := filepath.Glob("../../../../shared/keepalived-samples/*.conf")
	if len(files) == 0 {
		t.Skip("no ../shared/keepalived-samples")
	}
	for _, f := range files {
		importFile(t, f, Options{})
		copyPath := filepath.Join("testdata/samples", filepath.Base(f))
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(copyPath)
		if err != nil || string(a) != string(b) {
			t.Errorf("%s: testdata copy %s is missing or differs", f, copyPath)
		}
	}
}

func TestImportKeepalivedSamples(t *testing.T) {
	dir := "testdata/samples/"

	t.Run("01-default", func(t *testing.T) {
		im := importFile(t, dir+"01-acassen-keepalived-default.conf", Options{})
		c := im.Config
		if got, want := addrs(c), []string{"TCP 192.168.200.100:443", "TCP 10.10.10.2:1358", "TCP 10.10.10.3:1358"}; !slices.Equal(got, want) {
			t.Fatalf("services %q, want %q", got, want)
		}
		s := c.Services[0]
		if s.Scheduler != "rr" || s.Method != ipvs.NAT || s.Persistence != 50*time.Second || s.Protocol != ipvs.TCP {
			t.Errorf("service 0: %s %s %v %s", s.Scheduler, s.Method, s.Persistence, s.Protocol)
		}
		ch := s.Check
		if ch == nil || ch.Type != config.CheckHTTPS || ch.Path != "/" || ch.Digest != "ff20ad2481f97b1754ef3e12ecd3a9cc" ||
			ch.Interval != 6*time.Second || ch.Timeout != 3*time.Second || ch.Retries != 3 || ch.RetryDelay != 3*time.Second {
			t.Errorf("service 0 check: %+v", ch)
		}
		if got, want := reals(c.Services[1]), []string{"192.168.200.2:1358 w1 nat", "192.168.200.3:1358 w1 nat"}; !slices.Equal(got, want) {
			t.Errorf("service 1 real servers %q, want %q", got, want)
		}
		if c.Services[2].Check.Interval != 3*time.Second {
			t.Errorf("service 2 interval %v, want 3s", c.Services[2].Check.Interval)
		}
		v := c.VRRP[0]
		if v.Name != "VI_1" || v.State != config.VRRPMaster || v.VirtualRouterID != 51 || v.Priority != 100 || v.AdvertInt != time.Second ||
			v.Interface != "eth0" || len(v.VirtualIPAddress) != 3 || v.AuthType != "" {
			t.Errorf("vrrp: %+v", v)
		}
		if c.Director.Interface != "eth0" {
			t.Errorf("director interface %q", c.Director.Interface)
		}
		findNote(t, im, 14, "vrrp_strict")
		findNote(t, im, 25, "authentication dropped", "strict")
		if got, want := c.Services[1].SorryServer, netip.MustParseAddrPort("192.168.200.200:1358"); got != want {
			t.Errorf("service 1 sorry_server %v, want %v", got, want)
		}
		if !c.Services[1].SorryServerMAC.IsZero() || c.Services[0].SorryServer.IsValid() || c.Services[2].SorryServer.IsValid() {
			t.Errorf("sorry servers: %+v %v %v", c.Services[1].SorryServerMAC, c.Services[0].SorryServer, c.Services[2].SorryServer)
		}
		if !strings.Contains(string(im.TOML), "\nsorry_server = \"192.168.200.200:1358\"\n") {
			t.Errorf("TOML lacks the sorry_server")
		}
		findNote(t, im, 68, "sorry_server 192.168.200.200", "MAC", "sorry_server_mac", "bench replay")
		noNote(t, im, 68, "not translated")
		findNote(t, im, 50, "url /mrtg/ not checked")
		// The two servers' HTTP_GET checkers differ (digest): each gets its own
		// [[service.real_server.check]], as keepalived checks each with its own.
		for _, s := range c.Services {
			for _, rs := range s.RealServers {
				if rs.Addr == netip.MustParseAddrPort("192.168.200.3:1358") {
					if s.Check != nil || len(rs.Checks) != 1 || rs.Checks[0].Digest != "640205b7b0fc66c1ea91c463fac6334c" {
						t.Errorf("192.168.200.3:1358: service check %+v, own checks %+v; want its own check with its digest", s.Check, rs.Checks)
					}
				}
			}
		}
		findNote(t, im, 12, "router_id LVS_DEVEL")
		findNote(t, im, 0, "MAC", "bench replay")
	})

	t.Run("02-fwmark", func(t *testing.T) {
		im := importFile(t, dir+"02-acassen-keepalived-fwmark.conf", Options{})
		if len(im.Config.Services) != 0 {
			t.Fatalf("fwmark service written live: %q", addrs(im.Config))
		}
		findNote(t, im, 7, "fwmark service written commented out", "[[service.match]]")
		for _, want := range []string{"# fwmark = 1", "#   connect_port = 80", "#   address = \"192.168.201.100\"", "#   address = \"192.168.201.101\""} {
			if !strings.Contains(string(im.TOML), want) {
				t.Errorf("commented-out service lacks %q", want)
			}
		}
	})

	t.Run("03-virtual_server_group", func(t *testing.T) {
		im := importFile(t, dir+"03-acassen-keepalived-virtual_server_group.conf", Options{})
		want := []string{"TCP 10.0.0.1:8080", "TCP 10.0.0.2:80", "TCP 192.168.200.1:1358"}
		for i := 3; i <= 10; i++ {
			want = append(want, fmt.Sprintf("TCP 192.168.200.%d:80", i))
		}
		if got := addrs(im.Config); !slices.Equal(got, want) {
			t.Fatalf("services %q, want %q", got, want)
		}
		for _, s := range im.Config.Services {
			if got := reals(s); !slices.Equal(got, []string{"192.168.200.1:1358 w1 nat", "192.168.200.2:1358 w1 nat"}) {
				t.Errorf("%s: real servers %q", s.String(), got)
			}
			if s.Check == nil || s.Check.Path != "/testurl3/test.jsp" {
				t.Errorf("%s: check %+v", s.String(), s.Check)
			}
		}
		findNote(t, im, 22, "expanded into 13 gvs services")
		findNote(t, im, 18, "fwmark 1", "commented out")
		findNote(t, im, 19, "fwmark 2", "commented out")
	})

	t.Run("04-misc_check", func(t *testing.T) {
		im := importFile(t, dir+"04-acassen-keepalived-misc_check_arg.conf", Options{})
		ch := im.Config.Services[0].Check
		if ch == nil || ch.Type != config.CheckExec || !slices.Equal(ch.Command, []string{"/usr/local/bin/script.sh", "arg1", "arg2"}) || ch.Timeout != 6*time.Second {
			t.Errorf("check %+v (want exec of script.sh arg1 arg2, timeout = delay_loop 6s)", ch)
		}
	})

	t.Run("05-quorum-wrr", func(t *testing.T) {
		im := importFile(t, dir+"05-acassen-keepalived-quorum-wrr.conf", Options{})
		s := im.Config.Services[0]
		var want []string
		for i := 1; i <= 10; i++ {
			want = append(want, fmt.Sprintf("10.0.0.%d:8080 w1 nat", i))
		}
		if got := reals(s); !slices.Equal(got, want) {
			t.Errorf("real servers %q, want in file order %q", got, want)
		}
		if s.Scheduler != "wrr" || s.Persistence != 900*time.Second {
			t.Errorf("scheduler %s persistence %v", s.Scheduler, s.Persistence)
		}
		if ch := s.Check; ch == nil || ch.Type != config.CheckTCP || ch.ConnectPort != 80 || !ch.Alpha || !ch.Omega || ch.Timeout != 3*time.Second {
			t.Errorf("check %+v (want tcp, port 80, alpha, omega)", ch)
		}
		if s.Quorum != 7 || s.Hysteresis != 2 || s.QuorumUp != "/usr/local/sbin/quorum-up.sh" || s.QuorumDown != "/usr/local/sbin/quorum-down.sh" {
			t.Errorf("quorum %d hysteresis %d up %q down %q", s.Quorum, s.Hysteresis, s.QuorumUp, s.QuorumDown)
		}
		if s.SorryServer.IsValid() || s.InhibitOnFailure {
			t.Errorf("sorry_server %v inhibit %v, want none", s.SorryServer, s.InhibitOnFailure)
		}
		for line := 31; line <= 34; line++ {
			noNote(t, im, line, "")
		}
	})

	t.Run("06-inhibit_on_failure", func(t *testing.T) {
		im := importFile(t, dir+"06-acassen-keepalived-inhibit_on_failure.conf", Options{})
		s := im.Config.Services[0]
		if s.InhibitOnFailure || len(s.RealServers) != 1 || !s.RealServers[0].InhibitOnFailure {
			t.Errorf("inhibit_on_failure: service %v, real servers %+v (want only the real server's)", s.InhibitOnFailure, s.RealServers)
		}
		if !strings.Contains(string(im.TOML), "\n  inhibit_on_failure = true\n") {
			t.Errorf("TOML lacks the real server's inhibit_on_failure")
		}
		noNote(t, im, 22, "")
		n := findNote(t, im, 10, "router_id LVS_DEVEL")
		if !strings.HasSuffix(n.File, "06-acassen-keepalived-inhibit_on_failure.conf") {
			t.Errorf("note file %q", n.File)
		}
	})

	t.Run("07-ipv6-smtp_check", func(t *testing.T) {
		im := importFile(t, dir+"07-acassen-keepalived-ipv6-smtp_check.conf", Options{})
		s := im.Config.Services[0]
		if s.String() != "TCP [ae00::1]:80" || s.Check != nil || !slices.Equal(reals(s), []string{"[ae00::10]:25 w1 nat"}) {
			t.Errorf("service %s check %v reals %q", s.String(), s.Check, reals(s))
		}
		findNote(t, im, 24, "SMTP_CHECK not translated")
		findNote(t, im, 7, "IPv6_group is defined but no virtual_server uses it")
		for _, n := range im.Notes {
			if strings.Contains(n.Msg, "takes no block") {
				t.Errorf("checker block noted as unexpected: %s", n)
			}
		}
	})

	t.Run("08-conditional_conf", func(t *testing.T) {
		for _, tc := range []struct {
			id       string
			priority uint8
		}{{"", 100}, {"high", 170}, {"low", 85}} {
			im := importFile(t, dir+"08-acassen-keepalived-conditional_conf.conf", Options{ConfigID: tc.id})
			v := im.Config.VRRP[0]
			if v.Name != "VI_0" || v.Priority != tc.priority || v.Version != 3 || v.AdvertInt != 12*time.Second ||
				!slices.Equal(v.VirtualIPAddress, []netip.Addr{netip.MustParseAddr("10.1.0.254")}) {
				t.Errorf("-i %q: vrrp %+v", tc.id, v)
			}
			switch tc.id {
			case "":
				findNote(t, im, 3, "@high skipped", "no config id", "lines 3, 7, 19")
				findNote(t, im, 4, "@low skipped", "lines 4, 8, 20")
			case "high":
				findNote(t, im, 4, "@low skipped", `config id is "high"`)
				findNote(t, im, 3, "net_namespace high")
			}
			findNote(t, im, 23, "use_vmac")
			if tc.id == "" {
				// Without -i, the script's only script line is an @high/@low one.
				findNote(t, im, 25, "track_script check_VI_0", "no vrrp_script has that name", "left out")
			}
			if want := []config.TrackedInterface{{Name: "eth3", Weight: 0}, {Name: "eth2", Weight: 20}}; !slices.Equal(v.TrackInterface, want) {
				t.Errorf("-i %q: track_interface %+v, want %+v", tc.id, v.TrackInterface, want)
			}
			noNote(t, im, 27, "")
			noNote(t, im, 29, "")
		}
	})
}

func TestImportKeepalivedSeeds(t *testing.T) {
	dir := "testdata/seeds/"
	t.Run("000", func(t *testing.T) {
		im := importFile(t, dir+"000-lvs1-http-get.conf", Options{})
		s := im.Config.Services[0]
		if s.String() != "TCP 172.19.0.100:80" || s.Method != ipvs.DR || s.Scheduler != "rr" || s.Persistence != 50*time.Second {
			t.Errorf("service %s %s %s %v", s.String(), s.Method, s.Scheduler, s.Persistence)
		}
		if got := reals(s); !slices.Equal(got, []string{"172.19.0.5:80 w2 dr", "172.19.0.6:80 w2 dr"}) {
			t.Errorf("real servers %q", got)
		}
		if ch := s.Check; ch.Type != config.CheckHTTP || ch.Path != "/" || ch.Interval != 5*time.Second || ch.RetryDelay != 2*time.Second || ch.Retries != 3 {
			t.Errorf("check %+v", ch)
		}
		findNote(t, im, 2, "lvs_id LVS1")
	})
	t.Run("003", func(t *testing.T) {
		im := importFile(t, dir+"003-fwmark-ftp-rest.conf", Options{})
		v := im.Config.VRRP[0]
		if v.UnicastSrcIP != netip.MustParseAddr("192.168.100.244") || v.AuthType != "PASS" || v.AuthPass != "xxxx" || v.Interface != "enp1s0" {
			t.Errorf("vrrp %+v", v)
		}
		findNote(t, im, 9, "mcast_src_ip written as unicast_src_ip")
		findNote(t, im, 20, "fwmark 300", "commented out")
		if got := addrs(im.Config); !slices.Equal(got, []string{"TCP 192.168.100.111:9826"}) {
			t.Errorf("services %q", got)
		}
		s := im.Config.Services[0]
		// nb_get_retry is no TCP_CHECK keyword in keepalived 2.2.7: the retry
		// stays at its default.
		if s.Scheduler != "wrr" || s.Method != ipvs.DR || s.Check.Type != config.CheckTCP || s.Check.Retries != 1 || s.Check.ConnectPort != 0 {
			t.Errorf("service %+v check %+v", s, s.Check)
		}
		findNote(t, im, 54, "nb_get_retry 3", "ignored, as keepalived 2.2.7 does")
	})
	t.Run("004a", func(t *testing.T) {
		im := importFile(t, dir+"004a-annotated-default.conf", Options{})
		findNote(t, im, 13, `unknown keyword "15-30"`)
		findNote(t, im, 26, "192.168.200.16", "Virtual, use, between")
		if v := im.Config.VRRP[0]; len(v.VirtualIPAddress) != 3 || v.AuthPass != "1111" {
			t.Errorf("vrrp %+v", v)
		}
	})
	t.Run("004e", func(t *testing.T) {
		im := importFile(t, dir+"004e-lb01-two-instances.conf", Options{})
		var got []string
		for _, v := range im.Config.VRRP {
			got = append(got, fmt.Sprintf("%s %s %d %d %v", v.Name, v.State, v.VirtualRouterID, v.Priority, v.VirtualIPAddress))
		}
		want := []string{"VI_1 MASTER 51 150 [10.0.0.3]", "VI_2 BACKUP 52 100 [10.0.0.4]"}
		if !slices.Equal(got, want) {
			t.Errorf("vrrp %q, want %q", got, want)
		}
		if got := im.Config.VRRP[0].VIPs[0].String(); got != "10.0.0.3/24 dev eth0 label eth0:1" {
			t.Errorf("VI_1's VIP %q, want its prefix, dev and label kept (the kernel address)", got)
		}
		if got := im.Config.VRRP[0].TrackScript; len(got) != 1 || got[0].Name != "check" || got[0].Weight != 2 {
			t.Errorf("VI_1 track_script %+v, want the script check with its weight 2", got)
		}
	})
}

// TestImportKeepalivedTracking checks the notify scripts, track_interface,
// track_script and vrrp_sync_group translation against the exact expected TOML and
// notes (testdata/tracking/README.md says what each line tests).
func TestImportKeepalivedTracking(t *testing.T) {
	const dir = "testdata/tracking/"
	im := importGolden(t, dir)

	wantNotes := []string{
		`9: [director] interface = "eth0" taken from the vrrp_instance interface (keepalived has no single data-path interface): check it`,
		`21: vrrp_instance VI_1: "notify_stop /etc/keepalived/stop.sh" not translated: gvs has no notify script for this event (it has notify_master, notify_backup, notify_fault and notify)`,
		`27: vrrp_instance VI_1: track_interface "eth5 weight 300": weight 300 is outside -253..253: tracked without a weight (FAULT while down), as keepalived does`,
		`28: vrrp_instance VI_1: track_interface eth1 listed twice: the first is written`,
		`44: vrrp_instance VI_2: track_interface eth1 weight -30 left out: keepalived ignores weights on the address owner (priority 255) and stops tracking the interface; gvs refuses them`,
		`55: vrrp_instance VI_3: track_interface eth6: weight -15 dropped: keepalived ignores tracking weights in a sync group (VG_1) without sync_group_tracking_weight, so eth6 going down means FAULT`,
		`59: vrrp_instance VI_4 has no virtual_ipaddress: gvs needs at least one; written commented out`,
		`77: vrrp_sync_group VG_1: member VI_9 is dropped: no vrrp_instance has that name`,
		`79: vrrp_sync_group VG_1: "notify_master /etc/keepalived/group_master.sh" not translated: gvs has no group-level notify scripts (the members' own notify_* keys run on each instance's changes)`,
		`80: vrrp_sync_group VG_1: "notify /etc/keepalived/group.sh" not translated: gvs has no group-level notify scripts (the members' own notify_* keys run on each instance's changes)`,
		`83: vrrp_sync_group VG_2 has no member gvs runs: written commented out`,
		`85: vrrp_sync_group VG_2: member VI_4 is dropped: its vrrp_instance is written commented out`,
		`90: vrrp_sync_group VG_3: member VI_3 is dropped: it is already in vrrp_sync_group VG_1 (an instance is in one group at most)`,
	}
	var got []string
	for _, n := range im.Notes {
		if n.File != dir+"keepalived.conf" {
			t.Errorf("note names file %q", n.File)
		}
		got = append(got, fmt.Sprintf("%d: %s", n.Line, n.Msg))
	}
	if !slices.Equal(got, wantNotes) {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantNotes, "\n"))
	}

	// What Parse made of it: the keys reach Config as gvs reads them.
	c := im.Config
	if len(c.VRRP) != 4 {
		t.Fatalf("%d instances, want 4 (VI_4 commented out)", len(c.VRRP))
	}
	v := c.VRRP[0]
	if v.NotifyMaster != "/etc/keepalived/to_master.sh VI_1 --force" || v.NotifyBackup != "/etc/keepalived/to_backup.sh VI_1 'two words'" ||
		v.NotifyFault != "/etc/keepalived/fault.sh" || v.Notify != "/usr/local/bin/notify-all.sh" {
		t.Errorf("VI_1 notify: master %q backup %q fault %q notify %q", v.NotifyMaster, v.NotifyBackup, v.NotifyFault, v.Notify)
	}
	for _, tc := range []struct {
		i    int
		want []config.TrackedInterface
	}{
		{0, []config.TrackedInterface{{Name: "eth1", Weight: 0}, {Name: "eth2", Weight: -20}, {Name: "eth3", Weight: 0},
			{Name: "eth4", Weight: 10, Reverse: true}, {Name: "eth5", Weight: 0}}},
		{1, []config.TrackedInterface{{Name: "eth2", Weight: 0}}},
		{2, []config.TrackedInterface{{Name: "eth6", Weight: 0}}},
		{3, []config.TrackedInterface{{Name: "eth7", Weight: -25}}},
	} {
		if got := c.VRRP[tc.i].TrackInterface; !slices.Equal(got, tc.want) {
			t.Errorf("%s track_interface %+v, want %+v", c.VRRP[tc.i].Name, got, tc.want)
		}
	}
	var groups []string
	for _, g := range c.VRRPSyncGroups {
		groups = append(groups, g.Name+" "+strings.Join(g.Group, ","))
	}
	if want := []string{"VG_1 VI_3", "VG_3 VI_5"}; !slices.Equal(groups, want) {
		t.Errorf("sync groups %q, want %q", groups, want)
	}
}

// TestImportKeepalivedMessy covers the grammar real files use: includes by glob
// relative to the including file, one-line blocks, braces on the next line, inline
// comments, lowercase keywords, group ranges (IPv4 and IPv6), parameters.
func TestImportKeepalivedMessy(t *testing.T) {
	im := importFile(t, "testdata/messy/main.conf", Options{})
	c := im.Config
	want := []string{"UDP 198.18.0.110:53", "TCP 198.18.0.100:80", "TCP 198.18.0.101:80", "TCP 198.18.0.102:80",
		"TCP [2001:db8::a]:80", "TCP [2001:db8::b]:80", "TCP [2001:db8::c]:80", "UDP 198.18.0.100:443"}
	if got := addrs(c); !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	udp := c.Services[0]
	if !udp.OPS || udp.Check.Type != config.CheckUDP || udp.Check.Payload != "ping" || udp.Check.Expect != "pong" || udp.Check.Interval != 2500*time.Millisecond {
		t.Errorf("udp service %+v check %+v", udp, udp.Check)
	}
	web := c.Services[1]
	// keepalived checks only .2; .1 is always up: .2 gets its own check.
	if web.Scheduler != "wrr" || web.Method != ipvs.DR || web.Persistence != 360*time.Second || web.Check != nil ||
		web.RealServers[0].Checks != nil || len(web.RealServers[1].Checks) != 1 ||
		web.RealServers[1].Checks[0].Type != config.CheckTCP || web.RealServers[1].Checks[0].Timeout != 2*time.Second {
		t.Errorf("group service %+v check %+v", web, web.Check)
	}
	if got := reals(web); !slices.Equal(got, []string{"198.18.1.1:80 w3 dr", "198.18.1.2:80 w1 dr"}) {
		t.Errorf("one-line and next-line real servers %q", got)
	}
	if len(c.Services[4].RealServers) != 0 {
		t.Errorf("IPv4 real servers kept in an IPv6 service")
	}
	tls := c.Services[7]
	if ck := tls.RealServers[0].Checks; tls.Scheduler != "sh" || tls.Flags == 0 || tls.Check != nil || len(ck) != 1 || ck[0].Type != config.CheckHTTPS || ck[0].Path != "/health" ||
		!slices.Equal(ck[0].StatusCodes, []int{200, 201, 202, 203, 204}) || ck[0].Timeout != time.Second || tls.RealServers[1].Checks != nil {
		t.Errorf("parameter-named service %+v checks %+v", tls, tls.RealServers)
	}
	a, b := c.VRRP[0], c.VRRP[1]
	if a.Name != "VI_A" || a.State != config.VRRPBackup || !a.NoPreempt || a.AuthPass != "long pas" ||
		a.UnicastSrcIP != netip.MustParseAddr("198.18.0.3") || len(a.UnicastPeer) != 1 || len(a.VirtualIPAddress) != 2 {
		t.Errorf("VI_A %+v", a)
	}
	if b.Name != "VI_B" || b.Version != 3 || b.AdvertInt != 500*time.Millisecond || !b.IPv6() {
		t.Errorf("VI_B %+v", b)
	}

	mainConf := "testdata/messy/main.conf"
	n := findNote(t, im, 6, "no file matched")
	if n.File != mainConf {
		t.Errorf("include note file %q", n.File)
	}
	n = findNote(t, im, 1, `keyword "VRRP_INSTANCE" read as "vrrp_instance"`)
	if n.File != "testdata/messy/vrrp/b.conf" {
		t.Errorf("note in an included file names %q", n.File)
	}
	findNote(t, im, 28, `keyword "tcp_check" read as "TCP_CHECK"`)
	findNote(t, im, 2, `"state backup" read as BACKUP`)
	findNote(t, im, 8, "auth_pass is longer than 8 bytes")
	if got := c.VRRP[0].VIPs[0].String(); got != "198.18.0.100/24 dev eth1 label eth1:vip" {
		t.Errorf("VI_A's first VIP %q, want its prefix, dev and label kept", got)
	}
	findNote(t, im, 41, `unknown keyword "frobnicate"`)
	findNote(t, im, 24, "[2001:db8::a]:80", "real_server 198.18.1.1 80", "address family differs")
	findNote(t, im, 18, "expanded into 6 gvs services")
}

func TestImportKeepalivedGrammar(t *testing.T) {
	tests := []struct {
		name string
		conf string
		opt  func(*Options)
		// want checks the result
		want func(t *testing.T, im *importer.Imported)
	}{{
		name: "one-line blocks and braces on the next line",
		conf: "virtual_server 198.18.0.100 80 { lb_kind DR real_server 198.18.1.1 80 { weight 4 } }\n" +
			"virtual_server 198.18.0.101 80\n{\nlb_kind NAT\nreal_server 198.18.1.2 8080\n\n{\nweight 5\n}\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			// "lb_kind DR real_server ..." is one statement to keepalived: it runs to the '{'.
			findNote(t, im, 1, `"lb_kind DR real_server 198.18.1.1 80": extra words`)
			s := im.Config.Services[1]
			if s.Method != ipvs.NAT || !slices.Equal(reals(s), []string{"198.18.1.2:8080 w5 nat"}) {
				t.Errorf("next-line braces: %+v %q", s, reals(s))
			}
		},
	}, {
		name: "inline comments, also mid-word, and escaped comment characters",
		conf: "vrrp_instance \"V!1#\"#comment\n{ virtual_router_id 9! comment\nstate MASTER # x\n" +
			"authentication {\nauth_type PASS\nauth_pass a\\#b\n}\nvirtual_ipaddress { 198.18.0.9 } }\n",
		want: func(t *testing.T, im *importer.Imported) {
			v := im.Config.VRRP[0]
			if v.Name != "V!1#" || v.VirtualRouterID != 9 || v.State != config.VRRPMaster || v.AuthPass != "a#b" {
				t.Errorf("vrrp %+v", v)
			}
		},
	}, {
		name: "conditional lines: @id and @^id",
		conf: "vrrp_instance V {\nvirtual_router_id 9\n@a priority 10\n@^a priority 20\n@b priority 30\nvirtual_ipaddress { 198.18.0.9 }\n}\n",
		opt:  func(o *Options) { o.ConfigID = "a" },
		want: func(t *testing.T, im *importer.Imported) {
			if p := im.Config.VRRP[0].Priority; p != 10 {
				t.Errorf("priority %d, want 10 (only @a applies with -i a)", p)
			}
			findNote(t, im, 4, "@^a skipped")
			findNote(t, im, 5, "@b skipped")
		},
	}, {
		name: "parameters",
		conf: "$IF=eth7\n$PRIO=42\nvrrp_instance V {\ninterface $IF\npriority ${PRIO}\nvirtual_router_id 9\nvirtual_ipaddress { 198.18.0.9 }\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			if v := im.Config.VRRP[0]; v.Interface != "eth7" || v.Priority != 42 {
				t.Errorf("vrrp %+v", v)
			}
		},
	}, {
		name: "include relative to the including file, with a glob and alternatives",
		conf: "include sub/*.conf\ninclude {x,y}.conf\n",
		opt: func(o *Options) {
			*o = memFS(map[string]string{
				"etc/sub/1.conf": "include ../x.conf\n",
				"etc/x.conf":     "virtual_server 198.18.0.1 80 {\nlb_kind DR\nreal_server 198.18.1.1 80\n}\n",
				"etc/y.conf":     "virtual_server 198.18.0.2 80 {\nlb_kind DR\n}\n",
			})
		},
		want: func(t *testing.T, im *importer.Imported) {
			// No protocol: UDP, as keepalived 2.2.7.
			if got := addrs(im.Config); !slices.Equal(got, []string{"UDP 198.18.0.1:80", "UDP 198.18.0.2:80"}) {
				t.Errorf("services %q", got)
			}
			// x.conf, included twice (once through sub/1.conf), is a duplicate the
			// second time: gvs refuses duplicate services, so it is commented out.
			findNote(t, im, 1, "written commented out", "duplicate service")
		},
	}, {
		name: "DR port, family mismatch, duplicate real server, loopback",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind DR\nreal_server 198.18.1.1 8080\nreal_server 2001:db8::1 80\n" +
			"real_server 198.18.1.1 80\nreal_server 127.0.0.1 80\nreal_server 198.18.1.2 80 { lvs_method NAT }\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			s := im.Config.Services[0]
			if got := reals(s); !slices.Equal(got, []string{"198.18.1.1:80 w1 dr", "198.18.1.2:80 w1 nat"}) {
				t.Errorf("real servers %q", got)
			}
			findNote(t, im, 3, "DR cannot change the port")
			findNote(t, im, 4, "address family differs")
			findNote(t, im, 5, "the same real server again")
			findNote(t, im, 6, "real_server 127.0.0.1:80 is written commented out", "loopback")
		},
	}, {
		name: "checkers: several per real server, differing, status ranges, shell syntax",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind NAT\ndelay_loop 10\n" +
			"real_server 198.18.1.1 80 {\nHTTP_GET { url { path /a\nstatus_code 200 301-302 } }\nTCP_CHECK { }\n}\n" +
			"real_server 198.18.1.2 80 {\nMISC_CHECK { misc_path \"/bin/check | grep ok\" }\n}\n" +
			"real_server 198.18.1.3 80 {\nDNS_CHECK { }\n}\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			// Each server keeps its own checkers, as keepalived runs them.
			s := im.Config.Services[0]
			if s.Check != nil || len(s.RealServers) != 3 {
				t.Fatalf("service check %+v, %d servers; want per-server checks", s.Check, len(s.RealServers))
			}
			one, two, three := s.RealServers[0].Checks, s.RealServers[1].Checks, s.RealServers[2].Checks
			if len(one) != 2 || one[0].Type != config.CheckHTTP || one[0].Path != "/a" || !slices.Equal(one[0].StatusCodes, []int{200, 301, 302}) ||
				one[0].Interval != 10*time.Second || one[1].Type != config.CheckTCP || one[1].Interval != 10*time.Second {
				t.Errorf("198.18.1.1's checks %+v, want its HTTP_GET and TCP_CHECK", one)
			}
			if len(two) != 1 || two[0].Type != config.CheckExec {
				t.Errorf("198.18.1.2's checks %+v, want its MISC_CHECK", two)
			}
			if three != nil {
				t.Errorf("198.18.1.3's checks %+v, want none (DNS_CHECK: always up, as keepalived without a checker)", three)
			}
			findNote(t, im, 10, "looks like shell syntax")
			findNote(t, im, 13, "DNS_CHECK not translated")
			findNote(t, im, 12, "no check gvs can run (DNS_CHECK)", "always up")
		},
	}, {
		name: "inhibit_on_failure: service default, real-server override",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind DR\ninhibit_on_failure\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n" +
			"real_server 198.18.1.2 80 { inhibit_on_failure off\nTCP_CHECK { } }\nreal_server 198.18.1.3 80 { inhibit_on_failure on\nTCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.2 80 {\nlb_kind DR\nreal_server 198.18.1.1 80 { inhibit_on_failure\nTCP_CHECK { } }\nreal_server 198.18.1.2 80 { TCP_CHECK { } }\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			var got []bool
			for _, s := range im.Config.Services {
				got = append(got, s.InhibitOnFailure)
				for _, r := range s.RealServers {
					got = append(got, r.InhibitOnFailure)
				}
			}
			if want := []bool{true, true, false, true, false, true, false}; !slices.Equal(got, want) {
				t.Errorf("inhibit_on_failure (service, its real servers, ...) %v, want %v", got, want)
			}
			for _, n := range im.Notes {
				if strings.Contains(n.Msg, "inhibit") {
					t.Errorf("note about inhibit_on_failure: %s", n)
				}
			}
		},
	}, {
		name: "sorry_server: port, DR port, family, method, sorry_server_inhibit/lvs_method, no check",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind DR\nsorry_server 198.18.2.1\nsorry_server_inhibit\nsorry_server_lvs_method NAT\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.2 80 {\nlb_kind DR\nsorry_server 198.18.2.2 8080\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.3 80 {\nlb_kind NAT\nsorry_server 198.18.2.3 8080\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.4 80 {\nlb_kind NAT\nsorry_server 2001:db8::9 80\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.5 80 {\nlb_kind NAT\nsorry_server 198.18.2.5 0\nreal_server 198.18.1.1 80 { lvs_method DR\nTCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.6 80 {\nlb_kind DR\nsorry_server 198.18.2.6 80\nquorum 2\nreal_server 198.18.1.1 80\n}\n" +
			"virtual_server 198.18.0.7 80 {\nlb_kind DR\nsorry_server nowhere 80\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			var got []string
			for _, s := range im.Config.Services {
				got = append(got, s.SorryServer.String())
			}
			want := []string{"198.18.2.1:80", "198.18.2.2:80", "198.18.2.3:8080", "invalid AddrPort", "198.18.2.5:80", "198.18.2.6:80", "invalid AddrPort"}
			if !slices.Equal(got, want) {
				t.Errorf("sorry servers %q, want %q", got, want)
			}
			if s := im.Config.Services[5]; s.Quorum != 2 {
				t.Errorf("quorum %d, want 2", s.Quorum)
			}
			findNote(t, im, 3, "sorry_server 198.18.2.1", "MAC")
			findNote(t, im, 4, `"sorry_server_inhibit" not translated`)
			findNote(t, im, 5, `"sorry_server_lvs_method NAT" not translated`)
			findNote(t, im, 10, "sorry_server: DR cannot change the port", "without port 8080")
			noNote(t, im, 15, "cannot change the port")
			findNote(t, im, 20, "sorry_server 2001:db8::9", "address family differs", "left out")
			findNote(t, im, 25, "gvs forwards to it by DR", "keepalived by the virtual server's NAT")
			findNote(t, im, 31, "no check gvs can run", "quorum and the sorry server only to checked services")
			findNote(t, im, 37, `"sorry_server nowhere 80"`, "not an IP address", "ignored")
		},
	}, {
		name: "quorum, hysteresis, quorum_up/down: values, quoting, duplicates",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind DR\nquorum 3\nhysteresis 1\n" +
			"quorum_up \"/usr/bin/logger -t lvs quorum up\"\nquorum_down /usr/bin/logger \"quorum down\" it's\nquorum_down /bin/other\n" +
			"real_server 198.18.1.1 80 { weight 3\nTCP_CHECK { } }\n}\n" +
			"virtual_server 198.18.0.2 80 {\nlb_kind DR\nquorum 0\nhysteresis -1\nquorum_up \"/bin/a && /bin/b\"\nreal_server 198.18.1.1 80 { TCP_CHECK { } }\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			s := im.Config.Services[0]
			if s.Quorum != 3 || s.Hysteresis != 1 || s.QuorumUp != "/usr/bin/logger -t lvs quorum up" || s.QuorumDown != `/usr/bin/logger 'quorum down' 'it'\''s'` {
				t.Errorf("quorum %d hysteresis %d up %q down %q", s.Quorum, s.Hysteresis, s.QuorumUp, s.QuorumDown)
			}
			findNote(t, im, 7, "quorum_down is already set: ignored")
			s = im.Config.Services[1]
			if s.Quorum != 0 || s.Hysteresis != 0 || s.QuorumUp != "/bin/a && /bin/b" {
				t.Errorf("quorum %d hysteresis %d up %q", s.Quorum, s.Hysteresis, s.QuorumUp)
			}
			findNote(t, im, 13, `"quorum 0": want an integer 1..`)
			findNote(t, im, 14, `"hysteresis -1": want an integer 0..`)
			findNote(t, im, 15, "without a shell, gvs with /bin/sh -c")
			noNote(t, im, 5, "shell")
		},
	}, {
		name: "ops and flags that do not apply, SCTP, port 0 without persistence",
		conf: "virtual_server 198.18.0.1 80 {\nlb_kind DR\nops\nsh-port\n}\n" +
			"virtual_server 198.18.0.2 80 {\nprotocol SCTP\n}\n" +
			"virtual_server 198.18.0.3 0 {\nlb_kind DR\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			// Without protocol the service is UDP (keepalived 2.2.7), so ops stays.
			if got := addrs(im.Config); !slices.Equal(got, []string{"UDP 198.18.0.1:80"}) || !im.Config.Services[0].OPS {
				t.Errorf("services %q", got)
			}
			findNote(t, im, 1, "no protocol", "keepalived 2.2.7 makes such a virtual server UDP")
			noNote(t, im, 1, "ops applies to UDP services only")
			findNote(t, im, 1, "sh-port", "not valid for scheduler wlc")
			findNote(t, im, 7, "SCTP")
			findNote(t, im, 9, "is written commented out", "port zero only supported in persistent services")
			findNote(t, im, 6, "no lb_kind", "NAT")
		},
	}, {
		name: "TUN needs the director's address; a byte-order mark",
		conf: "\uFEFFvirtual_server 198.18.0.1 80 {\nlb_kind TUN\nreal_server 198.18.1.1 80\nreal_server 198.18.1.2 80 { lvs_method DR }\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			if got := reals(im.Config.Services[0]); !slices.Equal(got, []string{"198.18.1.2:80 w1 dr"}) {
				t.Errorf("real servers %q", got)
			}
			findNote(t, im, 3, "real_server 198.18.1.1:80 is written commented out", "set [director] address")
			for _, n := range im.Notes {
				if strings.Contains(n.Msg, "unknown keyword") {
					t.Errorf("BOM read as part of a keyword: %s", n)
				}
			}
		},
	}, {
		name: "global_defs: VRRP defaults and IPVS timeouts",
		conf: "global_defs {\nvrrp_version 3\nvrrp_garp_master_delay 2\nvrrp_garp_master_refresh 60\nlvs_timeouts tcp 7200 tcpfin 60 udp 30\n}\n" +
			"vrrp_instance V {\nvirtual_router_id 9\nvirtual_ipaddress { 198.18.0.9 }\nauthentication {\nauth_type PASS\nauth_pass x\n}\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			d, v := im.Config.Director, im.Config.VRRP[0]
			if d.Timeouts.TCP != 2*time.Hour || d.Timeouts.TCPFin != time.Minute || d.Timeouts.UDP != 30*time.Second {
				t.Errorf("timeouts %+v", d.Timeouts)
			}
			if v.Version != 3 || v.GARPMasterDelay != 2*time.Second || v.GARPMasterRefresh != time.Minute || v.AuthType != "" {
				t.Errorf("vrrp %+v", v)
			}
			findNote(t, im, 10, "VRRPv3 has none")
		},
	}, {
		name: "vrrp: keepalived's adjustments",
		conf: "vrrp_instance V {\nstate MASTER\nnopreempt\nvirtual_router_id 9\nadvert_int 1.5\n" +
			"virtual_ipaddress {\n198.18.0.9\n2001:db8::9\n198.18.0.9\n}\n}\n" +
			"vrrp_instance W {\nvirtual_router_id 10\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			v := im.Config.VRRP[0]
			if v.NoPreempt || v.AdvertInt != 2*time.Second || len(v.VirtualIPAddress) != 1 || len(im.Config.VRRP) != 1 {
				t.Errorf("vrrp %+v", v)
			}
			findNote(t, im, 3, "need state BACKUP")
			findNote(t, im, 1, "rounded to 2s")
			findNote(t, im, 8, "another family")
			findNote(t, im, 9, "listed twice")
			findNote(t, im, 12, "W has no virtual_ipaddress")
			if !strings.Contains(string(im.TOML), "# name = \"W\"") {
				t.Errorf("instance W not written commented out")
			}
		},
	}, {
		name: "notify scripts: repeats, empty, shell syntax, a block",
		conf: "vrrp_instance V {\nvirtual_router_id 9\nvirtual_ipaddress { 198.18.0.9 }\nnotify_master /bin/a\nnotify_master /bin/b\n" +
			"notify_backup \"\"\nnotify_fault \"/bin/x | logger\"\nnotify\ntrack_interface eth1\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			v := im.Config.VRRP[0]
			if v.NotifyMaster != "/bin/a" || v.NotifyBackup != "" || v.NotifyFault != "/bin/x | logger" || v.Notify != "" || len(v.TrackInterface) != 0 {
				t.Errorf("vrrp %+v", v)
			}
			findNote(t, im, 5, "notify_master is already set: ignored")
			findNote(t, im, 6, "empty command: ignored")
			findNote(t, im, 7, "without a shell, gvs with /bin/sh -c")
			findNote(t, im, 8, `"notify" needs a value`)
			findNote(t, im, 9, `"track_interface eth1": extra words "eth1" ignored`)
		},
	}, {
		name: "excluded addresses, routes, rules and lower-priority GARPs, as gvs's config reads them",
		conf: "vrrp_instance V {\ninterface eth0\nvirtual_router_id 9\nvirtual_ipaddress { 198.18.0.9 }\n" +
			"virtual_ipaddress_excluded {\n2001:db8::9/64 dev eth0\n198.18.1.9/24 label eth0:9\nbogus\n}\n" +
			"virtual_routes {\n198.18.2.0/24 via 198.18.0.1 dev eth0\nsrc 198.18.0.9 to 198.18.3.0/24 dev eth0 table 100\n198.18.4.0/24 via 198.18.0.1 realms 5\n}\n" +
			"virtual_rules {\nfrom 198.18.0.9 table 100 priority 200\nto 198.18.5.0/24 lookup 100\nfrom all goto 3\n}\n" +
			"garp_lower_prio_delay 2\ngarp_lower_prio_repeat 3\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			v := im.Config.VRRP[0]
			if len(v.ExcludedVIPs) != 1 || v.ExcludedVIPs[0].Prefix != netip.MustParsePrefix("198.18.1.9/24") || v.ExcludedVIPs[0].Label != "eth0:9" {
				t.Errorf("virtual_ipaddress_excluded %+v", v.ExcludedVIPs)
			}
			if len(v.VirtualRoutes) != 2 || v.VirtualRoutes[0].Dst != netip.MustParsePrefix("198.18.2.0/24") || v.VirtualRoutes[1].Src != netip.MustParseAddr("198.18.0.9") {
				t.Errorf("virtual_routes %+v", v.VirtualRoutes)
			}
			if len(v.VirtualRules) != 2 || v.VirtualRules[0].From != netip.MustParsePrefix("198.18.0.9/32") || v.VirtualRules[1].To != netip.MustParsePrefix("198.18.5.0/24") {
				t.Errorf("virtual_rules %+v", v.VirtualRules)
			}
			if v.GARPLowerPrioDelay != 2*time.Second || v.GARPLowerPrioRepeat != 3 {
				t.Errorf("garp_lower_prio %v × %d, want 2s × 3", v.GARPLowerPrioDelay, v.GARPLowerPrioRepeat)
			}
			findNote(t, im, 6, `virtual_ipaddress_excluded "2001:db8::9/64 dev eth0"`, "another family", "not translated")
			findNote(t, im, 8, `virtual_ipaddress_excluded "bogus"`, "not translated")
			findNote(t, im, 13, `virtual_routes "198.18.4.0/24 via 198.18.0.1 realms 5"`, "not translated")
			findNote(t, im, 18, `virtual_rules "from all goto 3"`, "not translated")
		},
	}, {
		name: "track weights: owner by default, one-line groups, global_tracking, a group without members",
		conf: "vrrp_instance A {\nstate MASTER\nvirtual_router_id 9\nvirtual_ipaddress { 198.18.0.9 }\ntrack_interface { eth1 weight 5\neth2 weight -253 }\n}\n" +
			"vrrp_instance B {\nvirtual_router_id 10\nvirtual_ipaddress { 198.18.0.10 }\ntrack_interface { eth3 weight -254\neth4 weight\nbad/name\n" +
			"eth5 weight -5 reverse\neth6 reverse\nverylonginterface0 }\n}\n" +
			"vrrp_instance C {\nvirtual_router_id 11\nvirtual_ipaddress { 198.18.0.11 }\ntrack_interface { eth7 weight 3 }\n}\n" +
			"vrrp_sync_group G { group { B C C }\nglobal_tracking\n}\nvrrp_sync_group H {\nsmtp_alert\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			c := im.Config
			if a := c.VRRP[0]; a.Priority != 255 || len(a.TrackInterface) != 0 {
				t.Errorf("A: priority %d track_interface %+v, want the owner without weighted tracking", a.Priority, a.TrackInterface)
			}
			// -254 is read as -253 and reverse follows a weight, as keepalived reads them.
			if got, want := c.VRRP[1].TrackInterface, []config.TrackedInterface{{Name: "eth3", Weight: -253}, {Name: "eth5", Weight: -5, Reverse: true}}; !slices.Equal(got, want) {
				t.Errorf("B track_interface %+v, want %+v", got, want)
			}
			if got, want := c.VRRP[2].TrackInterface, []config.TrackedInterface{{Name: "eth7", Weight: 3}}; !slices.Equal(got, want) {
				t.Errorf("C track_interface %+v, want %+v (global_tracking keeps weights)", got, want)
			}
			if len(c.VRRPSyncGroups) != 1 || !slices.Equal(c.VRRPSyncGroups[0].Group, []string{"B", "C"}) {
				t.Errorf("sync groups %+v", c.VRRPSyncGroups)
			}
			findNote(t, im, 5, "eth1 weight 5 left out", "address owner")
			findNote(t, im, 6, "eth2 weight -253 left out", "address owner")
			findNote(t, im, 11, "weight -254 read as -253, as keepalived does")
			findNote(t, im, 12, `"eth4 weight": want NAME, NAME weight W`)
			findNote(t, im, 13, `"bad/name" is not an interface name`)
			noNote(t, im, 14, "")
			findNote(t, im, 15, `"eth6 reverse": want NAME, NAME weight W`, "keepalived ignores it too")
			findNote(t, im, 16, `"verylonginterface0" is not an interface name`)
			findNote(t, im, 23, "member C listed twice: written once")
			findNote(t, im, 24, "global_tracking is keepalived's deprecated spelling of sync_group_tracking_weight")
			findNote(t, im, 26, "vrrp_sync_group H has no group block")
			findNote(t, im, 26, "vrrp_sync_group H has no member gvs runs: written commented out")
			findNote(t, im, 27, `"smtp_alert" not translated`)
			if !strings.Contains(string(im.TOML), "\n# [[vrrp_sync_group]]\n# name = \"H\"\n# group = []\n") {
				t.Errorf("group H not written commented out:\n%s", im.TOML)
			}
		},
	}, {
		name: "unknown keywords are noted with their line, nested ones too",
		conf: "bogus_top 1\nvirtual_server 198.18.0.1 80 {\nlb_kind DR\nwhatever\nreal_server 198.18.1.1 80 {\nmystery 2\nTCP_CHECK {\nconnect_port 81\nodd yes\n}\n}\n}\n",
		want: func(t *testing.T, im *importer.Imported) {
			findNote(t, im, 1, `unknown keyword "bogus_top"`)
			findNote(t, im, 4, `unknown keyword "whatever"`)
			findNote(t, im, 6, `unknown keyword "mystery"`)
			findNote(t, im, 9, `unknown keyword "odd"`)
			if im.Config.Services[0].Check.ConnectPort != 81 {
				t.Errorf("check %+v", im.Config.Services[0].Check)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := Options{}
			if tc.opt != nil {
				tc.opt(&opt)
			}
			if opt.ReadFile == nil {
				opt.ReadFile = memFS(nil).ReadFile
				opt.Glob = memFS(nil).Glob
			}
			im, err := Import("etc/keepalived.conf", []byte(tc.conf), opt)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			checkImported(t, im)
			tc.want(t, im)
		})
	}
}

// TestImportKeepalivedErrors covers what stops an import: grammar errors, each
// with its file and line.
func TestImportKeepalivedErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // etc/keepalived.conf is the input
		file  string
		line  int
		msg   string
	}{
		{"missing close", map[string]string{"etc/keepalived.conf": "global_defs {\n}\nvirtual_server 198.18.0.1 80 {\nlb_kind DR\n"},
			"etc/keepalived.conf", 3, "never closed"},
		{"extra close", map[string]string{"etc/keepalived.conf": "global_defs {\n}\n}\n"},
			"etc/keepalived.conf", 3, "unexpected '}'"},
		{"open without keyword", map[string]string{"etc/keepalived.conf": "\n{\n}\n"},
			"etc/keepalived.conf", 2, "without a keyword"},
		{"unbalanced in an included file", map[string]string{"etc/keepalived.conf": "include conf.d/*.conf\n", "etc/conf.d/a.conf": "\n\nvrrp_instance X {\n"},
			"etc/conf.d/a.conf", 3, "never closed"},
		{"include cycle", map[string]string{"etc/keepalived.conf": "include a.conf\n", "etc/a.conf": "include b.conf\n", "etc/b.conf": "\ninclude a.conf\n"},
			"etc/b.conf", 2, "include cycle: etc/a.conf -> etc/b.conf -> etc/a.conf"},
		{"self include", map[string]string{"etc/keepalived.conf": "include keepalived.conf\n"},
			"etc/keepalived.conf", 1, "include cycle"},
		{"SEQ", map[string]string{"etc/keepalived.conf": "~SEQ(i, 1, 3) virtual_router_id $i\n"},
			"etc/keepalived.conf", 1, "~SEQ is not supported"},
		{"multi-line definition", map[string]string{"etc/keepalived.conf": "$X=a \\\n b\n"},
			"etc/keepalived.conf", 1, "multi-line definition"},
		{"substitution blow-up", map[string]string{"etc/keepalived.conf": "$A=${A}${A}${A}${A}\nrouter_id $A\n"},
			"etc/keepalived.conf", 2, "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := Import("etc/keepalived.conf", []byte(tc.files["etc/keepalived.conf"]), memFS(tc.files))
			var es config.Errors
			if !errors.As(err, &es) || im != nil {
				t.Fatalf("got %v, %v; want Errors", im, err)
			}
			e := es[0]
			if e.File != tc.file || e.Line != tc.line || !strings.Contains(e.Error(), tc.msg) || !errors.Is(err, config.ErrSyntax) {
				t.Errorf("error %q (file %q line %d), want %s:%d: ...%s", e, e.File, e.Line, tc.file, tc.line, tc.msg)
			}
		})
	}

	t.Run("on disk", func(t *testing.T) {
		_, err := ImportFile("testdata/cycle/a.conf", Options{})
		if err == nil || !strings.Contains(err.Error(), "cycle/b.conf:3: syntax error: include cycle") {
			t.Errorf("got %v", err)
		}
		if _, err := ImportFile("testdata/nonexistent.conf", Options{}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing file: %v", err)
		}
	})
}

func TestImportKeepalivedDepthLimits(t *testing.T) {
	files := map[string]string{}
	for i := range kaMaxIncludeDepth + 2 {
		files[fmt.Sprintf("etc/%d.conf", i)] = fmt.Sprintf("include %d.conf\n", i+1)
	}
	_, err := Import("etc/0.conf", []byte(files["etc/0.conf"]), memFS(files))
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep includes: %v", err)
	}
	deep := strings.Repeat("a {\n", kaMaxBlockDepth+5) + strings.Repeat("}\n", kaMaxBlockDepth+5)
	if _, err := Import("deep.conf", []byte(deep), memFS(nil)); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("deep blocks: %v", err)
	}
}

func TestKaBraceExpand(t *testing.T) {
	got := kaBraceExpand("/etc/{a,b{1,2}}/*.conf", 0)
	want := []string{"/etc/a/*.conf", "/etc/b1/*.conf", "/etc/b2/*.conf"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := kaBraceExpand("/etc/{a/*.conf", 0); !slices.Equal(got, []string{"/etc/{a/*.conf"}) {
		t.Errorf("unbalanced: %q", got)
	}
}

func TestKaRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		last string
		bad  bool
	}{
		{"192.168.1.250-255", 6, "192.168.1.255:0", false},
		{"192.168.1.3", 1, "192.168.1.3:0", false},
		{"2001:db8::fe-101", 4, "[2001:db8::101]:0", false},
		{"192.168.1.9-3", 0, "", true},
		{"192.168.1.9-256", 0, "", true},
		{"2001:db8::0-fff", 0, "", true},
		{"nonsense-3", 0, "", true},
		// keepalived 2.2.7: the end must be above the start.
		{"192.168.1.9-9", 0, "", true},
		// A whole address as the end: every address between.
		{"192.168.1.254-192.168.2.1", 4, "192.168.2.1:0", false},
		{"192.168.1.1-192.168.1.1", 1, "192.168.1.1:0", false},
		{"2001:db8::ffff-2001:db8::1:1", 3, "[2001:db8::1:1]:0", false},
		{"192.168.2.1-192.168.1.1", 0, "", true},
		{"192.168.1.1-2001:db8::1", 0, "", true},
		{"10.0.0.0-10.0.255.255", 0, "", true}, // more than the group limit
		// A prefix: all its addresses, network and broadcast included.
		{"10.0.0.16/28", 16, "10.0.0.31:0", false},
		{"10.0.0.7/32", 1, "10.0.0.7:0", false},
		{"2001:db8::/126", 4, "[2001:db8::3]:0", false},
		{"10.0.0.17/28", 0, "", true}, // bits beyond the prefix
		{"10.0.0.0/0", 0, "", true},
		{"10.0.0.0/33", 0, "", true},
		{"10.0.0.0/8", 0, "", true}, // too many
	} {
		got, err := kaRange(tc.in)
		if (err != nil) != tc.bad || len(got) != tc.n || (tc.n > 0 && got[len(got)-1].String() != tc.last) {
			t.Errorf("kaRange(%q) = %v, %v", tc.in, got, err)
		}
	}
}
