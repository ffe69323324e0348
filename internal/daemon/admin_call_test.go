package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestAdmCallReuse: the call a gvs adm command hands the controller (its parsed
// command, event and reply channel, admCall) is reused by a later command only
// once the controller answered it. A command whose request was cancelled
// before the answer leaves its call to the controller, which still carries it
// out: each of the cancelled -A commands below adds its own service, and each
// command run right after it (on a call of the pool) its own, with its own
// answer. Run with -race: a call reused while the controller read it races.
func TestAdmCallReuse(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	const n = 20
	early := 0 // requests that returned before the answer
	for i := range n {
		vip := fmt.Sprintf("198.18.2.%d:80", 1+i)
		r := ta.d.Handle(cancelled, controlReq("-A -t "+vip+" -s rr"))
		switch {
		case strings.Contains(r.Stderr, "cancelled before the director answered"):
			early++
		case r.Status != 0:
			t.Fatalf("-A -t %s, cancelled: %+v", vip, r)
		}
		// On a call reused too soon, the controller would run this command
		// twice and block on its second answer: wait for one with a deadline.
		next := fmt.Sprintf("198.18.3.%d:80", 1+i)
		ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
		r = ta.d.Handle(ctx, controlReq("-A -t "+next+" -s wlc"))
		stop()
		if r.Status != 0 {
			t.Fatalf("-A -t %s after a cancelled command: %+v", next, r)
		}
		if _, errOut, st := ta.adm("-A -t " + next + " -s rr"); st == 0 {
			t.Fatalf("-A -t %s twice succeeded: %q", next, errOut)
		}
	}
	if early == 0 {
		t.Fatal("no request returned before the controller answered it: nothing was tested")
	}
	list := func() string { return ta.ok("-S -n") }
	testutil.Eventually(t, time.Minute, func() bool { return strings.Count(list(), "\n") == 2*n }, "the cancelled commands' services")
	saved := list()
	for i := range n {
		for _, want := range []string{
			fmt.Sprintf("-A -t 198.18.2.%d:80 -s rr\n", 1+i),
			fmt.Sprintf("-A -t 198.18.3.%d:80 -s wlc\n", 1+i),
		} {
			if !strings.Contains(saved, want) {
				t.Errorf("-S has no %q:\n%s", want, saved)
			}
		}
	}
}
