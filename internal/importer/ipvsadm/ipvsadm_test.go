package ipvsadm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
	adm "github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// testNames knows the port names the tests use, as /etc/services would.
func testNames() *adm.Names {
	return &adm.Names{Services: []adm.ServiceEntry{{Name: "https", Port: 443, Protocol: adm.TCP}}}
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
	if im.Config == nil || len(c.Services) != len(im.Config.Services) {
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

// findNote returns the first note at line (0: any) whose message contains all of
// subs, or fails.
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

func importIpvsadmFile(t *testing.T, path string) *importer.Imported {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := Import(f, path, Options{})
	if err != nil {
		t.Fatalf("Import(%s): %v", path, err)
	}
	checkImported(t, im)
	return im
}

func importIpvsadmString(t *testing.T, dump string) (*importer.Imported, error) {
	t.Helper()
	im, err := Import(strings.NewReader(dump), "rules", Options{Names: testNames()})
	if err == nil {
		checkImported(t, im)
	}
	return im, err
}

func TestImportIpvsadmSeeds(t *testing.T) {
	for _, tc := range []struct {
		file  string
		svc   string
		sched string
		reals []string
	}{
		{"seed-000-dr-commands.txt", "TCP 172.19.0.100:80", "rr", []string{"172.19.0.5:80 w1 dr", "172.19.0.6:80 w1 dr"}},
		{"seed-001-nat.save", "TCP 12.0.0.1:80", "rr", []string{"192.168.233.20:80 w1 nat"}},
		{"seed-001-dr.save", "TCP 192.168.233.100:80", "rr", []string{"192.168.233.20:80 w1 dr", "192.168.233.30:80 w1 dr"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			im := importIpvsadmFile(t, "testdata/"+tc.file)
			c := im.Config
			if len(c.Services) != 1 || c.Services[0].String() != tc.svc || c.Services[0].Scheduler != tc.sched {
				t.Fatalf("services %q", addrs(c))
			}
			if got := reals(c.Services[0]); !slices.Equal(got, tc.reals) {
				t.Errorf("real servers %q, want %q", got, tc.reals)
			}
		})
	}
}

func TestImportIpvsadmMixed(t *testing.T) {
	im := importIpvsadmFile(t, "testdata/mixed.save")
	c := im.Config
	want := []string{"TCP 198.18.0.100:80", "UDP 198.18.0.100:53", "TCP [2001:db8::100]:443", "TCP [2001:db8::100]:80", "TCP 198.18.0.101:443"}
	if got := addrs(c); !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	s := c.Services[0]
	if s.Scheduler != "wlc" || s.Persistence != 300*time.Second || s.Netmask.Bits() != 24 || s.Method != ipvs.DR {
		t.Errorf("service 0 %+v", s)
	}
	if got := reals(s); !slices.Equal(got, []string{"198.18.1.5:80 w1 dr", "198.18.1.6:80 w3 dr"}) {
		t.Errorf("service 0 real servers %q", got)
	}
	if s := c.Services[1]; !s.OPS || s.Method != ipvs.NAT || !slices.Equal(reals(s), []string{"198.18.1.7:5353 w1 nat", "198.18.1.8:5353 w1 nat"}) {
		t.Errorf("udp service %+v %q", s, reals(s))
	}
	s = c.Services[2]
	if s.Scheduler != "sh" || s.Flags != sched.FlagSched1|sched.FlagSched2 {
		t.Errorf("IPv6 sh service flags %v", s.Flags)
	}
	if got := reals(s); !slices.Equal(got, []string{"[2001:db8::5]:443 w1 dr"}) {
		t.Errorf("mixed methods %q", got)
	}
	// The TUN server is kept, commented out: gvs check needs [director] address6.
	findNote(t, im, 10, "real_server [2001:db8::6]:443 is written commented out", "set [director] address6")
	if !strings.Contains(string(im.TOML), "#   address = \"[2001:db8::6]:443\"\n#   weight = 2\n#   method = \"tun\"") {
		t.Errorf("TUN real server not written commented out:\n%s", im.TOML)
	}
	if s := c.Services[3]; s.Netmask.Bits() != 64 || s.Persistence != 600*time.Second {
		t.Errorf("IPv6 netmask %s persistence %v", s.Netmask, s.Persistence)
	}
	if got := reals(c.Services[4]); !slices.Equal(got, []string{"198.18.1.11:443 w1 dr"}) {
		t.Errorf("loopback (local node) real server kept: %q", got)
	}

	toml := string(im.TOML)
	for _, want := range []string{"# fwmark = 7", "# scheduler_flags = [\"mh-port\"]", "# fwmark = 3000000000", "# family = \"inet6\"", `#   address = "198.18.1.9"`} {
		if !strings.Contains(toml, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	findNote(t, im, 13, "-f 7: fwmark service written commented out")
	findNote(t, im, 16, "-f 3000000000 -6: fwmark service written commented out", "mark 3000000000")
	findNote(t, im, 19, "real_server 127.0.0.1:443 is written commented out", "loopback")
	findNote(t, im, 0, "MAC", "bench replay")
}

func TestImportIpvsadmRules(t *testing.T) {
	tests := []struct {
		name string
		dump string
		want func(t *testing.T, im *importer.Imported)
	}{{
		name: "long options, joined values, scripts",
		dump: "ipvsadm -C\n/sbin/ipvsadm --add-service --tcp-service=198.18.0.1:80 --scheduler lc --persistent\n" +
			"ipvsadm -a -t198.18.0.1:80 -r 198.18.1.1 --masquerading --weight=4 -x 100 -y 80\n" +
			"ipvsadm --set 7200 0 30\nipvsadm -Ln\n",
		want: func(t *testing.T, im *importer.Imported) {
			s := im.Config.Services[0]
			// A bare -p is ipvsadm 1.31's 360 s (libipvs), not the man page's 300.
			if s.Scheduler != "lc" || s.Persistence != 360*time.Second {
				t.Errorf("service %+v", s)
			}
			r := s.RealServers[0]
			if r.Addr.String() != "198.18.1.1:80" || r.Weight != 4 || r.Method != ipvs.NAT || r.UpperThreshold != 100 || r.LowerThreshold != 80 {
				t.Errorf("real server %+v", r)
			}
			if to := im.Config.Director.Timeouts; to.TCP != 2*time.Hour || to.TCPFin != 120*time.Second || to.UDP != 30*time.Second {
				t.Errorf("timeouts %+v", to)
			}
			findNote(t, im, 5, "list command is not a rule")
		},
	}, {
		name: "edit and delete",
		dump: "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.18.1.1:80 -g\n-a -t 198.18.0.1:80 -r 198.18.1.2:80 -g\n" +
			"-e -t 198.18.0.1:80 -r 198.18.1.1:80 -w 7\n-d -t 198.18.0.1:80 -r 198.18.1.2:80\n-E -t 198.18.0.1:80 -s wrr\n" +
			"-A -u 198.18.0.1:53\n-D -u 198.18.0.1:53\n",
		want: func(t *testing.T, im *importer.Imported) {
			if got := addrs(im.Config); !slices.Equal(got, []string{"TCP 198.18.0.1:80"}) {
				t.Errorf("services %q", got)
			}
			s := im.Config.Services[0]
			if s.Scheduler != "wrr" || !slices.Equal(reals(s), []string{"198.18.1.1:80 w7 dr"}) {
				t.Errorf("service %s %q", s.Scheduler, reals(s))
			}
			findNote(t, im, 5, "-d deletes real server")
			findNote(t, im, 8, "-D deletes -u 198.18.0.1:53")
		},
	}, {
		name: "notes: duplicates, unknown service or real server, pe, scheduler, tunnels, sctp",
		dump: "-A -t 198.18.0.1:80 -p --pe sip\n-A -t 198.18.0.1:80\n-a -t 198.18.0.2:80 -r 198.18.1.1:80\n" +
			"-a -t 198.18.0.1:80 -r 198.18.1.1:8080 -g\n-a -t 198.18.0.1:80 -r 198.18.1.1:80\n-A -t 198.18.0.3:80 -s nope\n" +
			"-A -t 198.18.0.4:80 -s rr -b flag-1\n-a -t 198.18.0.1:80 -r 198.18.1.2 -i --tun-type gue --tun-port 6080\n" +
			"-e -t 198.18.0.1:80 -r 198.18.1.9\n-A --sctp-service 198.18.0.5:9\n-a --sctp-service 198.18.0.5:9 -r 198.18.1.5\n",
		want: func(t *testing.T, im *importer.Imported) {
			findNote(t, im, 1, "--pe sip not translated")
			findNote(t, im, 2, "already defined (line 1)", "ipvsadm -R would stop here: Service already exists")
			findNote(t, im, 3, "no such service -t 198.18.0.2:80", "Service not defined")
			// ipvsadm gives a DR real server the service's port, so line 4 adds
			// 198.18.1.1:80 and line 5 adds it again.
			findNote(t, im, 5, "real server 198.18.1.1:80 of -t 198.18.0.1:80 is already defined (line 4)")
			findNote(t, im, 6, "-s nope: gvs has no such scheduler: the default (wlc) is used")
			findNote(t, im, 8, "--tun-type gue not translated")
			findNote(t, im, 8, "real_server 198.18.1.2:80 is written commented out", "set [director] address")
			findNote(t, im, 9, "no real server 198.18.1.9:80 in -t 198.18.0.1:80", "No such destination")
			findNote(t, im, 10, "SCTP service not written")
			if got := reals(im.Config.Services[0]); !slices.Equal(got, []string{"198.18.1.1:80 w1 dr"}) {
				t.Errorf("real servers %q", got)
			}
			if s := im.Config.Services[1]; s.Scheduler != "wlc" {
				t.Errorf("unknown scheduler became %q", s.Scheduler)
			}
			if s := im.Config.Services[2]; s.Scheduler != "rr" || s.Flags != sched.FlagSched1 {
				t.Errorf("generic flag: %v", s.Flags)
			}
			if len(im.Config.Services) != 3 {
				t.Errorf("%d services, want 3 (no SCTP)", len(im.Config.Services))
			}
		},
	}, {
		name: "port names",
		dump: "-A -t 198.18.0.1:https -s rr\n-a -t 198.18.0.1:https -r 198.18.1.1:https -g -w 1\n",
		want: func(t *testing.T, im *importer.Imported) {
			if got := addrs(im.Config); !slices.Equal(got, []string{"TCP 198.18.0.1:443"}) {
				t.Errorf("services %q", got)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			im, err := importIpvsadmString(t, tc.dump)
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, im)
		})
	}
}

// TestImportIpvsadmErrors: a line ipvsadm -R refuses is an error at its line,
// with ipvsadm's message.
func TestImportIpvsadmErrors(t *testing.T) {
	for _, tc := range []struct {
		dump string
		line int
		msg  string
	}{
		{"-A -t 198.18.0.1:80\nifconfig eth0 up\n", 2, "not an ipvsadm command line"},
		{"-A -s rr\n", 1, "You need to supply the 'service-address' option for the 'add-service' command"},
		{"-A -t 198.18.0.1:80\n-a -t 198.18.0.1:80 -w 1\n", 2, "You need to supply the 'real-server' option"},
		{"-A -t web.example:http -s rr\n", 1, "illegal virtual server address[:port] specified (a host or port name"},
		{"-A -t 198.18.0.1:nosuchport -s rr\n", 1, "ipvsadm-save -n"},
		{"\n\n-A -t 198.18.0.1:80 -s\n", 3, "-s: missing argument"},
		{"-A -a -t 198.18.0.1:80\n", 1, "invalid option `-a'"},
		{"-A -t 198.18.0.1:80 -u 198.18.0.1:53\n", 1, "multiple 'service-address' options specified"},
		{"-A -f 0\n", 1, "invalid fwmark value `0' specified"},
		// Debian's ipvsadm-save prints marks of 2^31 and more negative; ipvsadm -R
		// refuses them too.
		{"-A -f -1294967296 -s rr\n", 1, "invalid fwmark value `-1294967296' specified (ipvsadm-save prints marks of 2^31 and more as negative numbers: write it as 3000000000)"},
		{"--set 1 2\n", 1, "--set option requires 3 timeout values"},
		{"-t 198.18.0.1:80\n", 1, "not an ipvsadm command line"},
		{"-A -t 198.18.0.1:80 -o\n", 1, "One-Packet Scheduling is only for UDP virtual services"},
		{"-A -t 198.18.0.1:80 --frob\n", 1, "--frob"},
	} {
		_, err := importIpvsadmString(t, tc.dump)
		var es config.Errors
		if !errors.As(err, &es) || es[0].Line != tc.line || !strings.Contains(es[0].Error(), tc.msg) || !strings.HasPrefix(es[0].Error(), "rules:") {
			t.Errorf("%q: got %v, want rules:%d: ...%s", tc.dump, err, tc.line, tc.msg)
		}
	}
}

// FuzzIpvsadm checks Import on any input: it never panics, answers either
// config.Errors with a line inside the input or TOML that passes checkImported
// (which includes the round trip). Seeds: the dumps in testdata/.
func FuzzIpvsadm(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, file := range files {
		if strings.HasSuffix(file, ".md") {
			continue
		}
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := Import(bytes.NewReader(data), "rules", Options{Names: testNames()})
		if err != nil {
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want config.Errors: %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range es {
				if e.Line < 1 || e.Line > lines {
					t.Errorf("error line %d outside the input (%d lines): %v", e.Line, lines, e)
				}
			}
			return
		}
		checkImported(t, im)
	})
}
