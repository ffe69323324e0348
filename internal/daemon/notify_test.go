package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

func TestNotifyCommands(t *testing.T) {
	v := config.DefaultVRRP()
	v.Name = "VI_1"
	v.NotifyMaster, v.NotifyFault, v.Notify = "m.sh", "f.sh", "/etc/gvs/n.sh"
	for _, tc := range []struct {
		to   vrrp.State
		want []string
	}{
		{vrrp.StateMaster, []string{"m.sh", "/etc/gvs/n.sh INSTANCE 'VI_1' MASTER 150"}},
		{vrrp.StateBackup, []string{"/etc/gvs/n.sh INSTANCE 'VI_1' BACKUP 150"}},
		{vrrp.StateFault, []string{"f.sh", "/etc/gvs/n.sh INSTANCE 'VI_1' FAULT 150"}},
		{vrrp.StateInitialize, []string{"/etc/gvs/n.sh INSTANCE 'VI_1' STOP 150"}},
	} {
		if got := notifyCommands(v, tc.to, 150); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %q, want %q", tc.to, got, tc.want)
		}
	}
	if got := notifyCommands(config.DefaultVRRP(), vrrp.StateMaster, 100); got != nil {
		t.Errorf("no notify keys: %q", got)
	}
	if q := shellQuote("it's"); q != `'it'\''s'` {
		t.Errorf("quote %s", q)
	}
}

func TestNotifierRunsInOrderWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// The timeout kills the sleep but leaves a shell started on a loaded machine
	// time to run (at 200 ms, "echo two" was once killed before it wrote).
	n := newNotifier(slog.New(slog.DiscardHandler), 2*time.Second, runShell)
	start := time.Now()
	// A command that outlives its timeout is killed; the next one still runs.
	n.enqueue("VI_1", []string{"sleep 10", "echo one >> " + out})
	n.enqueue("VI_1", []string{"echo two $0 >> " + out})
	n.enqueue("VI_2", []string{"echo other >> " + out + ".2"})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("enqueue blocked for %v", d)
	}
	// An unbounded sleep would hold close for its whole 9 s.
	n.close(9 * time.Second)
	if d := time.Since(start); d > 7*time.Second {
		t.Fatalf("the sleep was not bounded by the timeout: %v", d)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); !slices.Equal(got, []string{"one", "two", "/bin/sh"}) {
		t.Fatalf("output %q", got)
	}
	if _, err := os.Stat(out + ".2"); err != nil {
		t.Fatal(err)
	}
	n.enqueue("VI_1", []string{"echo late >> " + out}) // after close: ignored
}
