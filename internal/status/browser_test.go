package status

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestBrowserHour leaves the page open in headless Chromium for an hour of the
// browser's virtual time (its timers run as fast as the polls are answered):
// about 1800 polls later every chart holds exactly its 90 points, the service
// that disappeared half-way has no card left, and the document has not grown.
// It skips without chromium (fails with GVS_LAB_REQUIRED=1).
func TestBrowserHour(t *testing.T) {
	if testing.Short() {
		t.Skip("an hour of virtual time takes a while")
	}
	chromium := needChromium(t)
	var polls atomic.Int64
	h := NewHandler(Options{Interval: time.Nanosecond, Source: func() *Snapshot {
		n := polls.Add(1)
		s := &Snapshot{Taken: time.Unix(1e9+n*2, 0), Services: []Service{
			{Name: "TCP/198.18.0.100:80", Scheduler: "rr", Stats: Stats{Conns: uint64(n * n % 1000 * n)},
				Servers: []Server{{Address: "198.18.0.5:80", Method: "Route", Weight: 1, InTable: true, State: "up"}}},
		}}
		if n < 900 {
			s.Services = append(s.Services, Service{Name: "UDP/198.18.0.100:53", Scheduler: "rr", Stats: Stats{Conns: uint64(n)},
				Servers: []Server{{Address: "198.18.0.5:53", Method: "Route", Weight: 1, InTable: true, State: "up"}}})
		}
		return s
	}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	dump := func(budget time.Duration) string { return dumpDOM(t, chromium, srv.URL+"/", budget) }
	short := dump(10 * time.Second)
	polls.Store(0)
	start := time.Now()
	long := dump(time.Hour)
	n := polls.Load()
	t.Logf("%d polls in an hour of virtual time, %v of real time; document %d bytes after 10 s, %d after the hour", n, time.Since(start).Round(time.Millisecond), len(short), len(long))
	if n < 1000 {
		t.Fatalf("only %d polls in an hour of virtual time, want about 1800", n)
	}
	if strings.Contains(long, "UDP/198.18.0.100:53") {
		t.Error("the service that disappeared still has a card")
	}
	lines := regexp.MustCompile(`<polyline points="([^"]*)"`).FindAllStringSubmatch(long, -1)
	if len(lines) != 1 {
		t.Fatalf("%d charts, want 1", len(lines))
	}
	if pts := len(strings.Fields(lines[0][1])); pts != 90 {
		t.Errorf("the chart holds %d points after an hour, want 90", pts)
	}
	// One service fewer, a full chart: the document is about as large as after 10 s.
	if len(long) > len(short)+2048 {
		t.Errorf("the document grew from %d to %d bytes", len(short), len(long))
	}
}

// needChromium returns Debian's chromium, or skips the test (fails it with
// GVS_LAB_REQUIRED=1).
func needChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	return p
}

// dumpDOM loads url in headless Chromium for budget of virtual time and returns
// the document its scripts built.
func dumpDOM(t *testing.T, chromium, url string, budget time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+profile, fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()), "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	// Chromium starts helpers of its own: they go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return string(out)
}

// TestBrowserActions: with actions on, each real server's row has a Drain
// button, or Undrain at weight 0; the VRRP card and the drops show; without
// actions there is no button.
func TestBrowserActions(t *testing.T) {
	chromium := needChromium(t)
	snap := func() *Snapshot {
		return &Snapshot{Taken: time.Unix(1e9, 0), Services: []Service{{Name: "TCP/198.18.0.100:80", Scheduler: "wrr", Servers: []Server{
			{Address: "198.18.0.5:80", Method: "Route", Weight: 3, InTable: true, State: "up"},
			{Address: "198.18.0.6:80", Method: "Route", Weight: 0, InTable: true, State: "drained"},
		}}}, VRRP: []VRRP{{Name: "VI_1", VRID: 51, Interface: "eth0", State: "MASTER", Configured: 100, Priority: 120, Master: "198.18.0.3"}},
			Drops: []Count{{Name: "no_service", Value: 7}}}
	}
	for _, on := range []bool{true, false} {
		o := Options{Source: snap}
		if on {
			o.Actions = &fakeActions{}
		}
		srv := httptest.NewServer(NewHandler(o))
		dom := dumpDOM(t, chromium, srv.URL+"/", 3*time.Second)
		srv.Close()
		drain := regexp.MustCompile(`data-server="198\.18\.0\.5:80"[^\n]*?<button type="button">Drain</button>`).MatchString(dom)
		undrain := regexp.MustCompile(`data-server="198\.18\.0\.6:80"[^\n]*?<button type="button">Undrain</button>`).MatchString(dom)
		if drain != on || undrain != on {
			t.Errorf("actions %v: Drain button %v, Undrain button %v", on, drain, undrain)
		}
		for _, want := range []string{`data-instance="VI_1" data-state="MASTER"`, "100 (effective 120)", "no_service", ">7<", "1/2 real servers up"} {
			if !strings.Contains(dom, want) {
				t.Errorf("actions %v: the page lacks %q", on, want)
			}
		}
	}
}

// TestBrowserCluster: a director in cluster mode shows its node, its peers (a silent
// one as silent) and every VIP's announcement; without cluster mode the card stays
// hidden.
func TestBrowserCluster(t *testing.T) {
	chromium := needChromium(t)
	for _, on := range []bool{true, false} {
		snap := &Snapshot{Taken: time.Unix(1e9, 0), Services: []Service{}}
		if on {
			snap.Cluster = &Cluster{Node: "dir1", State: "ANNOUNCED", Digest: "00ff", Matches: false, Bird: "BIRD is not running",
				Peers: []Peer{
					{Node: "dir2", Address: "198.18.0.22", State: "ANNOUNCED", Live: true, LastHeard: time.Unix(1e9, 0), DigestMatch: false, Sent: 12, Received: 11, Lost: 1},
					{Node: "dir3", Address: "198.18.0.23", State: "READY", Live: false},
				},
				VIPs: []ClusterVIP{{VIP: "198.18.100.1", Announced: true}, {VIP: "198.18.100.2", Reason: "quorum"}}}
		}
		srv := httptest.NewServer(NewHandler(Options{Source: func() *Snapshot { return snap }}))
		dom := dumpDOM(t, chromium, srv.URL+"/", 3*time.Second)
		srv.Close()
		hidden := regexp.MustCompile(`<section class="card" id="cluster-card" hidden`).MatchString(dom)
		if hidden == on {
			t.Errorf("cluster %v: card hidden %v", on, hidden)
		}
		if !on {
			continue
		}
		for _, want := range []string{"dir1 · ANNOUNCED · config DIFFERS from a peer · BIRD is not running",
			"198.18.100.1 announced · 198.18.100.2 withdrawn (quorum)",
			`data-peer="dir2" data-live="true"`, `data-peer="dir3" data-live="false"`, ">silent<", ">DIFFERS<", ">12<", ">never<"} {
			if !strings.Contains(dom, want) {
				t.Errorf("the page lacks %q:\n%s", want, dom)
			}
		}
	}
}
