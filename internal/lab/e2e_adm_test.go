package lab

import (
	"context"
	"os/exec"
	"path/filepath"
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
	// ipvsadm's own error, and nothing changed.
	out, err := exec.CommandContext(ctx, spec.Exe, "adm", "--socket", sock, "-a", "-t", "198.18.0.100:80", "-r", "198.18.0.5", "-g").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Destination already exists") {
		t.Fatalf("adding an existing server: %v %s", err, out)
	}
}
