package bench

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// allowedCPUs returns /proc/PID/status's Cpus_allowed_list of pid.
func allowedCPUs(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("pid %d: no Cpus_allowed_list", pid)
	return ""
}

// TestSetProcessAffinity binds a shell and the child it runs to one CPU, then lets
// them run everywhere again (gvs bench live --rs-cpu pins the lab's real servers so).
func TestSetProcessAffinity(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	cmd := exec.Command("sh", "-c", "sleep 60 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var child int
	kids := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children"
	testutil.Eventually(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(kids)
		if f := strings.Fields(string(b)); len(f) > 0 {
			child, _ = strconv.Atoi(f[0])
		}
		return child != 0
	}, "the shell starts its child")
	n, err := SetProcessAffinity(cmd.Process.Pid, 1)
	if err != nil || n < 2 {
		t.Fatalf("SetProcessAffinity(cpu 1) = %d, %v; want ≥ 2 threads (shell and sleep)", n, err)
	}
	for _, pid := range []int{cmd.Process.Pid, child} {
		if got := allowedCPUs(t, pid); got != "1" {
			t.Errorf("pid %d: Cpus_allowed_list %q after pinning to CPU 1", pid, got)
		}
	}
	if _, err := SetProcessAffinity(cmd.Process.Pid, -1); err != nil {
		t.Fatal(err)
	}
	want := "0-" + strconv.Itoa(runtime.NumCPU()-1)
	for _, pid := range []int{cmd.Process.Pid, child} {
		if got := allowedCPUs(t, pid); got != want {
			t.Errorf("pid %d: Cpus_allowed_list %q after unpinning, want %q", pid, got, want)
		}
	}
}
