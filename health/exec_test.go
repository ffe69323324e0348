package health

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestExec(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	noExec := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\nexit 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		argv    []string
		dynamic bool
		up      bool
		reason  string
		weight  int
	}{
		{"exit 0", sh("exit 0"), false, true, "exit 0", WeightUnchanged},
		{"exit 1", sh("exit 1"), false, false, "exit 1", WeightUnchanged},
		{"exit 3 without misc_dynamic is a failure", sh("exit 3"), false, false, "exit 3", WeightUnchanged},
		{"dynamic exit 0 keeps the weight", sh("exit 0"), true, true, "exit 0", WeightUnchanged},
		{"dynamic exit 1 is down", sh("exit 1"), true, false, "exit 1", WeightUnchanged},
		{"dynamic exit 2 is weight 0", sh("exit 2"), true, true, "exit 2", 0},
		{"dynamic exit 3 is weight 1", sh("exit 3"), true, true, "exit 3", 1},
		{"dynamic exit 255 is weight 253", sh("exit 255"), true, true, "exit 255", 253},
		{"arguments are passed without a shell", []string{"/bin/sh", "-c", `test "$0" = "a b"`, "a b"}, false, true, "exit 0", WeightUnchanged},
		{"killed by a signal", sh("kill -9 $$"), false, false, "signal: killed", WeightUnchanged},
		{"not found in PATH", []string{"gvs-no-such-command"}, false, false, "exec: not found", WeightUnchanged},
		{"absolute path not found", []string{"/nonexistent/gvs-check"}, false, false, "exec: not found", WeightUnchanged},
		{"not executable", []string{noExec}, false, false, "exec: permission denied", WeightUnchanged},
		{"output is not captured", sh("head -c 4000000 /dev/zero; head -c 4000000 /dev/zero >&2"), false, true, "exit 0", WeightUnchanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCheck(t, Spec{Type: Exec, Command: tt.argv, Dynamic: tt.dynamic})
			if r.Up != tt.up || r.Reason != tt.reason || r.Weight != tt.weight {
				t.Errorf("got %+v, want up=%v reason %q weight %d", r, tt.up, tt.reason, tt.weight)
			}
		})
	}
}

func TestExecTimeout(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	for _, tt := range []struct{ name, script string }{
		{"never exits", "sleep 60"},
		{"ignores SIGTERM", "trap '' TERM; sleep 60"},
		{"endless output", "while :; do echo spam; done"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := mustCheck(t, Spec{Type: Exec, Command: sh(tt.script), Timeout: 200 * time.Millisecond})
			wantDown(t, r, "timeout after 200ms")
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v, not bounded by the timeout", d)
			}
		})
	}
}
