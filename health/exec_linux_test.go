package health

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestExecTimeoutKillsProcessGroup checks that a timed-out script's children die too.
func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The background sleep is a grandchild in the script's process group.
	script := "sleep 60 & echo $! > " + pidFile + "; wait"
	r := mustCheck(t, Spec{Type: Exec, Command: sh(script), Timeout: 300 * time.Millisecond})
	wantDown(t, r, "timeout after 300ms")

	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("script did not record its child: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true // gone
		}
		// Field 3 is the state; a killed child may linger as a zombie until reaped.
		i := bytes.LastIndexByte(stat, ')')
		return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
	}, "the background sleep to die")
}

// TestExecThroughScriptRunner checks that an exec check runs through the script
// policy: its environment reaches the command, and an unsafe command is refused
// under enable_script_security with the path in the reason.
func TestExecThroughScriptRunner(t *testing.T) {
	r := mustCheck(t, Spec{Type: Exec, Command: sh(`test "$GVS_RS_ADDR:$GVS_RS_PORT" = 198.18.0.5:80`),
		Env: []string{"GVS_RS_ADDR=198.18.0.5", "GVS_RS_PORT=80"}})
	if !r.Up {
		t.Errorf("environment not passed: %+v", r)
	}
	if os.Geteuid() != 0 {
		t.Skip("the security rule applies to runs as root")
	}
	d, err := os.MkdirTemp("", "gvs-health-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	p := filepath.Join(d, "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o777); err != nil { // a world-writable directory above it
		t.Fatal(err)
	}
	c, err := NewWithScripts(Spec{Type: Exec, Command: []string{p}, Timeout: 5 * time.Second, Interval: time.Second}, &script.Runner{Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	res := c.Check(context.Background())
	if res.Up || !strings.Contains(res.Reason, "refused") || !strings.Contains(res.Reason, d+" is writable by everyone") {
		t.Errorf("unsafe check: %+v, want refused naming %s", res, d)
	}
}
