package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane/afxdp"
)

// The lab's data path over each backend (issue 11, "How it is checked": DR/NAT/TUN,
// IPv4/IPv6, over both backends; a 1 MB transfer intact; after SIGKILL and restart no
// XDP program left stacked; the AF_PACKET fallback taken where AF_XDP cannot load).
// TestLiveIssue4 runs the same checks on io = "auto", which is AF_PACKET on veth.

// metricsAddr is where TestLiveBackends's directors serve metrics: on the loopback of
// their own namespace, so no other lab or host process can collide with it.
const metricsAddr = "127.0.0.1:9917"

// withIO returns a copy of director's lab config with io set and metrics served on
// metricsAddr, written beside it.
func withIO(t *testing.T, l *Lab, io string) string {
	t.Helper()
	b, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "[director]\n", "[director]\nio = \""+io+"\"\nmetrics_listen = \""+metricsAddr+"\"\n", 1)
	if cfg == string(b) {
		t.Fatalf("no [director] table in the lab's config:\n%s", b)
	}
	path := filepath.Join(l.RunDir(), "dir1-io-"+io+".toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dataPathLine returns the director log's "data path:" line, failing without one.
func dataPathLine(t *testing.T, p Proc) string {
	t.Helper()
	b, _ := os.ReadFile(p.Log)
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "data path: ") {
			return line
		}
	}
	t.Fatalf("the director did not log its data path:\n%s", b)
	return ""
}

var xdpProgRE = regexp.MustCompile(`prog/xdp\S* id (\d+) name (\S+)`)

// xdpPrograms lists the XDP programs ip link shows on host's eth0 as "id name".
func xdpPrograms(t *testing.T, l *Lab, host string) []string {
	t.Helper()
	ns, err := l.ns(host)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-n", ns, "-d", "link", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v: %s", err, out)
	}
	var progs []string
	for _, m := range xdpProgRE.FindAllStringSubmatch(string(out), -1) {
		progs = append(progs, m[1]+" "+m[2])
	}
	return progs
}

// scrape returns the value of the metric line that starts with series (name and
// labels, as the exposition format prints them) on host's director, or -1.
func scrape(t *testing.T, l *Lab, host, series string) float64 {
	t.Helper()
	body, err := l.HTTPFetch(host, "http://"+metricsAddr+"/metrics", 3*time.Second, 16<<20)
	if err != nil {
		t.Fatalf("scraping %s's metrics: %v", host, err)
	}
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// killGVS ends the director with SIGKILL, by its PID, and waits until it is reaped.
func killGVS(t *testing.T, l *Lab, p Proc) {
	t.Helper()
	l.mu.Lock()
	c := l.children[p.PID]
	l.mu.Unlock()
	if c == nil {
		t.Fatalf("director PID %d is not a child of this lab", p.PID)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(killTimeout):
		t.Fatalf("director PID %d still running %v after SIGKILL", p.PID, killTimeout)
	}
}

func TestLiveBackends(t *testing.T) {
	for _, io := range []string{"afpacket", "afxdp"} {
		for _, m := range []Mode{DR, NAT, TUN} {
			t.Run(io+"/"+m.String(), func(t *testing.T) {
				spec := e2eSpec(t, m)
				spec.IPv6 = true
				l := upIssue4(t, spec)
				// metrics on the director's own loopback, which the lab leaves down.
				ns, _ := l.ns("dir1")
				if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
					t.Fatalf("lo up in %s: %v: %s", ns, err, out)
				}
				p := runGVS(t, l, withIO(t, l, io))
				want := map[string]string{"afpacket": "data path: AF_PACKET", "afxdp": "data path: AF_XDP"}[io]
				if line := dataPathLine(t, p); !strings.Contains(line, want) {
					t.Fatalf("io = %q: the director logged %q, want %q", io, strings.TrimSpace(line), want)
				}
				progs := xdpPrograms(t, l, "dir1")
				if io == "afpacket" {
					if len(progs) != 0 {
						t.Errorf("io = afpacket left XDP programs on eth0: %v", progs)
					}
				} else if len(progs) != 1 || !strings.HasSuffix(progs[0], " "+afxdp.ProgramName) {
					t.Errorf("io = afxdp: eth0 carries %v, want gvs's one program %q", progs, afxdp.ProgramName)
				}
				for _, v6 := range []bool{false, true} {
					checkServes(t, l, v6)
				}
				// Where the frames went is in the metrics: the ring's or the XDP
				// program's counters.
				if io == "afxdp" {
					for _, r := range []string{"vip4", "vip6"} {
						if v := scrape(t, l, "dir1", `gvs_xdp_frames_total{link="eth0",reason="`+r+`"}`); v <= 0 {
							t.Errorf("gvs_xdp_frames_total{reason=%q} = %v after traffic to that VIP", r, v)
						}
					}
					if m == NAT {
						if v := scrape(t, l, "dir1", `gvs_xdp_frames_total{link="eth0",reason="nat4"}`); v <= 0 {
							t.Errorf("gvs_xdp_frames_total{reason=\"nat4\"} = %v after NAT replies", v)
						}
					}
				} else if v := scrape(t, l, "dir1", `gvs_link_frames_total{direction="rx",link="eth0",worker="0"}`); v <= 0 {
					t.Errorf("gvs_link_frames_total rx = %v after traffic", v)
				}
				if io != "afxdp" || m != DR {
					stopGVS(t, l, p)
					return
				}
				// SIGKILL gives gvs no chance to detach; the kernel releases its XDP
				// link with the last descriptor, and a restarted gvs attaches exactly
				// one program of its own again, never a second beside a leftover.
				killGVS(t, l, p)
				if left := xdpPrograms(t, l, "dir1"); len(left) != 0 {
					t.Errorf("after SIGKILL eth0 still carries %v", left)
				}
				p = runGVS(t, l, withIO(t, l, io))
				after := xdpPrograms(t, l, "dir1")
				if len(after) != 1 || after[0] == progs[0] || !strings.HasSuffix(after[0], " "+afxdp.ProgramName) {
					t.Errorf("after SIGKILL and restart eth0 carries %v, want one new program of gvs's (the old one was %v)", after, progs)
				}
				checkServes(t, l, false)
				stopGVS(t, l, p)
				if left := xdpPrograms(t, l, "dir1"); len(left) != 0 {
					t.Errorf("after SIGTERM eth0 still carries %v", left)
				}
			})
		}
	}
}

// TestLiveAFXDPRefusedFallsBack runs gvs with io = "afxdp" without the capabilities
// an XDP program needs (CAP_BPF and CAP_SYS_ADMIN dropped from its bounding and
// inheritable sets by setpriv): the kernel refuses the program, and gvs says so and
// serves over AF_PACKET instead.
func TestLiveAFXDPRefusedFallsBack(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but setpriv (util-linux) is not installed")
		}
		t.Skip("setpriv (util-linux) is not installed")
	}
	spec := e2eSpec(t, DR)
	wrapper := filepath.Join(t.TempDir(), "gvs-without-bpf")
	script := "#!/bin/sh\nexec " + setpriv + " --inh-caps=-bpf,-sys_admin,-perfmon --bounding-set=-bpf,-sys_admin,-perfmon " + spec.Exe + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Exe = wrapper
	l := upIssue4(t, spec)
	p := runGVS(t, l, withIO(t, l, "afxdp"))
	b, _ := os.ReadFile(p.Log)
	if !strings.Contains(string(b), "falling back to AF_PACKET") {
		t.Errorf("no fallback logged:\n%s", b)
	}
	if line := dataPathLine(t, p); !strings.Contains(line, "data path: AF_PACKET") {
		t.Errorf("the director logged %q, want AF_PACKET", strings.TrimSpace(line))
	}
	if progs := xdpPrograms(t, l, "dir1"); len(progs) != 0 {
		t.Errorf("a refused AF_XDP left %v on eth0", progs)
	}
	checkServes(t, l, false)
	stopGVS(t, l, p)
}
