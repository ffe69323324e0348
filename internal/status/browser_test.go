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
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but chromium is not installed (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
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
	dump := func(budget time.Duration) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		profile := t.TempDir()
		cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--user-data-dir="+profile, fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()), "--dump-dom", srv.URL+"/")
		cmd.Env = append(os.Environ(), "HOME="+profile)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return string(out)
	}
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
