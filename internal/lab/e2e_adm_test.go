package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiveAdm drives a running director with gvs adm, the seed walkthrough's way:
// list it like ipvsadm -Ln, delete a real server and add it back.
func TestLiveAdm(t *testing.T) {
	spec := e2eSpec(t, DR)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	// The lab's config plus a metrics endpoint inside the director's namespace.
	cfg, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	withMetrics := strings.Replace(string(cfg), "[director]\n", "[director]\nmetrics_listen = \"198.18.0.3:9100\"\n", 1)
	if err := os.WriteFile(l.ConfigPath("dir1"), []byte(withMetrics), 0o644); err != nil {
		t.Fatal(err)
	}
	startDirector(t, l)
	sock := filepath.Join(l.RunDir(), "dir1.sock")
	adm := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, spec.Exe, append([]string{"adm", "--socket", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("gvs adm %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := adm("-Ln")
	for _, want := range []string{
		"IP Virtual Server version 1.2.1",
		"Prot LocalAddress:Port Scheduler Flags",
		"TCP  198.18.0.100:80 rr",
		"  -> 198.18.0.5:80                Route   1      ",
		"  -> 198.18.0.6:80                Route   1      ",
		"UDP  198.18.0.100:53 rr",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("gvs adm -Ln lacks %q:\n%s", want, list)
		}
	}
	get := func() string {
		body, err := l.HTTPGet("client", "http://198.18.0.100/", 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(body)
	}
	adm("-d", "-t", "198.18.0.100:80", "-r", "198.18.0.6")
	for i := range 4 {
		if got := get(); got != "rs1" {
			t.Fatalf("request %d after deleting rs2 went to %s", i, got)
		}
	}
	adm("-a", "-t", "198.18.0.100:80", "-r", "198.18.0.6", "-g", "-w", "1")
	seen := map[string]bool{}
	for range 4 {
		seen[get()] = true
	}
	if !seen["rs1"] || !seen["rs2"] {
		t.Fatalf("after adding rs2 back: %v", seen)
	}
	if !strings.Contains(adm("-Ln", "--stats"), "Conns   InPkts  OutPkts  InBytes OutBytes") {
		t.Errorf("--stats layout")
	}
	// The seed's weighted walkthrough: wrr with rs1 at weight 3 gives 3:1.
	adm("-E", "-t", "198.18.0.100:80", "-s", "wrr")
	adm("-e", "-t", "198.18.0.100:80", "-r", "198.18.0.5", "-g", "-w", "3")
	count := map[string]int{}
	for range 8 {
		count[get()]++
	}
	if count["rs1"] != 6 || count["rs2"] != 2 {
		t.Fatalf("wrr 3:1 over 8 requests gave %v", count)
	}
	// Metrics scraped during the run count what went through.
	body, err := l.HTTPGet("dir1", "http://198.18.0.3:9100/metrics", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`gvs_real_server_weight{server="198.18.0.5:80",service="TCP/198.18.0.100:80"} 3`,
		`gvs_conntrack_max 1.048576e+06`,
		`gvs_drops_total{reason="neighbor_answered"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if testing.Verbose() {
		t.Log(grepLines(body, "gvs_real_server_weight"))
	}
	if !metricAtLeast(body, `gvs_service_connections_total{service="TCP/198.18.0.100:80"}`, 16) {
		t.Errorf("service connections below the 16 requests made:\n%s", grepLines(body, "gvs_service_connections_total"))
	}
	// ipvsadm's own error, and nothing changed.
	out, err := exec.CommandContext(ctx, spec.Exe, "adm", "--socket", sock, "-a", "-t", "198.18.0.100:80", "-r", "198.18.0.5", "-g").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Destination already exists") {
		t.Fatalf("adding an existing server: %v %s", err, out)
	}
}

// metricAtLeast reports whether the sample line for series has a value ≥ min.
func metricAtLeast(body, series string, min float64) bool {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && f >= min
		}
	}
	return false
}

func grepLines(body, sub string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
