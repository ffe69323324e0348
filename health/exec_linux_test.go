package health

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
