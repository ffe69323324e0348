package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAdmUnderLoad is the live form of dataplane's TestGenerationsUnderTraffic: while
// wrk keeps 16 connections busy through the VIP, gvs adm adds real servers with fresh
// addresses (secondary addresses of rs1 and rs2, so they answer ARP and serve), deletes
// them, re-weights them and switches schedulers, dozens of times. Adding a fresh
// address under traffic used to crash the director (a worker indexed past its
// configuration). The director must stay up, every adm command must succeed, every
// answered request must be a 200, and the final listing must be what the commands
// left.
func TestAdmUnderLoad(t *testing.T) {
	spec := e2eSpec(t, DR)
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but wrk is not installed")
		}
		t.Skip("wrk not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	// Fresh addresses for the real servers: 198.18.0.50.. on rs1, .90.. on rs2.
	const fresh = 24
	alias := func(i int) (host, addr string) {
		if i%2 == 0 {
			return "rs1", fmt.Sprintf("198.18.0.%d", 50+i/2)
		}
		return "rs2", fmt.Sprintf("198.18.0.%d", 90+i/2)
	}
	for i := range fresh {
		host, addr := alias(i)
		cmd, err := l.Command(ctx, host, "ip", "addr", "add", addr+"/24", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: ip addr add %s: %v\n%s", host, addr, err, out)
		}
	}
	startDirector(t, l)
	sock := filepath.Join(l.RunDir(), "dir1.sock")
	adm := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, spec.Exe, append([]string{"adm", "--socket", sock}, args...)...).CombinedOutput()
		if err != nil {
			b, _ := os.ReadFile(filepath.Join(l.RunDir(), "dir1-director.log"))
			t.Fatalf("gvs adm %v: %v\n%s\ndirector log:\n%s", args, err, out, b)
		}
		return string(out)
	}

	wrk, err := l.Command(ctx, "client", "wrk", "-t1", "-c16", "-d12s", "--latency", "http://198.18.0.100/")
	if err != nil {
		t.Fatal(err)
	}
	var wrkOut strings.Builder
	wrk.Stdout, wrk.Stderr = &wrkOut, &wrkOut
	if err := wrk.Start(); err != nil {
		t.Fatal(err)
	}
	const vs = "198.18.0.100:80"
	scheds := []string{"wlc", "rr", "wrr", "lc", "sh", "mh", "lblc", "sed"}
	live := map[string]int{} // added fresh address → weight
	for round := 0; round < 3; round++ {
		for i := range fresh {
			_, addr := alias(i)
			switch {
			case live[addr] == 0:
				w := 1 + (i+round)%3
				adm("-a", "-t", vs, "-r", addr, "-g", "-w", strconv.Itoa(w))
				live[addr] = w
			case (i+round)%3 == 0:
				adm("-d", "-t", vs, "-r", addr)
				delete(live, addr)
			default:
				live[addr] = 1 + (live[addr] % 4)
				adm("-e", "-t", vs, "-r", addr, "-g", "-w", strconv.Itoa(live[addr]))
			}
			if i%6 == 5 {
				adm("-E", "-t", vs, "-s", scheds[(i/6+round)%len(scheds)])
			}
		}
	}
	if err := wrk.Wait(); err != nil {
		t.Fatalf("wrk: %v\n%s", err, wrkOut.String())
	}
	out := wrkOut.String()
	t.Logf("wrk through the VIP while adm changed the configuration:\n%s", out)
	if strings.Contains(out, "Non-2xx") {
		t.Errorf("wrk saw non-2xx answers")
	}
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no request count in wrk's output")
	}
	// Traffic went through while adm changed the configuration: a bound far below
	// what the path carries (about 9,000 a second here), since a machine busy with
	// other work can leave wrk little CPU (920 requests in 12 s at load 20, at a
	// latency of 0.56 ms and no socket errors).
	if n, _ := strconv.Atoi(m[1]); n < 200 {
		t.Errorf("only %d requests were answered in 12 s", n)
	}
	list := adm("-Ln")
	for addr, w := range live {
		want := fmt.Sprintf("  -> %-28s Route   %-6d", addr+":80", w)
		if !strings.Contains(list, want) {
			t.Errorf("listing lacks %q:\n%s", want, list)
		}
	}
	// The fresh ones, rs1 and rs2 of the HTTP service, the two of the UDP service.
	if got := strings.Count(list, "  -> ") - 1; got != len(live)+4 { // − the column header
		t.Errorf("listing has %d real servers, want %d:\n%s", got, len(live)+4, list)
	}
	// The director is still the one started: it answers after the load.
	if body, err := l.HTTPGet("client", "http://198.18.0.100/", 3*time.Second); err != nil || body == "" {
		t.Fatalf("after the load: %q, %v", body, err)
	}
}
